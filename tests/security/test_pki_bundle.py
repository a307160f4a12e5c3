"""Certificates carry the device identity; bundles hold a 0600 key and load into a TLS broker URL."""

from __future__ import annotations

import datetime as dt
import stat
import tarfile

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from protocol.bundle import BundleError, load_bundle
from protocol.transport import BrokerUrl, BrokerUrlError
from provisioning import fleet, pki
from provisioning.registry import RegistryError


def test_device_certificate_names_brand_store_device_and_role(home):
    cert = pki.load_cert(home.bundle_dir("s1", "kiosk-main") / "device.crt")
    name = {a.oid: a.value for a in cert.subject}
    assert (name[NameOID.ORGANIZATION_NAME], name[NameOID.ORGANIZATIONAL_UNIT_NAME], name[NameOID.COMMON_NAME]) == (
        "acme", "s1", "kiosk-main",
    )
    assert pki.identity_of(cert) == pki.Identity("acme", "s1", "kiosk-main", "kiosk")
    assert 364 < pki.days_left(cert) <= 365


def test_crl_lists_superseded_serials(home):
    old = home.load().find("esl-1", "s1")
    new = fleet.create_device(home, "s1", "esl-1", "esl_gateway", renew=True)
    crl = x509.load_pem_x509_crl(home.crl.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(int(old.serial, 16)) is not None
    assert crl.get_revoked_certificate_by_serial_number(int(new.serial, 16)) is None
    fleet.write_bundle(home, "esl-1", "s1")


def test_registry_refuses_bad_requests(home):
    with pytest.raises(RegistryError, match="exists"):
        fleet.create_device(home, "s1", "edge-1", "edge")
    with pytest.raises(RegistryError, match="kiosk-<screen>"):
        fleet.create_device(home, "s1", "screen-2", "kiosk")
    with pytest.raises(RegistryError, match="not registered"):
        fleet.create_device(home, "nowhere", "edge-1", "edge")
    with pytest.raises(RegistryError, match="several stores"):
        fleet.write_bundle(home, "edge-1")


def test_bundle_keys_are_0600_in_folder_and_archive(home):
    folder = home.bundle_dir("s1", "edge-1")
    assert stat.S_IMODE((folder / "device.key").stat().st_mode) == 0o600
    archive = folder.with_name("edge-1.tar.gz")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) >= {"device.key", "device.crt", "ca.crt", "crl.pem", "config.json", "pack-signing.pub"}
    assert stat.S_IMODE(members["device.key"].mode) == 0o600


def test_bundle_loads_typed_config_and_tls_paths(home, tmp_path):
    archive = home.bundle_dir("s1", "edge-1").with_name("edge-1.tar.gz")
    copy = tmp_path / "edge-1.tar.gz"
    copy.write_bytes(archive.read_bytes())
    bundle = load_bundle(copy)
    assert (bundle.config.store, bundle.config.device, bundle.config.role) == ("s1", "edge-1", "edge")
    assert bundle.broker.tls and bundle.broker.tls_files.key == tmp_path / "edge-1" / "device.key"
    assert stat.S_IMODE(bundle.tls.key.stat().st_mode) == 0o600
    assert bundle.expiry_warning() is None
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=350)
    assert "renew" in bundle.expiry_warning(soon)


def test_bundle_with_readable_key_is_refused(home, tmp_path):
    archive = home.bundle_dir("s1", "edge-1").with_name("edge-1.tar.gz")
    copy = tmp_path / "b.tar.gz"
    copy.write_bytes(archive.read_bytes())
    bundle = load_bundle(copy)
    bundle.tls.key.chmod(0o644)
    with pytest.raises(BundleError, match="must be 0600"):
        load_bundle(bundle.folder)
    (bundle.folder / "config.json").write_text('{"v": 1}')
    bundle.tls.key.chmod(0o600)
    with pytest.raises(BundleError, match="invalid"):
        load_bundle(bundle.folder)


def test_broker_urls_keep_plain_mqtt_and_add_mqtts():
    assert BrokerUrl.parse("mqtt://h:1884") == BrokerUrl("h", 1884)
    assert str(BrokerUrl.parse("mqtt://h?protocol=3.1.1")) == "mqtt://h:1883?protocol=3.1.1"
    tls = BrokerUrl.parse("mqtts://h?ca=/a&cert=/b&key=/c")
    assert (tls.port, tls.tls, str(tls.tls_files.key)) == (8883, True, "/c")
    with pytest.raises(BrokerUrlError, match="mqtts"):
        BrokerUrl.parse("mqtt://h?ca=/a&cert=/b&key=/c")
    with pytest.raises(BrokerUrlError, match="all of"):
        BrokerUrl.parse("mqtts://h?ca=/a")
