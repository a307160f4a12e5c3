"""The provisioning home: where the CA, keys, bundles and the registry of stores and devices live.

One folder (``--home``, default ``$INSTORE_PROVISION_HOME`` or ``~/.instore/provision``) per
brand, kept on the provisioning workstation. The registry is one JSON file, rewritten atomically,
because it is small (a brand has hundreds of devices, not millions) and a technician can read it.
The cloud's device registry is loaded from it (docs/SECURITY.md).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from protocol.bundle import ALL_STORES

HOME_ENV = "INSTORE_PROVISION_HOME"
Role = Literal["edge", "kiosk", "esl_gateway", "bridge", "cloud", "admin"]
#: Roles a technician installs in a store; ``bridge``, ``cloud`` and ``admin`` are made by the tooling.
DEVICE_ROLES: tuple[str, ...] = ("edge", "kiosk", "esl_gateway")
#: Service accounts: certificates of the services CA, accepted only on the brokers' service listener.
SERVICE_ROLES: tuple[str, ...] = ("cloud", "admin")


class RegistryError(ValueError):
    """A provisioning request the registry cannot satisfy; the message says why."""


class StoreRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    created_at: AwareDatetime
    local_broker_url: str | None = Field(
        default=None, description="mqtts:// URL of the in-store broker bridged to the cloud; none: devices use the cloud's"
    )


class DeviceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store: str
    device: str
    role: Role
    serial: str = Field(description="certificate serial, hex")
    issued_at: AwareDatetime
    not_after: AwareDatetime
    state: Literal["active", "revoked"] = "active"
    revoked_at: AwareDatetime | None = None
    model_pack: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.store, self.device)


class RevokedSerial(BaseModel):
    model_config = ConfigDict(extra="forbid")

    serial: str
    revoked_at: AwareDatetime
    reason: str


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    brand: str
    broker_url: str = Field(description="mqtts:// URL devices use to reach the cloud broker")
    service_broker_url: str | None = Field(
        default=None, description="mqtts:// URL of the cloud broker's service listener (cloud, admin); "
        "None: the host of broker_url, its port + 1"
    )
    stores: dict[str, StoreRecord] = Field(default_factory=dict)
    devices: list[DeviceRecord] = Field(default_factory=list)
    revoked: list[RevokedSerial] = Field(default_factory=list)

    @property
    def service_url(self) -> str:
        """Where service accounts (the cloud's ingest, the admin) reach the cloud broker."""
        if self.service_broker_url:
            return self.service_broker_url
        from protocol.transport import BrokerUrl

        devices = BrokerUrl.parse(self.broker_url)
        return f"mqtts://{devices.host}:{devices.port + 1}"

    def store(self, store: str) -> StoreRecord:
        try:
            return self.stores[store]
        except KeyError:
            raise RegistryError(f"store {store!r} is not registered; create it first") from None

    def find(self, device: str, store: str | None = None) -> DeviceRecord:
        """The device record; ``store`` may be left out when the device id is unique."""
        matches = [d for d in self.devices if d.device == device and (store is None or d.store == store)]
        if not matches:
            where = f" in store {store!r}" if store else ""
            raise RegistryError(f"device {device!r}{where} is not registered")
        if len(matches) > 1:
            stores = ", ".join(d.store for d in matches)
            raise RegistryError(f"device {device!r} exists in several stores ({stores}); give --store")
        return matches[0]

    def active(self, store: str | None = None) -> list[DeviceRecord]:
        return [d for d in self.devices if d.state == "active" and (store is None or d.store == store)]

    def revoke_serial(self, serial: str, reason: str, when: dt.datetime) -> None:
        if all(r.serial != serial for r in self.revoked):
            self.revoked.append(RevokedSerial(serial=serial, revoked_at=when, reason=reason))


class Home:
    """File layout of the provisioning home; every secret under it is written 0600."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        raw = root or os.environ.get(HOME_ENV) or Path.home() / ".instore" / "provision"
        self.root = Path(raw).expanduser().resolve()

    @property
    def registry_file(self) -> Path:
        return self.root / "registry.json"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca" / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca" / "ca.key"

    @property
    def crl(self) -> Path:
        return self.root / "ca" / "crl.pem"

    @property
    def services_ca_cert(self) -> Path:
        """The services CA: issues the cloud's and the admin's certificates, never a device's."""
        return self.root / "ca" / "services-ca.crt"

    @property
    def services_ca_key(self) -> Path:
        return self.root / "ca" / "services-ca.key"

    @property
    def services_crl(self) -> Path:
        return self.root / "ca" / "services-crl.pem"

    @property
    def signing_key(self) -> Path:
        return self.root / "signing" / "pack-signing.key"

    @property
    def signing_pub(self) -> Path:
        return self.root / "signing" / "pack-signing.pub"

    def server_dir(self, name: str) -> Path:
        return self.root / "servers" / name

    def bundle_dir(self, store: str, device: str) -> Path:
        return self.root / "bundles" / ("_cloud" if store == ALL_STORES else store) / device

    def broker_dir(self, store: str | None = None) -> Path:
        return self.root / "broker" / ("cloud" if store is None else f"store-{store}")

    def exists(self) -> bool:
        return self.registry_file.is_file()

    def load(self) -> Registry:
        if not self.exists():
            raise RegistryError(f"no provisioning home at {self.root}: run `instore provision ca` first")
        try:
            return Registry.model_validate_json(self.registry_file.read_bytes())
        except ValidationError as exc:
            raise RegistryError(f"registry {self.registry_file} is invalid: {exc}") from None

    def save(self, registry: Registry) -> None:
        """Write to a temporary file and rename, so a crash never leaves half a registry."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.registry_file.with_suffix(".tmp")
        tmp.write_text(registry.model_dump_json(indent=2))
        tmp.replace(self.registry_file)
