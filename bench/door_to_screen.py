"""Door to screen, stage by stage: the edge (the real face pipeline, outbox and publisher), a
private Mosquitto, the cloud (ingest, matching, visits, recommendations, script, label flashes;
SQLite) and the guide screen (the real ``CardFeed`` and an offscreen ``GuideScreen``), all on this
machine, at a steady rate of frames at the door.

    uv run python bench/door_to_screen.py --frames 60 --rate 2 --faces-per-frame 1

Members are enrolled from the first photo of ``--members`` people in ``--faces``; every frame
shows ``--faces-per-frame`` other photos of them (and, every third face, of a person not enrolled:
a visitor) side by side on a 640x480 canvas. Each frame goes through ``edge.pipeline`` in an edge
thread as a camera's would (detection and embedding of every face in the frame, gates, track,
visit check), each arrival into the group-committed ``edge.outbox`` and out through
``edge.publisher``; ``--edge precomputed`` instead publishes arrivals embedded before the clock
started (the cloud and screen legs alone, as this benchmark measured before issue 19), and
``--fsync-each`` runs the outbox as before issue 19 (a commit waits for its own fsync).

Every card is timed from the capture of the frame that completed its arrival
(``StageTimes.capture``) to each stage: the edge's (``detected``, ``embedded``, ``queued``, from
the arrival), the cloud's (from the card's ``timings`` once the cloud fills them; until then from
probes this benchmark wraps around the in-process cloud: ``ingest_received`` (MQTT callback),
``ingest_started`` (taken off the inbox), ``matched``, ``card_built``, ``card_sent``), and the
screen's (``screen_received``, ``shown``: laid out, ``drawn``: first paint). Door to screen is
``drawn``. The last stdout line is JSON: ``p50_ms``/``p95_ms``/``p99_ms``/``max_ms`` of door to
screen, ``stages`` (p50/p95 of each stage's offset) and ``legs`` (p50/p95 of each step alone).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from cloud.runtime import Runtime
from cloud.settings import Settings
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
from protocol.embedding import Embedding
from protocol.facepack import get_pack
from protocol.facepack.engine import FaceEngine, decode_image
from protocol.messages import Arrival, FaceQuality, StageTimes, new_id, now
from provisioning.broker import free_port

BRAND, STORE, DEVICE = "bench", "s1", "edge-01"
DEFAULT_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"
SIZE = (640, 480)
#: Stage order door to screen; a leg is the step from the stage before.
STAGES = ("detected", "embedded", "queued", "ingest_received", "ingest_started", "matched", "card_built",
          "card_sent", "screen_received", "shown", "drawn")
#: The cloud's own fields in ``StageTimes``, and the probe stage each replaces.
CLOUD_FIELDS = {"ingested": "ingest_started", "matched": "matched", "card": "card_sent"}


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


def canvas(photos: list[Path]) -> np.ndarray:
    """The photos side by side (up to 3 a row) on a grey 640x480 frame, as a door camera sees people."""
    width, height = SIZE
    rows = 1 if len(photos) <= 3 else 2
    per_row = -(-len(photos) // rows)
    cell_w, cell_h = width // per_row, height // rows
    frame = np.full((height, width, 3), 90, np.uint8)
    for n, photo in enumerate(photos):
        image = cv2.imread(str(photo))
        scale = min(cell_w / image.shape[1], cell_h / image.shape[0])
        small = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        x, y = (n % per_row) * cell_w, (n // per_row) * cell_h
        frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    return frame


def arrival_template(engine: FaceEngine, photo: Path) -> Arrival:
    """An arrival of the largest face in ``photo``; ids and time are set when it is published."""
    image = decode_image(photo.read_bytes())
    face = engine.detect(image)[0]
    return Arrival(
        event_id=new_id(), ts=now(), brand=BRAND, store=STORE, device=DEVICE, camera="door-1", track_id="t1",
        embedding=Embedding.from_vector(engine.embed(image, face)),
        quality=FaceQuality(det_score=min(1.0, face.score), face_px=face.size_px, bbox=tuple(int(v) for v in face.bbox)),
        model_pack=engine.pack.id,
    )


def add_member(runtime: Runtime, **fields):
    """A member, through whichever API the cloud of this checkout has (it is being restructured)."""
    if hasattr(runtime, "store"):
        return runtime.store.add_member(**fields)
    from cloud.cdp.members import add_member as add

    return add(runtime.db, **fields)


class CloudProbe:
    """Wall-clock times of each arrival's steps inside the in-process cloud, by event id.

    Wraps the ingest worker's MQTT callback, its processor and the processor's matcher and card
    builder (attributes looked up defensively: if the cloud's insides move, the cloud stages are
    simply missing and the cloud shows as one leg). Costs about 0.1 ms an arrival (a JSON parse)."""

    def __init__(self, runtime: Runtime) -> None:
        self.at: dict[str, dict[str, datetime]] = {}
        self.payloads: dict[str, bytes] = {}  # the arrivals as the edge sent them (decoded after the run)
        self.received: dict[bytes, datetime] = {}
        self._current: str | None = None
        self.ok = False
        try:
            ingest = runtime.ingest
            processor = ingest._processor
            client = ingest._client
            self._wrap_callback(client)
            self._wrap(processor, "process", before="ingest_started", key_from_payload=True)
            self._wrap(processor._matcher, "match", after="matched")
            self._wrap(processor._cards, "build", after="card_built")
            self._wrap(ingest, "_publish", before="card_sent")
            if hasattr(processor, "_same_visit_elsewhere"):
                # The cloud's rule that a person seen again within 10 minutes is the visit already
                # opened (no second card) would leave one card per person: this benchmark shows the
                # same handful of people again and again, each time as a new visit.
                processor._same_visit_elsewhere = lambda *args, **kwargs: False
            self.ok = True
        except AttributeError as exc:
            print(f"cloud probes not installed ({exc}); the cloud is one leg", file=sys.stderr)

    def _wrap_callback(self, client) -> None:
        original = client.on_message

        def on_message(c, userdata, message):
            self.received[message.payload] = now()
            original(c, userdata, message)

        client.on_message = on_message

    def _wrap(self, owner, name: str, *, before: str | None = None, after: str | None = None,
              key_from_payload: bool = False) -> None:
        original = getattr(owner, name)

        def wrapped(*args, **kwargs):
            if key_from_payload:
                topic, payload = args[0], args[1]
                self._current = None
                if topic.endswith("/evt/arrival"):
                    try:
                        self._current = json.loads(payload)["event_id"]
                        self.payloads[self._current] = payload
                        self.at[self._current] = {"ingest_received": self.received.pop(payload, now())}
                    except (ValueError, KeyError):
                        pass
            if before and self._current:
                self.at[self._current][before] = now()
            result = original(*args, **kwargs)
            if after and self._current:
                self.at[self._current][after] = now()
            return result

        setattr(owner, name, wrapped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", "--arrivals", type=int, default=60,
                        help="frames with faces sent to the door (--arrivals: the name before issue 19)")
    parser.add_argument("--rate", type=float, default=2.0, help="frames per second")
    parser.add_argument("--faces-per-frame", type=int, default=1)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--edge", choices=("pipeline", "precomputed"), default="pipeline")
    parser.add_argument("--fsync-each", action="store_true", help="outbox as before issue 19: each commit fsyncs")
    parser.add_argument("--pack", default=None, help="model pack (default: the cloud's)")
    parser.add_argument("--detect-for-min-face", action="store_true", help="gates.detect_for_min_face on the edge")
    parser.add_argument("--min-face-px", type=int, default=None, help="gates.min_face_px on the edge (default: the pack's)")
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES, help="one folder of photos per person")
    opts = parser.parse_args()
    people = sorted(p for p in opts.faces.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 2)
    if len(people) < opts.members + 1:
        parser.error(f"{opts.faces} needs {opts.members + 1} folders with two photos or more")

    work = Path(tempfile.mkdtemp(prefix="door-to-screen-"))
    port = free_port()
    (work / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(work / "m.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(broker.terminate)  # whatever fails below
    time.sleep(0.5)
    url = f"mqtt://127.0.0.1:{port}"
    broker_url = transport.BrokerUrl.parse(url)
    settings = Settings(db=str(work / "cloud.db"), broker_url=url, api_key=None,
                        **({"pack_id": opts.pack} if opts.pack else {}))
    engine = FaceEngine.load(get_pack(settings.pack_id).id)  # the cloud's enrolment
    runtime = Runtime.open(settings, engine=engine)
    probe = CloudProbe(runtime)

    from PySide6.QtWidgets import QApplication

    from kiosk.guide_screen.feed import CardFeed
    from kiosk.guide_screen.screen import GuideScreen

    app = QApplication.instance() or QApplication(["bench"])
    screen = GuideScreen(STORE, "main", columns=4, rows=2)
    screen.resize(1920, 1080)
    feed = CardFeed(broker_url, BRAND, STORE, "main")
    cards: dict[str, object] = {}  # arrival event id -> card
    screen_at: dict[str, dict[str, datetime]] = {}
    ready: list[bool] = []

    def mark(card, stage: str) -> None:
        screen_at.setdefault(card.arrival_event_id, {})[stage] = now()
        cards[card.arrival_event_id] = card

    feed.card_received.connect(lambda card: mark(card, "screen_received"))  # in paho's thread, as received
    feed.card_received.connect(screen.show_card)
    feed.subscribed.connect(lambda: ready.append(True))
    screen.card_shown.connect(lambda card, ms: mark(card, "shown"))
    screen.card_drawn.connect(lambda card, ms: mark(card, "drawn"))

    # the edge: its own engine (threads as a one-camera box on this machine), outbox, publisher
    state = StateFile(work / "edge.db")
    outbox = Outbox(state, group_commit=not opts.fsync_each)
    publisher = Publisher(broker_url, BRAND, STORE, DEVICE, engine.pack.id, outbox)
    remote = RemoteSettings(cameras=[{"id": "door-1", "source": "bench"}], visits={"revisit_window_s": 0},
                            gates={"detect_for_min_face": opts.detect_for_min_face, "min_face_px": opts.min_face_px})
    edge_engine = FaceEngine.load(engine.pack.id, threads=os.cpu_count() or 2)
    pipeline = FacePipeline(edge_engine, Placement(BRAND, STORE, DEVICE), remote,
                            VisitRegistry(state, remote.visits, edge_engine.pack.match_threshold), "door-1")
    topic = topics.arrival(BRAND, STORE, DEVICE)
    sent: list[str] = []
    frames_done = threading.Event()
    try:
        runtime.start()
        faces_needed = opts.frames * opts.faces_per_frame
        photos, templates = [], []
        for number, folder in enumerate(people[: opts.members + 1]):
            jpgs = sorted(folder.glob("*.jpg"))
            if number < opts.members:  # the last person stays a visitor
                member = add_member(runtime, name=f"会员{number}", phone=f"1380000{number:04d}", gender=None,
                                    tier="金卡", tags=[], categories=["护肤"], face_consent=True)
                runtime.enroller.enrol(member.id, jpgs[0].read_bytes())
            photos.append(jpgs[1])
            if opts.edge == "precomputed":
                templates.append(arrival_template(engine, jpgs[1]))
        order = [opts.members if n % 3 == 2 else n % opts.members for n in range(faces_needed)]
        frames = [canvas([photos[p] for p in order[f * opts.faces_per_frame:(f + 1) * opts.faces_per_frame]])
                  for f in range(min(opts.frames, 12))]  # the frames repeat; made before the clock starts
        pipeline.process(Frame("door-1", 0, now(), frames[0], "warm-up", "warm-up"))  # first inference
        pipeline.finish()
        screen.show()
        feed.start()
        publisher.start()
        publisher.connected.wait(10)
        while not ready:
            app.processEvents()
            time.sleep(0.01)
        interval = 1 / opts.rate

        def door() -> None:
            started = time.monotonic()
            for n in range(opts.frames):
                time.sleep(max(0.0, started + n * interval - time.monotonic()))
                if opts.edge == "precomputed":
                    for j in range(opts.faces_per_frame):
                        arrival = templates[order[n * opts.faces_per_frame + j]]
                        captured = now()
                        arrival = arrival.model_copy(update={"event_id": new_id(), "ts": captured,
                                                             "timings": StageTimes(capture=captured)})
                        outbox.put(topic, arrival)
                        sent.append(arrival.event_id)
                    continue
                frame = Frame("door-1", n + 1, now(), frames[n % len(frames)], f"#{n}", f"frame{n}")
                for event in pipeline.process(frame) + pipeline.finish():  # each frame a scene, as a folder of photos
                    outbox.put(topic, event.arrival)
                    sent.append(event.arrival.event_id)
            frames_done.set()

        began = time.monotonic()
        threading.Thread(target=door, name="door", daemon=True).start()
        while not frames_done.is_set():
            app.processEvents()
            time.sleep(0.002)
        deadline = time.monotonic() + 30
        while sum("shown" in screen_at.get(e, {}) for e in sent) < len(sent) and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.002)
        for _ in range(50):  # the last paints
            app.processEvents()
            time.sleep(0.002)
        elapsed = time.monotonic() - began
    finally:
        if publisher.connected.is_set():
            publisher.close()
        feed.stop()
        runtime.close()
        broker.terminate()
        broker.wait()
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for eid in sent:
        card = cards.get(eid)
        trace = getattr(card, "timings", None)  # a card from a cloud that fills them
        if trace is None and eid in probe.payloads:  # else the arrival as the edge sent it
            trace = decode(probe.payloads[eid], Arrival).timings
        if trace is None:
            continue
        row = {s: getattr(trace, f"{s}_ms") for s in ("detected", "embedded", "queued")}
        for field, stage in CLOUD_FIELDS.items():
            if getattr(trace, f"{field}_ms") is not None:
                row[stage] = getattr(trace, f"{field}_ms")
        for stage, moment in {**probe.at.get(eid, {}), **screen_at.get(eid, {})}.items():
            row.setdefault(stage, trace.at(moment))
        row["member"] = "drawn" in row
        rows.append({k: v for k, v in row.items() if v is not None})
    report(opts, rows, len(sent), elapsed, probe.ok)


def report(opts: argparse.Namespace, rows: list[dict], sent: int, elapsed: float, probed: bool) -> None:
    """A table of stages and legs on stderr-free stdout, then the JSON line."""
    door = [r.get("drawn", r.get("shown")) for r in rows if "shown" in r]  # visitors: counted, never drawn
    stages, legs = {}, {}
    print(f"{'stage':<16}{'p50 ms':>9}{'p95 ms':>9}   {'leg':<34}{'p50 ms':>9}{'p95 ms':>9}")
    previous = None
    for stage in STAGES:
        values = [r[stage] for r in rows if stage in r]
        if not values:
            continue
        stages[stage] = {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}
        leg_name = f"{previous or 'capture'} -> {stage}"
        leg = [r[stage] - r[previous] if previous else r[stage] for r in rows if stage in r and (previous is None or previous in r)]
        legs[leg_name] = {"p50": percentile(leg, 50), "p95": percentile(leg, 95)}
        print(f"{stage:<16}{stages[stage]['p50']:>9}{stages[stage]['p95']:>9}   {leg_name:<34}"
              f"{legs[leg_name]['p50']:>9}{legs[leg_name]['p95']:>9}")
        previous = stage
    print(json.dumps({
        "edge": opts.edge, "outbox": "fsync each commit" if opts.fsync_each else "group commit", "pack": opts.pack,
        "detect_for_min_face": opts.detect_for_min_face, "min_face_px": opts.min_face_px,
        "frames": opts.frames, "faces_per_frame": opts.faces_per_frame, "rate_per_s": opts.rate,
        "arrivals": sent, "timed": len(door), "members_drawn": sum(1 for r in rows if r["member"]),
        "cloud_probed": probed, "elapsed_s": round(elapsed, 1),
        "p50_ms": percentile(door, 50), "p95_ms": percentile(door, 95), "p99_ms": percentile(door, 99),
        "max_ms": round(max(door), 1) if door else None,
        "stages": stages, "legs": legs,
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
