"""The periodic health job of the cloud process: every ``interval_s`` roll up the closed hours (and
the store-days late rows changed), then scan them for anomalies.

It runs on the process's scheduler (``cloud.scheduler``), which the runtime starts and stops; the
first run waits one interval, so a process that only starts and stops (a CLI call, a test) never
pays for it. A failing run is logged and the next one tries again: a bad row must not stop the
dashboards from updating.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from cloud.db import Database
from cloud.health.rollup import RollupResult, rollup_changed
from cloud.scheduler import Scheduler

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 300.0

#: what runs after each rollup with the same "now": the anomaly scan (cloud.health.anomaly.scan)
AfterRollup = Callable[[datetime], object]


class HealthService:
    def __init__(self, db: Database, *, interval_s: float = DEFAULT_INTERVAL_S,
                 after_rollup: AfterRollup | None = None) -> None:
        self._db = db
        self.interval_s = interval_s
        self._after_rollup = after_rollup
        self.last: RollupResult | None = None

    def run_once(self, now: datetime | None = None) -> RollupResult:
        """One rollup of what changed, then the hook (the anomaly scan) over the same closed hours."""
        now = now or datetime.now(UTC)
        result = rollup_changed(self._db, now=now)
        if self._after_rollup is not None:
            self._after_rollup(now)
        self.last = result
        log.info("health rollup: %s", result.as_dict())
        return result

    def schedule(self, scheduler: Scheduler) -> None:
        """Run every ``interval_s`` on the process's scheduler, the first time one interval after it starts."""
        scheduler.every("health-rollup", self.interval_s, self.run_once)
