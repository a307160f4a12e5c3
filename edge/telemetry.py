"""The box's health in one ``Telemetry`` message: per camera, pipeline totals, outbox (depth,
dropped, refused by the broker and the retry back-off), CPU, memory, and the days its certificate
has left."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import psutil

from edge.camera import CameraWorker
from edge.outbox import Outbox
from edge.placement import Placement
from protocol.device import Telemetry
from protocol.messages import now


class Health:
    def __init__(self, placement: Placement, model_pack: str, outbox: Outbox,
                 cert_expiry: datetime | None = None, delivery: Callable[[], dict] | None = None) -> None:
        """``cert_expiry``: when the device certificate expires (a box started from a bundle);
        ``delivery``: the publisher's refusal figures (``Publisher.delivery``)."""
        self.delivery = delivery
        self.placement = placement
        self.model_pack = model_pack
        self.outbox = outbox
        self.cert_expiry = cert_expiry
        self.started = time.monotonic()
        #: cfg/desired and cmd/* messages refused, by reason (the box counts, this reports).
        self.commands_refused: Counter[str] = Counter()
        self.process = psutil.Process()
        self.process.cpu_percent()  # the first call only starts the measurement

    def report(self, workers: list[CameraWorker]) -> Telemetry:
        stats = [w.pipeline.stats for w in workers]
        rejected: Counter[str] = Counter()
        for s in stats:
            rejected.update(s.rejected)
        ts = now()
        delivery = self.delivery() if self.delivery is not None else {}
        return Telemetry(
            brand=self.placement.brand, store=self.placement.store, device=self.placement.device,
            ts=ts, uptime_s=round(time.monotonic() - self.started, 1), model_pack=self.model_pack,
            cameras=[w.telemetry() for w in workers],
            faces=sum(s.faces for s in stats), tracks=sum(s.tracks for s in stats),
            arrivals=sum(s.arrivals for s in stats), same_visit=sum(s.same_visit for s in stats),
            rejected=dict(rejected), commands_refused=dict(self.commands_refused),
            outbox_depth=self.outbox.depth, outbox_dropped=self.outbox.dropped,
            outbox_refused=delivery.get("refused", {}), outbox_backoff_s=delivery.get("backoff_s", 0.0),
            cpu_percent=self.process.cpu_percent(), rss_mb=round(self.process.memory_info().rss / 2**20, 1),
            cert_days_left=round((self.cert_expiry - ts).total_seconds() / 86400, 2) if self.cert_expiry else None,
        )
