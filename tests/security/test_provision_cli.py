"""The technician's flow through `instore provision`: a brand, then a store in three commands."""

from __future__ import annotations

import stat

from typer.testing import CliRunner

from protocol.bundle import load_bundle
from provisioning.provision_cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_new_store_in_three_commands(tmp_path):
    home = ["--home", str(tmp_path / "home")]
    ca = _run("ca", "--brand", "acme", "--broker-url", "mqtts://127.0.0.1:8883", "--host", "127.0.0.1", *home)
    assert ca.exit_code == 0, ca.output

    assert _run("store", "create", "s9", "--name", "Shanghai IFC", *home).exit_code == 0
    for device, role in (("edge-1", "edge"), ("kiosk-main", "kiosk"), ("esl-1", "esl_gateway")):
        result = _run("device", "create", "--store", "s9", "--device", device, "--role", role, *home)
        assert result.exit_code == 0, result.output
    result = _run("bundle", "--store", "s9", *home)
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 3

    bundle = load_bundle(tmp_path / "home" / "bundles" / "s9" / "kiosk-main.tar.gz")
    assert bundle.config.role == "kiosk" and str(bundle.broker) == "mqtts://127.0.0.1:8883"
    assert stat.S_IMODE(bundle.tls.key.stat().st_mode) == 0o600

    conf = _run("broker-config", "--port", "18883", *home)
    assert conf.exit_code == 0, conf.output
    assert "require_certificate true" in (tmp_path / "home" / "broker" / "cloud" / "mosquitto.conf").read_text()

    assert _run("crl", *home).exit_code == 0
    revoked = _run("revoke", "--device", "esl-1", *home)
    assert revoked.exit_code == 0, revoked.output
    listing = _run("device", "list", "--store", "s9", *home)
    assert "revoked" in listing.output and "active" in listing.output


def test_refusals_exit_1_with_a_reason(tmp_path):
    home = ["--home", str(tmp_path / "home")]
    missing = _run("store", "create", "s1", *home)
    assert missing.exit_code == 1 and "provision ca" in missing.output
    plain = _run("ca", "--brand", "acme", "--broker-url", "mqtt://127.0.0.1:1883", "--host", "127.0.0.1", *home)
    assert plain.exit_code == 1 and "mqtts" in plain.output
    bad_id = _run("ca", "--brand", "ac/me", "--broker-url", "mqtts://h:8883", "--host", "h", *home)
    assert bad_id.exit_code == 1 and "brand id" in bad_id.output
