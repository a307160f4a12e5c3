"""One typed configuration per box: a TOML or JSON file (``instore edge run --config``) or flags.

The tunable part (cameras, gates, tracking, visits, local crop) is ``protocol.device.RemoteSettings``
because the cloud may replace it at run time through ``cfg/desired``; the rest (identity, broker,
model pack, state file, telemetry period, install bundle, Wi-Fi source) needs a restart. A bad file stops the box at start with
the field and the reason; see docs/EDGE.md for every field.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from protocol import topics, transport
from protocol.device import RemoteSettings
from protocol.facepack import PackError, get_pack, require_commercial
from protocol.messages import Id

from edge.wifi.settings import AbsolutePath, WifiSettings


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the field."""


def default_state_path(brand: str, store: str, device: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state").resolve()
    return base / "instore" / f"edge-{brand}-{store}-{device}.db"


class OutboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_messages: int = Field(default=10_000, ge=10, description="past this the oldest events are dropped (logged)")
    flush_timeout_s: float = Field(default=30, ge=0, description="how long a finishing --once run waits for the broker")


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
    def _commercial(self) -> "EdgeConfig":
        if self.commercial_only:
            try:
                require_commercial(self.pack)
            except PackError as exc:
                raise ValueError(f"commercial_only: {exc}") from None
        return self

    @property
    def state_path(self) -> Path:
        return self.state or default_state_path(self.brand, self.store, self.device)

    def remote(self) -> RemoteSettings:
        return RemoteSettings.model_validate(self.model_dump(include=set(RemoteSettings.model_fields)))

    def with_remote(self, settings: RemoteSettings) -> "EdgeConfig":
        return self.model_copy(update=dict(settings))


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
