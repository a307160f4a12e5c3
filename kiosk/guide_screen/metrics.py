"""The guide screen's Prometheus metrics: the last legs of door to screen (issue 19).

``instore_screen_stage_seconds{stage}`` holds, per member or visitor card, the seconds from the
capture of the frame that completed the arrival (``GuideCard.timings.capture``) to each stage the
card carries (edge: ``detected``, ``embedded``, ``queued``; cloud: ``ingested``, ``matched``,
``card``) and to the screen's own: ``received`` (the feed decoded it) and, for member cards,
``shown`` (laid out on the screen) and ``drawn`` (the card's first paint). Cards without timings
(an older cloud) only count in ``instore_screen_door_to_screen_seconds``, which is measured from
``arrival_ts`` as the ``card_shown`` line's ``door_to_screen_ms`` always was.

Nothing listens unless ``protocol.metrics.serve(port)`` is called (``instore kiosk --metrics-port``).
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Histogram

from protocol.messages import GuideCard
from protocol.metrics import STAGE_BUCKETS

CARRIED = ("detected", "embedded", "queued", "ingested", "matched", "card")

STAGE = Histogram("instore_screen_stage_seconds",
                  "Time from the capture of the frame that completed an arrival to each stage of its card",
                  ["stage"], buckets=STAGE_BUCKETS)
DOOR_TO_SCREEN = Histogram("instore_screen_door_to_screen_seconds",
                           "Card on screen minus the arrival's capture time (arrival_ts)", buckets=STAGE_BUCKETS)



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
