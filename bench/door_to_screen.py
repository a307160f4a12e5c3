"""Door to screen at a steady arrival rate: an edge publisher, a private Mosquitto, the cloud
(ingest, matching, visits, recommendations, script, label flashes; SQLite) and the guide screen
(the real ``CardFeed`` and an offscreen ``GuideScreen``), all on this machine.

    uv run python bench/door_to_screen.py --arrivals 200 --rate 5

Members are enrolled from the first photo of ``--members`` people in ``--faces``; every arrival
is another photo of one of them, or of a person not enrolled (a visitor, every third arrival).
Embeddings are computed before the clock starts: the edge's detection and tracking time is
``bench/arrival_latency.py``'s figure, not this one. Arrivals are published at ``--rate`` per
second without waiting for their cards, so a busy door's queueing is in the figures. The
latency is the screen's own ``door_to_screen_ms`` (on screen minus the arrival's capture time).
The last stdout line is JSON with ``p50_ms``, ``p95_ms``, ``p99_ms`` and ``max_ms``.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from cloud.runtime import Runtime  # noqa: E402
from cloud.settings import Settings  # noqa: E402
from cloud.cdp import members
from protocol import topics, transport  # noqa: E402
from protocol.embedding import Embedding  # noqa: E402
from protocol.facepack import get_pack  # noqa: E402
from protocol.facepack.engine import FaceEngine, decode_image  # noqa: E402
from protocol.messages import Arrival, FaceQuality, new_id, now  # noqa: E402
from provisioning.broker import free_port  # noqa: E402

BRAND, STORE = "bench", "s1"
DEFAULT_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


def arrival_template(engine: FaceEngine, photo: Path) -> Arrival:
    """An arrival of the largest face in ``photo``; ids and time are set when it is published."""
    image = decode_image(photo.read_bytes())
    face = engine.detect(image)[0]
    return Arrival(
        event_id=new_id(), ts=now(), brand=BRAND, store=STORE, device="edge-01", camera="door-1", track_id="t1",
        embedding=Embedding.from_vector(engine.embed(image, face)),
        quality=FaceQuality(det_score=face.score, face_px=face.size_px, bbox=tuple(int(v) for v in face.bbox)),
        model_pack=engine.pack.id,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * (len(ordered) - 1)))], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arrivals", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="arrivals per second")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES, help="one folder of photos per person")
    opts = parser.parse_args()
    people = sorted(p for p in opts.faces.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 2)
    if len(people) < opts.members + 1:
        parser.error(f"{opts.faces} needs {opts.members + 1} folders with two photos or more")

    work = Path(tempfile.mkdtemp(prefix="door-to-screen-"))
    port = free_port()
    (work / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(work / "m.conf")],
                              stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    url = f"mqtt://127.0.0.1:{port}"
    settings = Settings(db=str(work / "cloud.db"), broker_url=url, api_key=None)
    engine = FaceEngine.load(get_pack(settings.pack_id).id)  # the cloud's enrolment and the edge's embeddings
    runtime = Runtime.open(settings, engine=engine)

    from PySide6.QtWidgets import QApplication

    from kiosk.guide_screen.feed import CardFeed
    from kiosk.guide_screen.screen import GuideScreen

    app = QApplication.instance() or QApplication(["bench"])
    screen = GuideScreen(STORE, "main", columns=4, rows=2)
    screen.resize(1920, 1080)
    feed = CardFeed(transport.BrokerUrl.parse(url), BRAND, STORE, "main")
    shown: list[float] = []
    ready: list[bool] = []
    feed.card_received.connect(screen.show_card)
    feed.subscribed.connect(lambda: ready.append(True))
    screen.card_shown.connect(lambda card, ms: shown.append(ms))
    edge = transport.make_client(transport.BrokerUrl.parse(url), "bench-edge")
    try:
        runtime.start()
        templates = []
        for number, folder in enumerate(people[: opts.members + 1]):
            photos = sorted(folder.glob("*.jpg"))
            if number < opts.members:  # the last person stays a visitor
                member = members.add_member(runtime.db, name=f"会员{number}", phone=f"1380000{number:04d}", gender=None,
                                                  tier="金卡", tags=[], categories=["护肤"], face_consent=True)
                runtime.enroller.enrol(member.id, photos[0].read_bytes())
            templates.append(arrival_template(engine, photos[1]))
        screen.show()
        feed.start()
        transport.start(edge, transport.BrokerUrl.parse(url))
        while not ready:
            app.processEvents()
            time.sleep(0.01)
        started, interval = time.monotonic(), 1 / opts.rate
        for n in range(opts.arrivals):
            while time.monotonic() < started + n * interval:
                app.processEvents()
                time.sleep(0.002)
            person = opts.members if n % 3 == 2 else n % opts.members
            arrival = templates[person].model_copy(update={"event_id": new_id(), "ts": now()})
            transport.publish(edge, topics.arrival(BRAND, STORE, "edge-01"), arrival)
        deadline = time.monotonic() + 30
        while len(shown) < opts.arrivals and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.002)
        elapsed = time.monotonic() - started
    finally:
        transport.stop(edge)
        feed.stop()
        runtime.close()
        broker.terminate()
        broker.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({
        "arrivals": opts.arrivals, "shown": len(shown), "rate_per_s": opts.rate, "members": opts.members,
        "elapsed_s": round(elapsed, 1), "p50_ms": percentile(shown, 50), "p95_ms": percentile(shown, 95),
        "p99_ms": percentile(shown, 99), "max_ms": percentile(shown, 100), "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
