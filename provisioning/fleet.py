"""Provisioning operations: set up a brand, add stores and devices, revoke, write bundles.

Each operation loads the registry, changes it, writes the files it implies (certificates, the
CRL) and saves the registry last, so a failure part-way leaves the registry as it was. A device's
private key is generated straight into its bundle folder and never copied anywhere else.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tarfile
from pathlib import Path

from protocol.bundle import ALL_STORES, CONFIG_NAME, BundleConfig
from protocol.topics import check_id
from protocol.transport import BrokerUrl, TlsFiles
from provisioning import pki
from provisioning.broker_config import BRIDGE_DEVICE, screen_of
from provisioning.registry import DEVICE_ROLES, SERVICE_ROLES, DeviceRecord, Home, Registry, RegistryError, StoreRecord
from provisioning.signing import create_signing_key

#: The cloud's service account: reads every store through the shared subscription.
CLOUD_SERVICE = "cdp"
#: The provisioning admin: changes the brokers' dynamic-security state live ($CONTROL), reads $SYS.
ADMIN_SERVICE = "admin"
SERVERS = ("broker", "api")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _tls_url(url: str) -> BrokerUrl:
    parsed = BrokerUrl.parse(url)
    if not parsed.tls:
        raise RegistryError(f"broker URL {url!r} must be mqtts://host:port: devices connect over TLS")
    return parsed


def _ca(home: Home) -> pki.Issued:
    return pki.load(home.ca_cert, home.ca_key)


def _services_ca(home: Home) -> pki.Issued:
    return pki.load(home.services_ca_cert, home.services_ca_key)


def _issuer(home: Home, role: str) -> pki.Issued:
    """Service accounts come from the services CA (accepted only on the service listener)."""
    return _services_ca(home) if role in SERVICE_ROLES else _ca(home)


def write_crl(home: Home, registry: Registry, ca: pki.Issued | None = None) -> None:
    """Both CRLs list every revoked serial (a CRL only ever revokes certificates of its own issuer)."""
    revoked = [(int(r.serial, 16), r.revoked_at) for r in registry.revoked]
    pki.save_crl(pki.build_crl(ca or _ca(home), revoked), home.crl)
    if home.services_ca_key.is_file():
        pki.save_crl(pki.build_crl(_services_ca(home), revoked), home.services_crl)


def refresh_crl(home: Home) -> Path:
    write_crl(home, home.load())
    return home.crl


def init(
    home: Home, brand: str, broker_url: str, hosts: list[str], *, days: int = 3650, service_url: str | None = None
) -> Registry:
    """The brand CA, the services CA, the pack-signing key, server certificates for broker and API,
    the cloud account and the admin account (both from the services CA)."""
    if home.exists():
        raise RegistryError(f"{home.root} already holds a provisioning home for {home.load().brand}")
    check_id("brand", brand)
    _tls_url(broker_url)
    if service_url:
        _tls_url(service_url)
    ca = pki.create_ca(brand, days=days)
    pki.save(ca, home.ca_cert, home.ca_key)
    pki.save(pki.create_ca(brand, days=days, purpose="instore services CA"), home.services_ca_cert, home.services_ca_key)
    create_signing_key(home)
    for name in SERVERS:
        issue_server(home, ca, name, hosts)
    registry = Registry(brand=brand, broker_url=broker_url, service_broker_url=service_url)
    _issue(home, registry, ALL_STORES, CLOUD_SERVICE, "cloud", days=365)
    _issue(home, registry, ALL_STORES, ADMIN_SERVICE, "admin", days=825)
    write_crl(home, registry, ca)
    home.save(registry)
    return registry


def admin_tls(home: Home) -> TlsFiles:
    """The admin account's TLS files: the brand CA (to check the broker), its certificate and key."""
    folder = home.bundle_dir(ALL_STORES, ADMIN_SERVICE)
    return TlsFiles(ca=home.ca_cert, cert=folder / "device.crt", key=folder / "device.key")


def issue_server(home: Home, ca: pki.Issued, name: str, hosts: list[str]) -> Path:
    folder = home.server_dir(name)
    pki.save(pki.issue_server(ca, name, hosts), folder / "server.crt", folder / "server.key")
    return folder


def _issue(
    home: Home,
    registry: Registry,
    store: str,
    device: str,
    role: str,
    *,
    days: int,
    model_pack: str | None = None,
    now: dt.datetime | None = None,
) -> DeviceRecord:
    issued = pki.issue_client(_issuer(home, role), pki.Identity(registry.brand, store, device, role), days=days, now=now)
    folder = home.bundle_dir(store, device)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    pki.save(issued, folder / "device.crt", folder / "device.key")
    record = DeviceRecord(
        store=store,
        device=device,
        role=role,
        serial=format(issued.serial, "x"),
        issued_at=issued.cert.not_valid_before_utc,
        not_after=issued.cert.not_valid_after_utc,
        model_pack=model_pack,
    )
    registry.devices = [d for d in registry.devices if d.key != record.key] + [record]
    return record


def create_store(home: Home, store: str, name: str | None = None, local_broker_url: str | None = None) -> StoreRecord:
    registry = home.load()
    check_id("store", store)
    if store in registry.stores:
        raise RegistryError(f"store {store!r} already exists")
    record = StoreRecord(id=store, name=name or store, created_at=_now(), local_broker_url=local_broker_url)
    if local_broker_url:
        ca = _ca(home)
        issue_server(home, ca, f"store-{store}", [_tls_url(local_broker_url).host, "localhost"])
        _issue(home, registry, store, BRIDGE_DEVICE, "bridge", days=825)
    registry.stores[store] = record
    home.save(registry)
    return record


def create_device(
    home: Home,
    store: str,
    device: str,
    role: str,
    *,
    model_pack: str | None = None,
    days: int = 365,
    renew: bool = False,
    now: dt.datetime | None = None,
) -> DeviceRecord:
    """Issue a device certificate; ``renew`` replaces an existing one and revokes the old serial."""
    registry = home.load()
    registry.store(store)
    check_id("device", device)
    if role not in DEVICE_ROLES:
        raise RegistryError(f"role {role!r} is not one of {', '.join(DEVICE_ROLES)}")
    if role == "kiosk":
        screen_of(device)
    existing = next((d for d in registry.devices if d.key == (store, device)), None)
    if existing is not None and existing.state == "active" and not renew:
        raise RegistryError(f"device {device!r} of store {store!r} exists; --renew issues a new certificate")
    if existing is not None:
        registry.revoke_serial(existing.serial, "superseded", _now())
    record = _issue(home, registry, store, device, role, days=days, model_pack=model_pack, now=now)
    write_crl(home, registry)
    home.save(registry)
    return record


def revoke(home: Home, device: str, store: str | None = None, reason: str = "revoked") -> DeviceRecord:
    """Revoke a device: its serial goes on the CRL and it leaves the broker's ACLs."""
    registry = home.load()
    record = registry.find(device, store)
    if record.state == "revoked":
        raise RegistryError(f"device {device!r} of store {record.store!r} is already revoked")
    when = _now()
    record.state, record.revoked_at = "revoked", when
    registry.revoke_serial(record.serial, reason, when)
    write_crl(home, registry)
    folder = home.bundle_dir(record.store, record.device)
    # A revoked identity is useless, and its key must not lie around: not in the bundle folder,
    # not in the .tar.gz handed to the installer (nor the copy unpacked next to it by load_bundle).
    shred(folder / "device.key")
    shred(folder.with_name(f"{folder.name}.tar.gz"))
    home.save(registry)
    return record


def shred(path: Path) -> bool:
    """Overwrite a file with zeros (flushed to disk) before unlinking it; True if there was one.

    On a journaling or copy-on-write file system (or an SSD) older copies of the blocks may
    survive; this removes the key from every file the provisioning home holds, which is what a
    copied home or a backup of it would carry.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with path.open("r+b") as fh:
        fh.write(b"\0" * size)
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()
    return True


def write_bundle(home: Home, device: str, store: str | None = None) -> tuple[Path, Path]:
    """Fill the device's bundle folder (config, CA, CRL, pack key) and archive it as .tar.gz."""
    registry = home.load()
    record = registry.find(device, store)
    if record.state != "active":
        raise RegistryError(f"device {device!r} of store {record.store!r} is revoked; create a new one")
    folder = home.bundle_dir(record.store, record.device)
    if not (folder / "device.key").is_file():
        raise RegistryError(f"the key of {device!r} is missing from {folder}; reissue with device create --renew")
    if record.role == "admin":
        raise RegistryError("the admin account has no install bundle: it stays in the provisioning home")
    store_record = registry.stores.get(record.store)
    if record.role == "cloud":
        broker_url = registry.service_url  # the service listener: the only one that takes its certificate
    else:
        broker_url = (store_record.local_broker_url if store_record else None) or registry.broker_url
    config = BundleConfig(
        brand=registry.brand,
        store=record.store,
        device=record.device,
        role=record.role,
        broker_url=broker_url,
        model_pack=record.model_pack,
        cert_serial=record.serial,
        cert_not_after=record.not_after,
    )
    shutil.copyfile(home.ca_cert, folder / config.ca_file)
    if config.crl_file is None or config.pack_signing_key_file is None:
        raise RegistryError("a new bundle must name its CRL and pack-signing key files")
    shutil.copyfile(home.crl, folder / config.crl_file)
    shutil.copyfile(home.signing_pub, folder / config.pack_signing_key_file)
    (folder / CONFIG_NAME).write_text(config.model_dump_json(indent=2))
    archive = folder.with_name(f"{folder.name}.tar.gz")
    archive.touch(mode=0o600)
    archive.chmod(0o600)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return folder, archive


def write_store_bundles(home: Home, store: str) -> list[tuple[Path, Path]]:
    registry = home.load()
    registry.store(store)
    return [write_bundle(home, d.device, store) for d in registry.active(store) if d.role != "bridge"]
