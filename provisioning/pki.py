"""The brand's certificate authority: server and device certificates, revocation, expiry.

Keys are ECDSA P-256: every TLS stack in the fleet (OpenSSL under Mosquitto, Python's ``ssl``
under paho and uvicorn) accepts them, and they are small and fast to sign on a store box.

A device certificate names who the device is in its subject, ``O=brand, OU=store, CN=device``,
so that Mosquitto's ``use_subject_as_username`` turns it into the username
``CN=device,OU=store,O=brand`` that the generated ACL file keys on (see ``broker_config``). The
role and the full identity also travel as a SAN URI ``instore:brand/store/device?role=edge`` that
the cloud and the edge can parse without guessing at subject order.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

URI_SCHEME = "instore"


class PkiError(RuntimeError):
    """A certificate or key that cannot be used: missing, unreadable, or not what was expected."""


@dataclass(frozen=True)
class Identity:
    """Who a client certificate speaks for."""

    brand: str
    store: str
    device: str
    role: str

    @property
    def uri(self) -> str:
        return f"{URI_SCHEME}:{self.brand}/{self.store}/{self.device}?role={self.role}"

    @property
    def broker_username(self) -> str:
        """The username Mosquitto derives with ``use_subject_as_username`` (RFC 2253 order)."""
        return f"CN={self.device},OU={self.store},O={self.brand}"

    @classmethod
    def from_uri(cls, uri: str) -> Identity:
        parts = urlsplit(uri)
        levels = parts.path.split("/")
        role = parse_qs(parts.query).get("role", [""])[0]
        if parts.scheme != URI_SCHEME or len(levels) != 3 or not role:
            raise PkiError(f"{uri!r} is not an {URI_SCHEME}:brand/store/device?role=ROLE URI")
        return cls(brand=levels[0], store=levels[1], device=levels[2], role=role)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def serial(self) -> int:
        return self.cert.serial_number


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key, *, days: int, now: dt.datetime | None
) -> x509.CertificateBuilder:
    start = (now or _now()) - dt.timedelta(minutes=5)  # tolerate small clock skew between boxes
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def create_ca(brand: str, *, days: int = 3650, purpose: str = "instore CA") -> Issued:
    """A self-signed CA; ``purpose`` names it (the brand CA, or the services CA of the cloud's accounts)."""
    key = new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, brand),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{brand} {purpose}"),
        ]
    )
    cert = (
        _builder(name, name, key.public_key(), days=days, now=None)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _leaf(
    ca: Issued,
    subject: x509.Name,
    *,
    sans: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    days: int,
    now: dt.datetime | None,
) -> Issued:
    key = new_key()
    cert = (
        _builder(subject, ca.cert.subject, key.public_key(), days=days, now=now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue_server(ca: Issued, name: str, hosts: Iterable[str], *, days: int = 825) -> Issued:
    """A TLS server certificate (broker, API) valid for the given DNS names and IP addresses."""
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _brand_of(ca)),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    return _leaf(ca, subject, sans=sans, usage=ExtendedKeyUsageOID.SERVER_AUTH, days=days, now=None)


def issue_client(
    ca: Issued, identity: Identity, *, days: int = 365, now: dt.datetime | None = None
) -> Issued:
    """A client certificate for one device; ``now`` backdates it (tests of expiry)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.brand),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, identity.store),
            x509.NameAttribute(NameOID.COMMON_NAME, identity.device),
        ]
    )
    return _leaf(
        ca,
        subject,
        sans=[x509.UniformResourceIdentifier(identity.uri)],
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        days=days,
        now=now,
    )


def build_crl(ca: Issued, revoked: Iterable[tuple[int, dt.datetime]], *, days: int = 30) -> x509.CertificateRevocationList:
    """A CRL listing the revoked serials; reissue it before ``days`` run out or TLS peers reject it."""
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=days))
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def _brand_of(ca: Issued) -> str:
    return str(ca.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value)


def identity_of(cert: x509.Certificate) -> Identity:
    """The device identity a client certificate carries in its SAN URI."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise PkiError("certificate has no subjectAltName, so no instore identity") from None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(f"{URI_SCHEME}:"):
            return Identity.from_uri(uri)
    raise PkiError("certificate carries no instore: URI")


def days_left(cert: x509.Certificate, now: dt.datetime | None = None) -> float:
    """Days until the certificate expires (negative once it has)."""
    return (cert.not_valid_after_utc - (now or _now())).total_seconds() / 86400


# --- files -------------------------------------------------------------------------------------


def write_private(path: Path, data: bytes) -> None:
    """Write a secret so that it is 0600 from the first byte: never world-readable, even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    path.chmod(0o600)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def save(issued: Issued, cert_path: Path, key_path: Path) -> None:
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert_pem(issued.cert))
    write_private(key_path, key_pem(issued.key))


def load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read certificate {path}: {exc}") from None


def load(cert_path: Path, key_path: Path) -> Issued:
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise PkiError(f"cannot read private key {key_path}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{key_path} is not an EC private key")
    return Issued(load_cert(cert_path), key)


def save_crl(crl: x509.CertificateRevocationList, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
