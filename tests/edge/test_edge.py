"""The edge box on real models and a real Mosquitto: sources, face pipeline, publishing, refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from protocol import topics, transport
from protocol.codec import decode
from protocol.facepack import PackError
from protocol.facepack.engine import FaceEngine
from protocol.messages import Arrival, DeviceState

from edge.pipeline import FacePipeline, Placement
from edge.sources import Source, SourceError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def engine(models_dir):
    return FaceEngine.load()


def edge_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provisioning", "edge", "run", *args],
                          capture_output=True, text=True, timeout=120)


def test_two_people_in_one_frame_are_two_arrivals(engine, tmp_path):
    shutil.copy(SHARED_DATA / "scenes" / "deepface_couple.jpg", tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    source = Source(str(tmp_path), "cam1")
    pipeline = FacePipeline(engine, Placement("demo", "s1", "edge1"))
    arrivals = [a for frame in source.frames() for a in pipeline.process(frame)]
    assert len(arrivals) == 2
    assert {a.track_id for a in arrivals} == {"f1-0", "f1-1"}  # frame 0 was the broken file
    assert source.skipped == [str(tmp_path / "broken.jpg")]
    vectors = [a.embedding.to_vector() for a in arrivals]
    assert float(vectors[0] @ vectors[1]) < 0.4, "two different people"


def test_tiny_faces_are_not_embedded(engine, tmp_path):
    image = cv2.imread(str(SHARED_DATA / "faces" / "deepface_id01" / "img2.jpg"))
    small = cv2.resize(image, (40, 40 * image.shape[0] // image.shape[1]))
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[100 : 100 + small.shape[0], 100 : 100 + small.shape[1]] = small
    cv2.imwrite(str(tmp_path / "tiny.png"), canvas)
    pipeline = FacePipeline(engine, Placement("demo", "s1", "edge1"))
    arrivals = [a for f in Source(str(tmp_path), "cam1").frames() for a in pipeline.process(f)]
    assert arrivals == []


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


def test_edge_run_publishes_arrivals_and_its_state(mosquitto, models_dir, tmp_path):
    shutil.copy(SHARED_DATA / "scenes" / "deepface_couple.jpg", tmp_path)
    url = transport.BrokerUrl.parse(mosquitto.url)
    received: list[tuple[str, bytes]] = []
    done = threading.Event()
    client = transport.make_client(url, "test-listener")

    def on_message(c, userdata, msg):
        received.append((msg.topic, msg.payload))
        if msg.topic.endswith("/state") and decode(msg.payload, DeviceState).state == "offline":
            done.set()

    client.on_message = on_message
    transport.subscribe_on_connect(client, [("instore/v1/demo/s1/edge9/#", 1)])
    transport.start(client, url)
    try:
        result = edge_run("--store", "s1", "--device", "edge9", "--source", str(tmp_path),
                          "--broker", mosquitto.url, "--once")
        assert result.returncode == 0, result.stderr
        assert done.wait(10)
    finally:
        transport.stop(client)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[-1]["event"] == "summary" and lines[-1]["arrivals"] == 2 and lines[-1]["unacked"] == 0
    arrivals = [decode(p, Arrival) for t, p in received if t == topics.arrival("demo", "s1", "edge9")]
    assert {a.event_id for a in arrivals} == {e["event_id"] for e in lines if e["event"] == "arrival"}
    states = [decode(p, DeviceState).state for t, p in received if t.endswith("/state")]
    assert states[0] == "online" and states[-1] == "offline"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--broker", "http://nope"], "mqtt://host:port"),
        (["--broker", "mqtt://127.0.0.1:1"], "cannot connect"),
        (["--store", "a/b"], "store id"),
        (["--pack", "nosuchpack"], "unknown model pack"),
    ],
)
def test_edge_run_bad_arguments_fail_clearly(models_dir, args, message):
    base = {"--store": "s1", "--device": "e1", "--source": str(SHARED_DATA / "scenes"), "--broker": "mqtt://127.0.0.1:1"}
    base.update(dict(zip(args[::2], args[1::2])))
    result = edge_run(*[x for kv in base.items() for x in kv], "--once")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
