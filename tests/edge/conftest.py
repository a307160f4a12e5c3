"""Edge fixtures: replay videos built from the real photos, an edge subprocess, an MQTT recorder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from protocol import transport

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FACES = SHARED_DATA / "faces"
#: Sharp, frontal portraits of three different people.
PEOPLE = [FACES / "deepface_id01" / "img1.jpg", FACES / "deepface_id02" / "img26.jpg", FACES / "deepface_id03" / "img47.jpg"]
SIZE = (640, 480)


def _portrait(path: Path, height: int) -> np.ndarray:
    image = cv2.imread(str(path))
    return cv2.resize(image, (height * image.shape[1] // image.shape[0], height), interpolation=cv2.INTER_AREA)


def _place(canvas: np.ndarray, image: np.ndarray, cx: int, cy: int) -> None:
    h, w = image.shape[:2]
    x1, y1 = cx - w // 2, cy - h // 2
    sx1, sy1 = max(0, -x1), max(0, -y1)
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(canvas.shape[1], x1 + w - sx1), min(canvas.shape[0], y1 + h - sy1)
    canvas[y1:y2, x1:x2] = image[sy1 : sy1 + y2 - y1, sx1 : sx1 + x2 - x1]


def walk_in(photo: Path, frames: int = 30) -> list[np.ndarray]:
    """A person walking towards the camera: the photo moves to the centre and grows."""
    out = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        canvas = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
        _place(canvas, _portrait(photo, int(220 + 160 * t)), int(200 + 120 * t), 240)
        out.append(canvas)
    return out


def empty(frames: int) -> list[np.ndarray]:
    return [np.full((SIZE[1], SIZE[0], 3), 90, np.uint8) for _ in range(frames)]


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


class Kit:
    """The helpers above, for test modules (pytest's importlib mode cannot import this conftest)."""

    people = PEOPLE
    shared = SHARED_DATA
    walk_in = staticmethod(walk_in)
    empty = staticmethod(empty)
    write_video = staticmethod(write_video)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit


@pytest.fixture
def walk_video(tmp_path) -> Path:
    """Three people walk in one after the other."""
    return write_video(tmp_path / "walk.avi", [f for p in PEOPLE for f in walk_in(p)])


class Edge:
    """``python -m provisioning edge run ...`` as a process, its stdout JSON lines collected live."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "provisioning", "edge", "run", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self.events: list[dict] = []
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr += line

    def arrivals(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "arrival"]

    def wait_arrivals(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrivals()) < count:
            assert self.proc.poll() is None or len(self.arrivals()) >= count, f"edge exited early:\n{self.stderr[-3000:]}"
            assert time.monotonic() < deadline, f"only {len(self.arrivals())} arrivals:\n{self.stderr[-3000:]}"
            time.sleep(0.05)

    def finish(self, timeout: float = 180) -> dict:
        self.proc.wait(timeout)
        self._reader.join(5)
        summary = self.events[-1] if self.events else {}
        assert summary.get("event") == "summary", self.stderr[-3000:]
        return summary

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class Recorder:
    """Everything published under a topic filter, in arrival order, with a persistent session so
    that nothing is lost while the recorder itself is cut off by a broker restart."""

    def __init__(self, url: str, topic_filter: str, client_id: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.url = transport.BrokerUrl.parse(url)
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._props = Properties(PacketTypes.CONNECT)
        self._props.SessionExpiryInterval = 600
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect(self.url.host, self.url.port, clean_start=False, properties=self._props)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def of(self, suffix: str) -> list[bytes]:
        return [p for t, p in list(self.messages) if t.endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def durable_broker(mosquitto, tmp_path):
    """The shared Mosquitto, restarted with persistence so that sessions survive ``stop``/``start``."""
    original = mosquitto.config.read_text()
    store = tmp_path / "mosquitto-db"
    store.mkdir()
    mosquitto.stop()
    mosquitto.config.write_text(original + f"persistence true\npersistence_location {store}/\nautosave_interval 1\n")
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()
        mosquitto.config.write_text(original)
        mosquitto.start()


@pytest.fixture
def edge_process():
    """Start edge processes; any still running at the end are killed."""
    started: list[Edge] = []

    def start(*args: str) -> Edge:
        started.append(Edge(*args))
        return started[-1]

    yield start
    for edge in started:
        if edge.proc.poll() is None:
            edge.kill()


@pytest.fixture
def recorder():
    made: list[Recorder] = []

    def make(url: str, topic_filter: str, client_id: str = "edge-test-recorder") -> Recorder:
        made.append(Recorder(url, topic_filter, client_id))
        return made[-1]

    yield make
    for r in made:
        r.close()
