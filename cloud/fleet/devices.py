"""The device registry: which boxes may speak for which store, and what each last said about itself.

Provisioning (``instore provision``) is the source of truth and writes ``registry.json``; the cloud
imports it (``instore cloud devices import``, ``POST /v1/devices/import``) into
``device_registry``. The file is parsed here with the few fields the cloud needs rather than by
importing provisioning: the cloud only depends on the contract. Once any device was imported (or
``require_known_devices`` is on), ingest drops events from a device the registry does not know or
that was revoked: the broker's ACLs should already stop them, this is defence in depth.

``devices`` keeps what was observed: last seen, online/offline from the retained ``state`` and the
model pack from telemetry; it also exists without a registry (the local demo).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from cloud.errors import Invalid

ALL_STORES = "*"  # the cloud service account spans every store; it never publishes events
Verdict = Literal["known", "unknown_device", "revoked_device"]


def register_device(db: Database | Tx, brand: str, store: str, device: str, role: str) -> None:
    """Remember a device seen speaking for a store, so that commands (erase) can reach every box."""
    db.execute(
        "INSERT INTO devices (brand, store, device, role, last_seen) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (brand, store, device) DO UPDATE SET last_seen = excluded.last_seen, role = excluded.role",
        (brand, store, device, role, iso(utcnow())),
    )


class RegistryFileError(Invalid):
    """The registry file is not a provisioning registry; the message says why."""

    code = "invalid_registry"


class _Device(BaseModel):
    model_config = ConfigDict(extra="ignore")

    store: str
    device: str
    role: str
    serial: str
    not_after: AwareDatetime | None = None
    state: Literal["active", "revoked"] = "active"
    revoked_at: AwareDatetime | None = None
    model_pack: str | None = None


class _Registry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v: Literal[1]
    brand: str
    devices: list[_Device]


@dataclass(frozen=True)
class Imported:
    brand: str
    devices: int
    revoked: int


def import_registry(db: Database, text: str | bytes) -> Imported:
    """Replace the brand's registry with the file's: a device removed there is unknown here."""
    try:
        registry = _Registry.model_validate_json(text)
    except ValidationError as exc:
        raise RegistryFileError(f"not a provisioning registry: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") \
            from None
    now = iso(utcnow())
    rows = [(registry.brand, d.store, d.device, d.role, d.serial, d.model_pack, d.state,
             iso(d.revoked_at) if d.revoked_at else None, iso(d.not_after) if d.not_after else None, now)
            for d in registry.devices if d.store != ALL_STORES]
    with db.transaction() as tx:
        tx.execute("DELETE FROM device_registry WHERE brand = ?", (registry.brand,))
        tx.executemany(
            "INSERT INTO device_registry (brand, store, device, role, serial, model_pack, state, revoked_at, "
            "not_after, imported) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
    return Imported(registry.brand, len(rows), sum(1 for r in rows if r[6] == "revoked"))


def verdict(db: Database, brand: str, store: str, device: str, *, required: bool | None = None) -> Verdict | None:
    """Whether the device may send events; None when devices need not be known: ``required`` False, or
    None (the default) and no registry was loaded. One statement, as it runs for every event."""
    if required is False:
        return None
    state, registry = db.rows(
        "SELECT (SELECT state FROM device_registry WHERE brand = ? AND store = ? AND device = ?), "
        "EXISTS (SELECT 1 FROM device_registry)", (brand, store, device))[0]
    if required is None and not registry:
        return None
    if state is None:
        return "unknown_device"
    return "known" if state == "active" else "revoked_device"


def observed(db: Database, brand: str, store: str, device: str, role: str, *, ts: datetime,
             conn_state: str | None = None, model_pack: str | None = None) -> None:
    """A device spoke (state, telemetry): remember when, and what it said about itself."""
    db.execute(
        "INSERT INTO devices (brand, store, device, role, last_seen, conn_state, model_pack) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (brand, store, device) DO UPDATE SET "
        "last_seen = excluded.last_seen, role = excluded.role, "
        "conn_state = COALESCE(excluded.conn_state, devices.conn_state), "
        "model_pack = COALESCE(excluded.model_pack, devices.model_pack)",
        (brand, store, device, role, iso(ts), conn_state, model_pack))


def listing(db: Database, store: str | None) -> list[dict]:
    """Registered and observed devices, one row each; registry fields None for an unregistered one."""
    where, args = ("WHERE store = ?", (store,)) if store else ("", ())
    merged: dict[tuple[str, str, str], dict] = {}
    for r in db.query(f"SELECT * FROM device_registry {where}", args):
        merged[(r["brand"], r["store"], r["device"])] = {
            "brand": r["brand"], "store": r["store"], "device": r["device"], "role": r["role"],
            "serial": r["serial"], "model_pack": r["model_pack"], "registry_state": r["state"],
            "revoked_at": r["revoked_at"], "not_after": r["not_after"], "last_seen": None, "state": None,
        }
    for r in db.query(f"SELECT * FROM devices {where}", args):
        row = merged.setdefault((r["brand"], r["store"], r["device"]), {
            "brand": r["brand"], "store": r["store"], "device": r["device"], "role": r["role"], "serial": None,
            "model_pack": None, "registry_state": None, "revoked_at": None, "not_after": None,
        })
        row.update(last_seen=r["last_seen"], state=r["conn_state"], model_pack=r["model_pack"] or row["model_pack"])
    return [merged[k] for k in sorted(merged)]
