"""A device's install bundle: its typed config and the TLS files it connects with.

``instore provision bundle`` writes one folder (and a .tar.gz of it) per device; the edge box,
the guide screen and the ESL gateway start from it (``--bundle PATH``). It lives in the contract
because the wings may import only ``protocol``. Loading refuses a bundle whose private key is
readable by anyone but its owner, as ssh does, since a copied key is a copied device.
"""

from __future__ import annotations

import datetime as dt
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import NameOID
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, field_validator

from protocol.topics import check_id
from protocol.transport import BrokerUrl, BrokerUrlError, TlsFiles

CONFIG_NAME = "config.json"
#: Warn (telemetry, logs) when the device certificate has fewer days left than this.
EXPIRY_WARNING_DAYS = 30
#: The store of a service account that spans every store (the cloud).
ALL_STORES = "*"


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the file and the problem."""


class BundleConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    brand: str
    store: str
    device: str
    role: Literal["edge", "kiosk", "esl_gateway", "bridge", "cloud"]
    broker_url: str
    ca_file: str = "ca.crt"
    cert_file: str = "device.crt"
    key_file: str = "device.key"
    crl_file: str | None = "crl.pem"
    pack_signing_key_file: str | None = "pack-signing.pub"
    model_pack: str | None = None
    cert_serial: str
    cert_not_after: AwareDatetime

    @field_validator("brand", "device")
    @classmethod
    def _ids(cls, value: str) -> str:
        return check_id("bundle", value)

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        return value if value == ALL_STORES else check_id("store", value)

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str) -> str:
        if not BrokerUrl.parse(value).tls:
            raise ValueError("a bundle's broker URL must be mqtts:// (devices connect with their certificate)")
        return value


@dataclass(frozen=True)
class Bundle:
    folder: Path
    config: BundleConfig

    def path(self, name: str) -> Path:
        return self.folder / name

    @property
    def tls(self) -> TlsFiles:
        c = self.config
        return TlsFiles(ca=self.path(c.ca_file), cert=self.path(c.cert_file), key=self.path(c.key_file))

    @property
    def broker(self) -> BrokerUrl:
        return BrokerUrl.parse(self.config.broker_url).with_tls(self.tls)

    @property
    def pack_signing_key(self) -> Path | None:
        name = self.config.pack_signing_key_file
        return self.path(name) if name else None

    def cert_days_left(self, now: dt.datetime | None = None) -> float:
        """Days until the device certificate expires, from the certificate itself (negative once expired)."""
        cert = _read_cert(self.tls.cert)
        return (cert.not_valid_after_utc - (now or dt.datetime.now(dt.UTC))).total_seconds() / 86400

    def expiry_warning(self, now: dt.datetime | None = None, *, days: int = EXPIRY_WARNING_DAYS) -> str | None:
        left = self.cert_days_left(now)
        if left < 0:
            return f"device certificate of {self.config.device} expired {-left:.0f} days ago: it cannot connect"
        if left < days:
            return f"device certificate of {self.config.device} expires in {left:.0f} days: renew it"
        return None


def _read_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise BundleError(f"bundle certificate {path} is unreadable: {exc}") from None


def unpack(archive: Path, dest: Path) -> Path:
    """Extract a bundle archive into ``dest`` (created 0700), keeping the key's 0600 mode."""
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(dest, filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise BundleError(f"cannot unpack bundle {archive}: {exc}") from None
    return dest


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle folder (or a .tar.gz, unpacked next to it); check its files before use."""
    path = Path(path).expanduser()
    if path.is_file() and path.name.endswith(".tar.gz"):
        path = unpack(path, path.with_name(path.name.removesuffix(".tar.gz")))
    if not path.is_dir():
        raise BundleError(f"bundle {path} is neither a folder nor a .tar.gz archive")
    config_path = path / CONFIG_NAME
    try:
        config = BundleConfig.model_validate_json(config_path.read_bytes())
    except OSError as exc:
        raise BundleError(f"bundle {path} has no readable {CONFIG_NAME}: {exc}") from None
    except (ValidationError, BrokerUrlError) as exc:
        raise BundleError(f"bundle config {config_path} is invalid: {exc}") from None
    bundle = Bundle(folder=path, config=config)
    try:
        bundle.tls.check()
    except BrokerUrlError as exc:
        raise BundleError(f"bundle {path}: {exc}") from None
    mode = bundle.tls.key.stat().st_mode & 0o777
    if mode & 0o077:
        raise BundleError(
            f"bundle key {bundle.tls.key} has mode {mode:o}; it must be 0600 (chmod 600 it) so no other user can read it"
        )
    cert = _read_cert(bundle.tls.cert)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != config.device:
        raise BundleError(f"bundle certificate {bundle.tls.cert} is not for device {config.device}")
    return bundle
