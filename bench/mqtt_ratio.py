"""The product's MQTT leg against bare paho on the same broker: how much do the outbox, the
publisher and the codec add to an arrival's trip?

Both sides send the same arrival (one encoded ``Arrival``, ~1 KB) one at a time, paced, to a
subscriber on a private Mosquitto, and time publish-to-receive:

- ``bare``: ``paho.Client.publish(topic, bytes, qos=1)`` straight to the broker, the subscriber
  only takes the time;
- ``product``: ``edge.outbox.Outbox.put`` (the SQLite commit that makes it survive a crashed
  process), the ``edge.publisher.Publisher`` (QoS 1, in order: from the putting thread when it is
  caught up, else its drain thread), and a subscriber that decodes it with
  ``protocol.codec.decode`` as the cloud's ingest does. With ``--durable-first`` the publisher
  waits for the group fsync that makes the row survive a power cut before it sends
  (``outbox.durable_before_send``).

The last stdout line is JSON with both medians and p95s and ``ratio_p50`` (product / bare;
target <= 1.5), and ``ratio_after_commit_p50``: the same from the moment ``put`` returned (which,
when the publisher was caught up, is after paho took the message).

    uv run python bench/mqtt_ratio.py [--messages 300] [--interval-ms 20] [--durable-first]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.outbox import Outbox
from edge.publisher import Publisher
from edge.state import StateFile
from protocol import topics, transport
from protocol.codec import decode, encode
from protocol.embedding import Embedding
from protocol.messages import Arrival, FaceQuality, new_id
from tests.netutil import MosquittoProcess, free_port

TOPIC = topics.arrival("bench", "s1", "e1")


def arrival() -> Arrival:
    vector = np.random.default_rng().normal(size=128).astype(np.float32)
    return Arrival(event_id=new_id(), ts=datetime.now(UTC), brand="bench", store="s1", device="e1",
                   camera="cam1", track_id="t1", embedding=Embedding.from_vector(vector / np.linalg.norm(vector)),
                   quality=FaceQuality(det_score=0.9, face_px=80, bbox=(0, 0, 80, 80)), model_pack="scrfd500m-mbf")


class Receiver:
    """A subscriber that records when each event id arrived (decoding it, or reading it raw)."""

    def __init__(self, url: transport.BrokerUrl, decoded: bool) -> None:
        self.times: dict[str, float] = {}
        self.got = threading.Condition()
        self.decoded = decoded
        self.client = transport.make_client(url, f"ratio-rx-{new_id()[:8]}")
        transport.subscribe_on_connect(self.client, [(TOPIC, 1)])
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        transport.start(self.client, url)
        subscribed.wait(10)

    def _on_message(self, client, userdata, message) -> None:
        received = time.perf_counter()
        event_id = decode(message.payload, Arrival).event_id if self.decoded else message.payload[-40:].decode()
        with self.got:
            self.times[event_id] = received
            self.got.notify_all()

    def wait(self, event_id: str, timeout: float = 5.0) -> float | None:
        with self.got:
            self.got.wait_for(lambda: event_id in self.times, timeout)
            return self.times.get(event_id)


def bare(url: transport.BrokerUrl, n: int, interval: float) -> list[float]:
    rx = Receiver(url, decoded=False)
    tx = transport.make_client(url, "ratio-tx-bare")
    transport.start(tx, url)
    payload = encode(arrival())
    out = []
    for i in range(n):
        key = f"{i:040d}"
        sent = time.perf_counter()
        tx.publish(TOPIC, payload + key.encode(), qos=1)
        if (got := rx.wait(key)) is not None:
            out.append((got - sent) * 1000)
        time.sleep(interval)
    transport.stop(tx)
    transport.stop(rx.client)
    return out


def product(url: transport.BrokerUrl, n: int, interval: float, workdir: Path,
            durable_first: bool) -> tuple[list[float], list[float]]:
    """(put to received, put returned to received) in ms."""
    rx = Receiver(url, decoded=True)
    state = StateFile(workdir / "outbox.db")
    outbox = Outbox(state)
    publisher = Publisher(url, "bench", "s1", "e1", "scrfd500m-mbf", outbox, durable_first=durable_first)
    publisher.start()
    publisher.connected.wait(10)
    out, after_commit = [], []
    for _ in range(n):
        message = arrival()
        sent = time.perf_counter()
        outbox.put(TOPIC, message)
        committed = time.perf_counter()
        if (got := rx.wait(message.event_id)) is not None:
            out.append((got - sent) * 1000)
            after_commit.append((got - committed) * 1000)
        time.sleep(interval)
    publisher.close()
    state.close()
    transport.stop(rx.client)
    return out, after_commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--durable-first", action="store_true",
                        help="the outbox's durable_before_send: each arrival waits for its fsync before it goes")
    opts = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mqtt-ratio-"))
    port = free_port()
    (workdir / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = MosquittoProcess(workdir / "m.conf", port)
    broker.start()
    try:
        url = transport.BrokerUrl.parse(f"mqtt://127.0.0.1:{port}")
        interval = opts.interval_ms / 1000
        # interleave the two in halves so that load from elsewhere on the machine hits both alike
        half = opts.messages // 2
        bare_ms, product_ms, after_commit_ms = [], [], []
        for size in (half, opts.messages - half):
            bare_ms += bare(url, size, interval)
            whole, after_commit = product(url, size, interval, workdir, opts.durable_first)
            product_ms += whole
            after_commit_ms += after_commit
    finally:
        broker.stop()
    b50, p50 = float(np.percentile(bare_ms, 50)), float(np.percentile(product_ms, 50))
    print(json.dumps({
        "messages": opts.messages, "durable_first": opts.durable_first, "bare_received": len(bare_ms), "product_received": len(product_ms),
        "bare_p50_ms": round(b50, 3), "bare_p95_ms": round(float(np.percentile(bare_ms, 95)), 3),
        "product_p50_ms": round(p50, 3), "product_p95_ms": round(float(np.percentile(product_ms, 95)), 3),
        "ratio_p50": round(p50 / b50, 2),
        "after_commit_p50_ms": round(float(np.percentile(after_commit_ms, 50)), 3),
        "ratio_after_commit_p50": round(float(np.percentile(after_commit_ms, 50)) / b50, 2),
        "ratio_p95": round(float(np.percentile(product_ms, 95)) / float(np.percentile(bare_ms, 95)), 2),
    }))


if __name__ == "__main__":
    main()
