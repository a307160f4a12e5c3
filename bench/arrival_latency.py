"""Arrival latency: from the capture of the first frame in which a face is usable to the
``Arrival`` leaving the box (received from the broker by a subscriber), over a camera-paced
replay (25 fps) of people walking in, through the real pipeline, outbox and publisher.
The last stdout line is JSON with ``p95_ms``.

    uv run python bench/arrival_latency.py --pack yunet --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.edge_throughput import pack_id
from bench.replay import people_walking
from edge.outbox import Outbox
from edge.pipeline import FacePipeline
from edge.placement import Placement
from edge.publisher import Publisher
from edge.sources import Frame
from edge.state import StateFile
from edge.visits import VisitRegistry
from protocol import topics, transport
from protocol.codec import decode
from protocol.device import RemoteSettings
from protocol.facepack.engine import FaceEngine
from protocol.messages import Arrival
from provisioning.broker import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", default="yunet")
    parser.add_argument("--rounds", type=int, default=5, help="times the three people walk in")
    parser.add_argument("--fps", type=float, default=25)
    parser.add_argument("--faces-for-arrival", type=int, default=None, help="override the tracking default")
    parser.add_argument("--confident-quality", type=float, default=None,
                        help="a first face this good makes the arrival alone (tracking.confident_quality)")
    parser.add_argument("--fsync-each", action="store_true", help="outbox as before issue 19: each commit fsyncs")
    opts = parser.parse_args()
    pack = pack_id(opts.pack)
    work = Path(tempfile.mkdtemp(prefix="edge-latency-"))
    port = free_port()
    (work / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(work / "m.conf")])
    time.sleep(0.5)
    url = transport.BrokerUrl.parse(f"mqtt://127.0.0.1:{port}")
    received: dict[str, float] = {}
    listener = transport.make_client(url, "latency-listener")
    listener.on_message = lambda c, u, m: received.setdefault(decode(m.payload, Arrival).event_id, time.time())
    transport.subscribe_on_connect(listener, [(topics.arrival("bench", "s1", "e1"), 1)])
    transport.start(listener, url)

    state = StateFile(work / "state.db")
    tracking = {"faces_for_arrival": opts.faces_for_arrival} if opts.faces_for_arrival else {}
    if opts.confident_quality is not None:
        tracking["confident_quality"] = opts.confident_quality
    settings = RemoteSettings(cameras=[{"id": "cam1", "source": "bench"}], visits={"revisit_window_s": 0}, tracking=tracking)
    engine = FaceEngine.load(pack)
    pipeline = FacePipeline(engine, Placement("bench", "s1", "e1"), settings,
                            VisitRegistry(state, settings.visits, engine.pack.match_threshold), "cam1")
    outbox = Outbox(state, group_commit=not opts.fsync_each)
    publisher = Publisher(url, "bench", "s1", "e1", pack, outbox)
    publisher.start()
    publisher.connected.wait(10)
    time.sleep(0.5)
    first_usable: dict[str, float] = {}
    frames = people_walking((640, 480)) * opts.rounds
    interval, due = 1 / opts.fps, time.monotonic()
    for index, image in enumerate(frames):
        time.sleep(max(0.0, due - time.monotonic()))  # a camera delivers frames at its own pace
        due += interval
        for event in pipeline.process(Frame("cam1", index, datetime.now(UTC), image, f"#{index}", "door")):
            outbox.put(topics.arrival("bench", "s1", "e1"), event.arrival)
            first_usable[event.arrival.event_id] = event.first_usable_ts.timestamp()
    for event in pipeline.finish():
        outbox.put(topics.arrival("bench", "s1", "e1"), event.arrival)
        first_usable[event.arrival.event_id] = event.first_usable_ts.timestamp()
    publisher.flush(10)
    time.sleep(0.5)
    publisher.close()
    transport.stop(listener)
    broker.terminate()
    broker.wait()
    latencies = [(received[eid] - ts) * 1000 for eid, ts in first_usable.items() if eid in received]
    print(json.dumps({
        "pack": pack, "fps": opts.fps, "faces_for_arrival": settings.tracking.faces_for_arrival,
        "confident_quality": settings.tracking.confident_quality,
        "outbox": "fsync each commit" if opts.fsync_each else "group commit",
        "arrivals": len(first_usable), "delivered": len(latencies),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1), "p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "max_ms": round(max(latencies), 1), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }))


if __name__ == "__main__":
    main()
