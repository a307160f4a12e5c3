"""One typed configuration per box: a TOML or JSON file (``instore edge run --config``) or flags.

The tunable part (cameras, gates, tracking, visits, local crop) is ``protocol.device.RemoteSettings``
because the cloud may replace it at run time through ``cfg/desired``; the rest (identity, broker,
model pack, state file, telemetry period, install bundle, Wi-Fi source) needs a restart. A bad file stops the box at start with
the field and the reason; see docs/EDGE.md for every field.

Raw face crops stay in the store by construction: ``local_crop`` may be on (in the file, or from a
remote ``cfg/desired``) only when the box's broker is the store's own, declared as
``broker_scope = "store"`` and checked: its host must be a loopback or private address (a name
must resolve to such addresses only). The cloud broker's generated ACL has no ``local/`` grants
either, so a box misdeclared as store-scoped would still see its crops refused there.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge.wifi.settings import AbsolutePath, WifiSettings
from protocol import topics, transport
from protocol.device import RemoteSettings
from protocol.facepack import PackError, get_pack, require_commercial
from protocol.messages import Id


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the field."""


def default_state_path(brand: str, store: str, device: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state").resolve()
    return base / "instore" / f"edge-{brand}-{store}-{device}.db"


class OutboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_messages: int = Field(default=10_000, ge=10, description="past this the oldest events are dropped (logged)")
    flush_timeout_s: float = Field(default=30, ge=0, description="how long a finishing --once run waits for the broker")
    durable_before_send: bool = Field(
        default=False,
        description="send an event only once it is fsynced: a power cut then never makes the box forget an "
                    "arrival the cloud has (costs one fsync on every arrival's way out; docs/EDGE.md)")


class EdgeConfig(RemoteSettings):
    brand: Id = "demo"
    store: Id
    device: Id
    broker: str = "mqtt://127.0.0.1:1883"
    pack: str | None = Field(default=None, description="model pack id; None: $INSTORE_MODEL_PACK or the default")
    models: AbsolutePath | None = Field(default=None, description="model folder; None: $INSTORE_MODELS")
    state: AbsolutePath | None = Field(default=None, description="the SQLite state file (outbox, recent visits)")
    outbox: OutboxSettings = OutboxSettings()
    telemetry_interval_s: float = Field(default=30, gt=0)
    bundle: AbsolutePath | None = Field(default=None, description="install bundle: identity, TLS broker, signed model pack")
    wifi: WifiSettings | None = Field(default=None, description="a Wi-Fi probe source beside the cameras")
    commercial_only: bool = Field(
        default=False, description="refuse a model pack not cleared for commercial use (a paying brand's box)"
    )
    broker_scope: Literal["cloud", "store"] = Field(
        default="cloud", description="store: the broker is the store's own (loopback or private address, bridged to "
        "the cloud without local/); only then may local_crop be on"
    )

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        transport.BrokerUrl.parse(value)
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        topics.check_id("device", value)
        return value

    @field_validator("pack")
    @classmethod
    def _pack(cls, value: str | None) -> str | None:
        try:
            get_pack(value)
        except PackError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _commercial(self) -> EdgeConfig:
        if self.commercial_only:
            try:
                require_commercial(self.pack)
            except PackError as exc:
                raise ValueError(f"commercial_only: {exc}") from None
        return self

    @model_validator(mode="after")
    def _crops_stay_in_store(self) -> EdgeConfig:
        if (refusal := self.crop_refusal(self.local_crop.enabled)) is not None:
            raise ValueError(refusal)
        return self

    def crop_refusal(self, crops_on: bool) -> str | None:
        """Why face crops may not be turned on with this broker (None: they may, or they are off)."""
        if not crops_on:
            return None
        if self.broker_scope != "store":
            return ('local_crop: raw face crops must not leave the store; they need the store\'s own broker '
                    '(broker_scope = "store")')
        return store_local_problem(transport.BrokerUrl.parse(self.broker).host)

    @property
    def state_path(self) -> Path:
        return self.state or default_state_path(self.brand, self.store, self.device)

    def remote(self) -> RemoteSettings:
        return RemoteSettings.model_validate(self.model_dump(include=set(RemoteSettings.model_fields)))

    def with_remote(self, settings: RemoteSettings) -> EdgeConfig:
        return self.model_copy(update=dict(settings))


#: Where a store's own broker can be: loopback, RFC 1918 and IPv6 unique-local, link-local.
STORE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10"))


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return any(ip in net for net in STORE_NETWORKS if net.version == ip.version)


def store_local_problem(host: str) -> str | None:
    """None if ``host`` is on the store's side (loopback or private addresses only), else why not."""
    try:
        return None if _private(host) else f'broker_scope = "store": broker {host} is a public address, not the store\'s own broker'
    except ValueError:
        pass  # a name
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        return f'broker_scope = "store": cannot resolve broker {host} to check it is in the store ({exc})'
    public = sorted(a for a in addresses if not _private(a))
    if public:
        return f'broker_scope = "store": broker {host} resolves to public {", ".join(public)}, not the store\'s own broker'
    return None


def explain(exc: ValidationError) -> str:
    """The first problem as ``field.path: reason``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def build(data: dict[str, Any], origin: str) -> EdgeConfig:
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {explain(exc)}") from None


def read_file(path: Path) -> dict[str, Any]:
    """The file's contents as a dict: ``.toml`` or ``.json``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config {path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: must hold a table/object at the top")
    return data
