"""The cloud's Prometheus metrics: where each arrival's time went on the cloud's side (issue 19).

``instore_cloud_stage_seconds{stage}``: per arrival, the time from the capture of the frame that
completed it to ``ingested`` (received and decoded), ``matched`` (member or visitor decided) and
``card`` (the card built and stored, about to be published) — the ``protocol.messages.StageTimes``
offsets the cloud writes into the guide card, in the same buckets as the edge and the screen. The
API serves them at ``/metrics`` to the holder of the metrics token (``cloud/api/metrics.py``).
"""

from __future__ import annotations

from prometheus_client import Histogram

from protocol.messages import StageTimes, now
from protocol.metrics import STAGE_BUCKETS

STAGE = Histogram("instore_cloud_stage_seconds",
                  "Time from the capture of the frame that completed an arrival to each cloud stage",
                  ["stage"], buckets=STAGE_BUCKETS)
#: Each stage's child of the histogram, made once: ``labels()`` checks and looks its values up on every
#: call, three times an arrival (issue 19, tenth pass).
_BY_STAGE = {stage: STAGE.labels(stage) for stage in ("ingested", "matched", "card")}


def reached(timings: StageTimes, stage: str) -> StageTimes:
    """``timings`` with ``stage`` reached now, observed in the histogram."""
    ms = timings.at(now())
    _BY_STAGE[stage].observe(ms / 1000)
    return timings.model_copy(update={f"{stage}_ms": ms})
