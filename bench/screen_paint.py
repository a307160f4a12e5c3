"""The guide screen's cost of one new card: from ``show_card`` to the card's first paint, on a
full screen (offscreen Qt, 1920x1080, 4 x 2 cards), the GUI thread's CPU time and wall clock, and
how many card widgets were painted for it.

Each round offers one new member card to a screen that is already full, so the oldest card leaves
and the new one comes, as at a busy door. With an enrolled photo on every card (``--photos``: a
generated 112 px JPEG, not a face) the decode and scaling of the photo is part of the cost.

    QT_QPA_PLATFORM=offscreen uv run python bench/screen_paint.py [--rounds 40] [--photos]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol.messages import GuideCard, MemberSummary, Recommendation, new_id

STORE = "bench"


def photo() -> str:
    """A 112 px JPEG of a colour gradient: the size of an enrolled face, and no one's face."""
    ramp = np.linspace(0, 255, 112, dtype=np.uint8)
    image = np.dstack([np.tile(ramp, (112, 1)), np.tile(ramp[:, None], (1, 112)), np.full((112, 112), 128, np.uint8)])
    return base64.b64encode(cv2.imencode(".jpg", image)[1].tobytes()).decode()


def card(n: int, enrolled_photo: str | None) -> GuideCard:
    now = datetime.now(UTC)
    member = MemberSummary(member_id=f"m{n}", name=f"会员{n}", title=f"会员{n}", tier="金卡", visits=n % 9,
                           tags=["高价值", "护肤偏好", "周末到店"], lifetime_value=1000 + n,
                           preferences=["护肤"], enrolled_photo=enrolled_photo)
    return GuideCard(card_id=new_id(), ts=now, visit_id=new_id(), arrival_event_id=new_id(), brand="demo",
                     store=STORE, arrival_ts=now - timedelta(milliseconds=300), expires_at=now + timedelta(hours=1),
                     member=member, confidence=0.9, script="您好，欢迎光临！" * 3,
                     recommendations=[Recommendation(sku=f"SK-{n}", name="修护精华露 50ml", price=1280, reason="复购周期")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--photos", action="store_true", help="an enrolled photo on every card")
    opts = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    from kiosk.guide_screen.screen import GuideScreen

    app = QApplication.instance() or QApplication([])
    screen = GuideScreen(STORE, "main", columns=4, rows=2)
    screen.resize(1920, 1080)
    screen.show()
    painted: list[str] = []

    class Paints(QObject):
        """Counts the paint events of card widgets."""

        def eventFilter(self, watched, event) -> bool:
            if event.type() == QEvent.Type.Paint and getattr(watched, "card", None) is not None:
                painted.append(watched.card.card_id)
            return False

    paints = Paints()
    app.installEventFilter(paints)
    image = photo() if opts.photos else None
    for n in range(8):  # a full screen
        screen.show_card(card(n, image))
    for _ in range(20):
        app.processEvents()
    cpu_ms, wall_ms, repainted = [], [], []
    for n in range(8, 8 + opts.rounds):
        new = card(n, image)
        painted.clear()
        started, cpu = time.perf_counter(), time.thread_time()
        screen.show_card(new)
        while new.card_id not in painted:
            app.processEvents()
        for _ in range(3):  # what else this arrival made Qt paint
            app.processEvents()
        cpu_ms.append((time.thread_time() - cpu) * 1000)
        wall_ms.append((time.perf_counter() - started) * 1000)
        repainted.append(len(set(painted)))
    print(json.dumps({
        "rounds": opts.rounds, "photos": opts.photos,
        "cpu_ms_p50": round(float(np.percentile(cpu_ms, 50)), 2), "cpu_ms_p95": round(float(np.percentile(cpu_ms, 95)), 2),
        "wall_ms_p50": round(float(np.percentile(wall_ms, 50)), 2), "wall_ms_p95": round(float(np.percentile(wall_ms, 95)), 2),
        "cards_painted_p50": float(np.percentile(repainted, 50)), "cards_painted_max": max(repainted),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
