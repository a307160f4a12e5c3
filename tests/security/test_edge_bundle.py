"""An edge box starts from nothing but its install bundle: its certificate connects it to the
TLS broker, its arrival reaches the cloud's shared subscription, its telemetry says how many days
the certificate has left, and a model pack the brand did not sign, or that changed since, stops
it before any model is loaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import ConfigError
from edge.install import with_bundle
from protocol import topics
from protocol.codec import decode
from protocol.device import Telemetry
from protocol.facepack import get_pack
from protocol.messages import Arrival
from provisioning import fleet
from provisioning.signing import sign_pack

PACK = "yunet-mbf"


def edge_run(models: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provisioning", "edge", "run", *args],
                          capture_output=True, text=True, timeout=180, env=dict(os.environ, INSTORE_MODELS=str(models)))


@pytest.fixture
def pack_folder(tmp_path, models_dir) -> Path:
    """The pack's files, linked from the shared model folder (the signed manifest sits beside them)."""
    folder = tmp_path / "models"
    folder.mkdir()
    for spec in get_pack(PACK).files:
        (folder / spec.name).symlink_to(models_dir / spec.name)
    return folder


def test_edge_box_starts_from_its_bundle_and_its_arrival_reaches_the_cloud(
        home, bundle_of, broker, probe, reload_acls, pack_folder, camera, tmp_path):
    fleet.create_device(home, "s1", "edge-pack", "edge", model_pack=PACK, days=20)
    bundle_dir, _ = fleet.write_bundle(home, "edge-pack", "s1")
    reload_acls()
    sign_pack(home, pack_folder, PACK)
    cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
    assert cloud.connect() == "Success"
    assert cloud.subscribe(topics.shared(topics.ALL_DEVICE_EVENTS, "cdp")) == "Granted QoS 1"
    assert cloud.subscribe(topics.shared(f"{topics.ROOT}/+/+/+/telemetry", "cdp")) == "Granted QoS 1"

    done = edge_run(pack_folder, "--bundle", str(bundle_dir), "--source", str(camera),
                    "--state", str(tmp_path / "box.db"), "--once")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["arrivals"] == 2 and summary["unacked"] == 0
    assert "expires in 20 days: renew it" in done.stderr  # logged at start

    assert cloud.wait(lambda: len([m for m in cloud.messages if m.topic.endswith("/evt/arrival")]) >= 2
                      and any(m.topic.endswith("/telemetry") for m in cloud.messages))
    arrivals = [decode(m.payload, Arrival) for m in cloud.messages if m.topic == topics.arrival("acme", "s1", "edge-pack")]
    assert len(arrivals) == 2 and {a.model_pack for a in arrivals} == {PACK}
    telemetry = [decode(m.payload, Telemetry) for m in cloud.messages if m.topic.endswith("/telemetry")]
    assert 19 < telemetry[-1].cert_days_left <= 20


@pytest.mark.parametrize("damage, reason", [
    ("unsigned", "is unsigned: no pack.signed.json"),
    ("tampered", "file mobilefacenet_foamliu_v1.onnx was tampered with"),
])
def test_an_unsigned_or_tampered_pack_refuses_to_start(home, pack_folder, camera, tmp_path, damage, reason):
    if damage == "tampered":
        sign_pack(home, pack_folder, PACK)
        victim = pack_folder / get_pack(PACK).recogniser.file.name
        data = victim.read_bytes()
        victim.unlink()
        victim.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    done = edge_run(pack_folder, "--bundle", str(home.bundle_dir("s1", "edge-1")), "--pack", PACK,
                    "--source", str(camera), "--state", str(tmp_path / "box.db"), "--once")
    assert done.returncode == 2 and reason in done.stderr, done.stderr[-2000:]


def test_a_bundle_names_the_box_and_cannot_be_contradicted(home, tmp_path):
    data, bundle = with_bundle({"bundle": str(home.bundle_dir("s1", "edge-1")), "cameras": []}, "flags")
    assert (data["brand"], data["store"], data["device"]) == ("acme", "s1", "edge-1")
    assert data["broker"].startswith("mqtts://") and bundle.broker.tls_files is not None
    with pytest.raises(ConfigError, match="store: 's2' contradicts the bundle, which says 's1'"):
        with_bundle({"bundle": str(home.bundle_dir("s1", "edge-1")), "store": "s2"}, "flags")
    with pytest.raises(ConfigError, match="is for a kiosk"):
        with_bundle({"bundle": str(home.bundle_dir("s1", "kiosk-main"))}, "flags")
    shutil.copytree(home.bundle_dir("s1", "edge-1"), tmp_path / "loose")
    (tmp_path / "loose" / "device.key").chmod(0o644)
    with pytest.raises(ConfigError, match="must be 0600"):
        with_bundle({"bundle": str(tmp_path / "loose")}, "flags")
