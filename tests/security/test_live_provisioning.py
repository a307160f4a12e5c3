"""Issue 14, live add/revoke (finding 4's second half) and finding 14 (revoked bundles, operator
options), through the technician's commands against the running generated broker:

* ``broker-sync`` adds a device to the running broker (dynamic-security plugin), no restart;
* ``revoke --apply`` removes it live: its connection is dropped at once, its reconnect fails at the
  TLS handshake (CRL reloaded by SIGHUP), the broker process and every other connection stay;
* the revoked device's key is gone from the bundle folder *and* the .tar.gz on disk;
* ``revoke`` rewrites the broker config with the operator's options (port, bind, log, user).
"""

from __future__ import annotations

import shutil
import tarfile
import time

from typer.testing import CliRunner

from protocol import topics
from protocol.bundle import load_bundle
from provisioning import fleet
from provisioning.broker_config import CONF_NAME
from provisioning.provision_cli import app

BRAND = "acme"
runner = CliRunner()


def _cli(home, *args: str):
    result = runner.invoke(app, [*args, "--home", str(home.root)])
    assert result.exit_code == 0, result.output
    return result.output


def test_revoke_apply_cuts_the_device_live_and_shreds_its_key(home, bundle_of, broker, probe, tmp_path):
    fleet.create_device(home, "s2", "edge-rev", "edge")
    folder, archive = fleet.write_bundle(home, "edge-rev", "s2")
    key_pem = (folder / "device.key").read_bytes()
    installed = tmp_path / "installed"  # the copy on the box in the store
    shutil.copytree(folder, installed)
    conf_before = (home.broker_dir() / CONF_NAME).read_text()
    pid = broker.proc.pid

    assert "created: CN=edge-rev,OU=s2,O=acme" in _cli(home, "broker-sync")  # live add, no restart
    device = probe(load_bundle(installed))
    assert device.connect() == "Success"
    assert device.publish(topics.device_state(BRAND, "s2", "edge-rev"), b"{}") in ("Success", "No matching subscribers")
    bystander = probe(bundle_of("s1", "edge-1"))
    assert bystander.connect() == "Success"

    out = _cli(home, "revoke", "--device", "edge-rev", "--store", "s2", "--apply")
    assert "deleted 1" in out and "SIGHUP sent" in out, out
    assert device.wait(lambda: device.disconnects, timeout=5), "the revoked device should be cut off at once"
    time.sleep(0.5)
    assert probe(load_bundle(installed)).connect().startswith("refused")  # CRL reloaded: TLS handshake fails
    assert broker.proc.pid == pid and broker.proc.poll() is None  # no restart
    assert not bystander.disconnects
    assert bystander.publish(topics.device_state(BRAND, "s1", "edge-1"), b"{}") in ("Success", "No matching subscribers")

    # finding 14: no key left in the provisioning home, neither loose nor in an archive
    assert not (folder / "device.key").exists()
    if archive.exists():
        with tarfile.open(archive) as tar:
            assert "device.key" not in tar.getnames()
    for path in home.root.rglob("*"):
        if path.is_file():
            assert key_pem not in path.read_bytes(), f"{path} still holds the revoked key"
    # ... and the operator's options survived the rewrite of the broker config
    conf_after = (home.broker_dir() / CONF_NAME).read_text()
    for line in conf_before.splitlines():
        if line.startswith(("listener ", "user ", "log_dest ", "persistence_location ", "max_packet_size ")):
            assert line in conf_after, line


def test_revoke_keeps_the_operators_broker_options(tmp_path):
    home = ["--home", str(tmp_path / "home")]
    run = lambda *a: runner.invoke(app, [*a, *home])  # noqa: E731
    assert run("ca", "--brand", "acme", "--broker-url", "mqtts://10.0.0.5:18883", "--host", "10.0.0.5").exit_code == 0
    assert run("store", "create", "s9").exit_code == 0
    assert run("device", "create", "--store", "s9", "--device", "edge-1", "--role", "edge").exit_code == 0
    assert run("bundle", "--store", "s9").exit_code == 0
    done = run("broker-config", "--port", "18883", "--bind", "10.0.0.5", "--service-port", "18884",
               "--service-bind", "10.0.0.6", "--run-as", "mosq", "--max-queued", "50000")
    assert done.exit_code == 0, done.output
    conf = tmp_path / "home" / "broker" / "cloud" / CONF_NAME
    assert "listener 18883 10.0.0.5" in conf.read_text()
    revoked = run("revoke", "--device", "edge-1", "--store", "s9")
    assert revoked.exit_code == 0, revoked.output
    text = conf.read_text()
    for line in ("listener 18883 10.0.0.5", "listener 18884 10.0.0.6", "user mosq", "max_queued_messages 50000"):
        assert line in text, line
    assert "CN=edge-1,OU=s9" not in (conf.parent / "dynamic-security.json").read_text()
    assert not list((tmp_path / "home" / "bundles" / "s9").glob("edge-1.tar.gz"))


def test_a_store_broker_learns_a_new_device_live(home, bundle_of, store_broker, probe):
    """The in-store broker has the same service listener and admin: a device added to the store is
    added to the running store broker, with the store-local grants (face crops) only there."""
    from provisioning import dynsec

    fleet.create_device(home, "s3", "edge-2", "edge")
    fleet.write_bundle(home, "edge-2", "s3")
    edge = probe(bundle_of("s3", "edge-2"))
    assert edge.connect() == "Success"
    crop = topics.store_local(BRAND, "s3", "crop", "edge-2")
    assert edge.publish(crop, b"{}") == "Not authorized"  # unknown to the running store broker
    pid = store_broker.proc.pid
    result = dynsec.sync(home, home.load(), dynsec.admin_url(home, home.load(), "s3"), store="s3")
    assert result.created == ["CN=edge-2,OU=s3,O=acme"], result
    assert edge.publish(crop, b"{}") in ("Success", "No matching subscribers")
    assert store_broker.proc.pid == pid
