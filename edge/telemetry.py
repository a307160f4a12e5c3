"""The box's health in one ``Telemetry`` message: per camera, pipeline totals, outbox, CPU, memory."""

from __future__ import annotations

import time
from collections import Counter

import psutil

from protocol.device import Telemetry
from protocol.messages import now

from edge.camera import CameraWorker
from edge.outbox import Outbox
from edge.pipeline import Placement


class Health:
    def __init__(self, placement: Placement, model_pack: str, outbox: Outbox) -> None:
        self.placement = placement
        self.model_pack = model_pack
        self.outbox = outbox
        self.started = time.monotonic()
        self.process = psutil.Process()
        self.process.cpu_percent()  # the first call only starts the measurement

    def report(self, workers: list[CameraWorker]) -> Telemetry:
        stats = [w.pipeline.stats for w in workers]
        rejected: Counter[str] = Counter()
        for s in stats:
            rejected.update(s.rejected)
        return Telemetry(
            brand=self.placement.brand, store=self.placement.store, device=self.placement.device,
            ts=now(), uptime_s=round(time.monotonic() - self.started, 1), model_pack=self.model_pack,
            cameras=[w.telemetry() for w in workers],
            faces=sum(s.faces for s in stats), tracks=sum(s.tracks for s in stats),
            arrivals=sum(s.arrivals for s in stats), same_visit=sum(s.same_visit for s in stats),
            rejected=dict(rejected), outbox_depth=self.outbox.depth, outbox_dropped=self.outbox.dropped,
            cpu_percent=self.process.cpu_percent(), rss_mb=round(self.process.memory_info().rss / 2**20, 1),
        )
