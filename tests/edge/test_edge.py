"""The edge command on real models and a real Mosquitto: config, refusals, publishing, remote config."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import cv2
import numpy as np
import pytest

from edge.config import ConfigError, build
from edge.sources import Source, SourceError
from protocol import topics, transport
from protocol.codec import decode
from protocol.device import ConfigDesired, ConfigReported, FaceCrop, RemoteSettings
from protocol.facepack import PackError
from protocol.facepack.engine import FaceEngine
from protocol.messages import Arrival, DeviceState

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def edge_run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provisioning", "edge", "run", *args],
                          capture_output=True, text=True, timeout=timeout)


def lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def wait(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def couple(tmp_path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    shutil.copy(SHARED_DATA / "scenes" / "deepface_couple.jpg", folder)
    return folder


@pytest.mark.parametrize("spec, reason", [("/nonexistent/place", "neither"), ("EMPTY", "holds no images")])
def test_bad_sources_are_refused(tmp_path, spec, reason):
    with pytest.raises(SourceError, match=reason):
        Source(str(tmp_path) if spec == "EMPTY" else spec, "cam1")


def test_tampered_pack_is_refused_naming_the_file(models_dir, tmp_path):
    for f in models_dir.iterdir():
        (tmp_path / f.name).symlink_to(f)
    victim = tmp_path / "mobilefacenet_foamliu_v1.onnx"
    victim.unlink()
    victim.write_bytes(b"\x00" * 1024)
    with pytest.raises(PackError, match="mobilefacenet_foamliu_v1.onnx has sha256"):
        FaceEngine.load("scrfd500m-mbf", tmp_path)
    config = tmp_path / "box.toml"
    config.write_text(f'store = "s1"\ndevice = "e1"\nmodels = "{tmp_path}"\nstate = "{tmp_path / "s.db"}"\n'
                      f'[[cameras]]\nid = "door"\nsource = "{SHARED_DATA / "scenes"}"\n')
    result = edge_run("--config", str(config), "--once")
    assert result.returncode == 2 and "mobilefacenet_foamliu_v1.onnx has sha256" in result.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ('store = "s1"\ndevice = "e1"\n[[cameras]]\nid = "c"\nsource = "X"\n[gates]\nmax_yaw_deg = 400\n',
         "gates.max_yaw_deg: Input should be less than or equal to 90"),
        ('store = "s1"\ndevice = "e1"\ncolour = "red"\n[[cameras]]\nid = "c"\nsource = "X"\n', "colour: Extra inputs"),
        ('store = "s1"\ndevice = "e1"\n', "cameras: give --source"),
        ('store = "s1"\ndevice = "e1"\n[[cameras]]\nid = "a/b"\nsource = "X"\n', "cameras.0.id"),
        ('store = "s1"\ndevice = "e1"\n[tracking]\nfaces_for_arrival = 9\n[[cameras]]\nid = "c"\nsource = "X"\n',
         "max_faces_per_track must be at least faces_for_arrival"),
        ('store = "s1\n', "not valid TOML"),
    ],
)
def test_bad_config_fails_at_start_naming_the_field(tmp_path, text, message):
    config = tmp_path / "box.toml"
    config.write_text(text.replace('"X"', json.dumps(str(SHARED_DATA / "scenes"))))
    result = edge_run("--config", str(config), "--once")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--broker", "http://nope"], "mqtt://host:port"),
        (["--store", "a/b"], "store"),
        (["--pack", "nosuchpack"], "unknown model pack"),
        (["--source", "/nonexistent"], "neither a file"),
    ],
)
def test_edge_run_bad_arguments_fail_clearly(models_dir, args, message):
    base = {"--store": "s1", "--device": "e1", "--source": str(SHARED_DATA / "scenes"), "--broker": "mqtt://127.0.0.1:1"}
    base.update(dict(zip(args[::2], args[1::2])))
    result = edge_run(*[x for kv in base.items() for x in kv], "--once")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_broker_keeps_arrivals_for_the_next_start(models_dir, couple, tmp_path):
    config = tmp_path / "box.json"
    config.write_text(json.dumps({"store": "s1", "device": "e1", "broker": "mqtt://127.0.0.1:1",
                                  "state": str(tmp_path / "s.db"), "outbox": {"flush_timeout_s": 1},
                                  "cameras": [{"id": "door", "source": str(couple)}]}))
    result = edge_run("--config", str(config), "--once")
    assert result.returncode == 1
    assert lines(result)[-1]["unacked"] == 2 and "stay in" in result.stderr


def test_config_parses_into_typed_settings():
    cfg = build({"store": "s1", "device": "e1", "cameras": [{"id": "door", "source": "0", "fps": 10}],
                 "visits": {"revisit_window_s": 0}}, "test")
    assert cfg.remote().cameras[0].fps == 10 and cfg.visits.revisit_window_s == 0
    assert cfg.state_path.name == "edge-demo-s1-e1.db"
    with pytest.raises(ConfigError, match="test: broker"):
        build({"store": "s1", "device": "e1", "broker": "tcp://x", "cameras": [{"id": "c", "source": "0"}]}, "test")


def test_edge_run_publishes_arrivals_state_and_local_crops(mosquitto, models_dir, couple, tmp_path, recorder):
    store = f"run-{uuid4().hex[:8]}"  # the recorder hears the whole store: no other test's box may be in it
    rec = recorder(mosquitto.url, f"instore/v1/demo/{store}/#", "edge-test-run")
    config = tmp_path / "box.toml"
    config.write_text(f'store = "{store}"\ndevice = "edge9"\nbroker_scope = "store"\n[local_crop]\nenabled = true\n')
    result = edge_run("--config", str(config), "--source", str(couple), "--broker", mosquitto.url,
                      "--state", str(tmp_path / "s.db"), "--once")
    assert result.returncode == 0, result.stderr
    events = lines(result)
    assert events[-1]["event"] == "summary" and events[-1]["arrivals"] == 2 and events[-1]["unacked"] == 0
    wait(lambda: any(decode(p, DeviceState).state == "offline" for p in rec.of("/state")))
    arrivals = [decode(p, Arrival) for p in rec.of("/evt/arrival")]
    assert [a.event_id for a in arrivals] == [e["event_id"] for e in events if e["event"] == "arrival"]
    assert [decode(p, DeviceState).state for p in rec.of("/state")][::len(rec.of("/state")) - 1] == ["online", "offline"]
    crops = [decode(p, FaceCrop) for t, p in rec.messages if t == topics.store_local("demo", store, "crop", "edge9")]
    assert {c.arrival_event_id for c in crops} == {a.event_id for a in arrivals}
    image = cv2.imdecode(np.frombuffer(base64.b64decode(crops[0].jpeg), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (112, 112, 3)
    assert not any(b'"jpeg"' in p for t, p in rec.messages if "/local/" not in t), "crops stay store-local"


def test_remote_config_is_applied_or_refused_with_the_reason(mosquitto, models_dir, tmp_path, recorder, edge_process):
    rec = recorder(mosquitto.url, topics.config_reported("demo", "s1", "edge8"), "edge-test-cfg")
    edge = edge_process("--store", "s1", "--device", "edge8", "--source", "rtsp://127.0.0.1:1/door",
                        "--broker", mosquitto.url, "--state", str(tmp_path / "s.db"))
    wait(lambda: rec.of("/cfg/reported"))
    current = decode(rec.of("/cfg/reported")[-1], ConfigReported)
    assert current.version == 0 and current.settings.cameras[0].source == "rtsp://127.0.0.1:1/door"
    url = transport.BrokerUrl.parse(mosquitto.url)
    cloud = transport.make_client(url, "edge-test-cloud")
    transport.start(cloud, url)
    desired_topic = topics.config_desired("demo", "s1", "edge8")
    try:
        wanted = RemoteSettings.model_validate({**current.settings.model_dump(), "gates": {"max_yaw_deg": 25}})
        desired = ConfigDesired(brand="demo", store="s1", device="edge8", version=3, ts=datetime.now(UTC),
                                settings=wanted)
        transport.publish(cloud, desired_topic, desired, retain=True).wait_for_publish(5)
        wait(lambda: decode(rec.of("/cfg/reported")[-1], ConfigReported).version == 3)
        assert decode(rec.of("/cfg/reported")[-1], ConfigReported).settings.gates.max_yaw_deg == 25

        cloud.publish(desired_topic, b'{"v": 1, "type": "config_desired", "version": "x"}', qos=1).wait_for_publish(5)
        wait(lambda: decode(rec.of("/cfg/reported")[-1], ConfigReported).error is not None)
        refused = decode(rec.of("/cfg/reported")[-1], ConfigReported)
        assert refused.version == 3 and "refused" in refused.error
        assert edge.proc.poll() is None, "a bad desired config does not stop the box"
    finally:
        cloud.publish(desired_topic, b"", qos=1, retain=True).wait_for_publish(5)
        transport.stop(cloud)
