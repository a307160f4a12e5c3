"""The guide screen's Prometheus metrics: the last legs of door to screen (issue 19).

``instore_screen_stage_seconds{stage}`` holds, per member or visitor card, the seconds from the
capture of the frame that completed the arrival (``GuideCard.timings.capture``) to each stage the
card carries (edge: ``detected``, ``embedded``, ``queued``; cloud: ``ingested``, ``matched``,
``card``) and to the screen's own: ``received`` (the feed decoded it) and, for member cards,
``shown`` (laid out on the screen) and ``drawn`` (the card's first paint). Cards without timings
(an older cloud) only count in ``instore_screen_door_to_screen_seconds``, which is measured from
``arrival_ts`` as the ``card_shown`` line's ``door_to_screen_ms`` always was.

Nothing listens unless ``serve(port)`` is called (``instore kiosk --metrics-port``).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from prometheus_client import Histogram, start_http_server

from protocol.messages import GuideCard

log = logging.getLogger(__name__)

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3,
           0.4, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
CARRIED = ("detected", "embedded", "queued", "ingested", "matched", "card")

STAGE = Histogram("instore_screen_stage_seconds",
                  "Time from the capture of the frame that completed an arrival to each stage of its card",
                  ["stage"], buckets=BUCKETS)
DOOR_TO_SCREEN = Histogram("instore_screen_door_to_screen_seconds",
                           "Card on screen minus the arrival's capture time (arrival_ts)", buckets=BUCKETS)

_lock = threading.Lock()
_served: set[int] = set()


def carried(card: GuideCard) -> None:
    """Observe the stages the card brought with it (once per card, when it is received)."""
    if card.timings is None:
        return
    for stage in CARRIED:
        value = getattr(card.timings, f"{stage}_ms")
        if value is not None:
            STAGE.labels(stage).observe(value / 1000)


def reached(card: GuideCard, stage: str, at: datetime) -> float | None:
    """Observe a screen stage of the card reached ``at``; its ms after capture (None without timings)."""
    if card.timings is None:
        return None
    ms = card.timings.at(at)
    STAGE.labels(stage).observe(ms / 1000)
    return ms


def serve(port: int | None, addr: str = "0.0.0.0") -> bool:
    """Serve ``/metrics`` on ``port`` in a daemon thread; None or 0: do nothing."""
    if not port:
        return False
    with _lock:
        if port not in _served:
            start_http_server(port, addr)
            _served.add(port)
            log.info("metrics on http://%s:%d/metrics", addr, port)
    return True
