"""One simulated store's edge box: arrivals and Wi-Fi messages through the product's outbox and publisher.

Only the cameras are simulated: instead of detecting faces, each camera "sees" a random person at
a Poisson rate and sends the embedding the real pack made of one of that person's photos (a
little noise added, as no two frames give the same vector). Everything after that is the box's
own code: ``edge.outbox.Outbox`` on a SQLite state file that survives a kill, and
``edge.publisher.Publisher`` draining it in order with QoS 1. So at-least-once delivery and
ordering under broker restarts, cut links and kills are the product's, not the simulator's.

Each arrival, once committed to the outbox, is appended to ``--log`` as one JSON line with its
ground truth (the person's photo folder), so the soak can check what the cloud and the screen did
with it. SIGTERM stops the cameras and flushes the outbox; SIGKILL leaves it on disk for the next
start with the same ``--state``.

    python -m bench.fleet.edge_sim --store s01 --broker mqtt://127.0.0.1:1883 --state s01.db \
        --log s01.jsonl --until 1790000000 --rate 0.1
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import secrets
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.fleet.faces import load_people
from edge.outbox import Outbox
from edge.publisher import Publisher
from edge.state import StateFile
from protocol import topics, transport
from protocol.embedding import Embedding
from protocol.facepack import get_pack
from protocol.messages import Arrival, FaceQuality, new_id
from protocol.wifi import WifiFootfall, WifiPresence

#: Spread of the per-frame noise added to a photo's embedding (before re-normalising).
NOISE = 0.01


class SimulatedBox:
    def __init__(self, opts: argparse.Namespace) -> None:
        self.opts = opts
        self.brand, self.store, self.device = opts.brand, opts.store, opts.device
        self.pack = get_pack(opts.pack)
        self.people = load_people(self.pack.id)
        self.state = StateFile(Path(opts.state))
        self.outbox = Outbox(self.state)
        self.publisher = Publisher(transport.BrokerUrl.parse(opts.broker), self.brand, self.store, self.device,
                                   self.pack.id, self.outbox)
        self.log = Path(opts.log).open("a", buffering=1)  # one line per arrival, flushed as written
        self.rng = random.Random(secrets.randbits(64))
        self.stop = threading.Event()
        self.arrivals = 0

    def _arrival(self) -> None:
        person = self.rng.choice(self.people)
        photo = self.rng.randrange(len(person.photos))
        noisy = person.vectors[photo] + np.random.default_rng(self.rng.randrange(2**32)).normal(0, NOISE, person.vectors.shape[1])
        camera = f"cam{self.rng.randrange(self.opts.cameras) + 1}"
        arrival = Arrival(
            event_id=new_id(), ts=datetime.now(UTC), brand=self.brand, store=self.store, device=self.device,
            camera=camera, track_id=f"t{self.arrivals}", embedding=Embedding.from_vector(noisy / np.linalg.norm(noisy)),
            quality=FaceQuality(det_score=0.9, face_px=80, bbox=(100, 80, 180, 180)), model_pack=self.pack.id,
        )
        self.outbox.put(topics.arrival(self.brand, self.store, self.device), arrival)
        self.arrivals += 1
        self.log.write(json.dumps({"event_id": arrival.event_id, "person": person.label, "camera": camera,
                                   "ts": arrival.ts.timestamp(), "photo": person.photos[photo].name}) + "\n")

    def _wifi_minute(self, minute: datetime) -> None:
        """A minute closed: one footfall row and an enter of a phone nobody registered."""
        ts = datetime.now(UTC)
        people = self.rng.randrange(0, 12)
        self.outbox.put(topics.footfall(self.brand, self.store, self.device), WifiFootfall(
            event_id=new_id(), ts=ts, brand=self.brand, store=self.store, device=self.device, minute=minute,
            people=people, passing=self.rng.randrange(0, 30), visits_started=min(people, 3),
            distinct_macs=people * 2, background=2, probes=people * 9))
        self.outbox.put(topics.presence(self.brand, self.store, self.device), WifiPresence(
            event_id=new_id(), ts=ts, brand=self.brand, store=self.store, device=self.device,
            device_key=secrets.token_hex(32), phase="enter", first_seen=ts - timedelta(seconds=90), last_seen=ts,
            dwell_s=90.0, frames=12, rssi_max=-48, rssi_median=-60))

    def run(self) -> None:
        self.publisher.start()
        rate = self.opts.rate * self.opts.cameras  # the cameras' Poisson processes, merged
        next_arrival = time.time() + self.rng.expovariate(rate)
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        while not self.stop.is_set() and time.time() < self.opts.until:
            self.stop.wait(max(0.0, min(next_arrival, self.opts.until) - time.time()))
            if self.stop.is_set() or time.time() >= self.opts.until:
                break
            self._arrival()
            next_arrival += self.rng.expovariate(rate)
            current = datetime.now(UTC).replace(second=0, microsecond=0)
            if current > minute:
                self._wifi_minute(minute)
                minute = current
        left = self.publisher.flush(self.opts.flush_s)
        self.publisher.close()
        self.state.close()
        print(json.dumps({"event": "summary", "store": self.store, "arrivals": self.arrivals, "unacked": left,
                          "reconnects": self.publisher.reconnects, "refused": dict(self.publisher.refused)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brand", default="fleet")
    parser.add_argument("--store", required=True)
    parser.add_argument("--device", default="edge1")
    parser.add_argument("--broker", required=True)
    parser.add_argument("--state", required=True, help="the box's SQLite state file (outbox)")
    parser.add_argument("--log", required=True, help="JSON lines: every arrival committed to the outbox")
    parser.add_argument("--until", type=float, required=True, help="epoch seconds: stop making arrivals")
    parser.add_argument("--rate", type=float, default=0.05, help="arrivals per second per camera")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--pack", default=None)
    parser.add_argument("--flush-s", type=float, default=120.0, help="how long to wait for the outbox at the end")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s {opts.store} %(name)s %(message)s")
    box = SimulatedBox(opts)
    signal.signal(signal.SIGTERM, lambda *_: box.stop.set())
    box.run()


if __name__ == "__main__":
    main()
