"""The periodic health job of the cloud process: every ``interval_s`` roll up the closed hours (and
the store-days late rows changed), then scan them for anomalies.

It runs in a daemon thread the runtime starts and stops; the first run waits one interval, so a
process that only starts and stops (a CLI call, a test) never pays for it. A failing run is
logged and the next one tries again: a bad row must not stop the dashboards from updating.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone

from cloud.db import Database
from cloud.health.rollup import RollupResult, rollup_changed

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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: RollupResult | None = None

    def run_once(self, now: datetime | None = None) -> RollupResult:
        """One rollup of what changed, then the hook (the anomaly scan) over the same closed hours."""
        now = now or datetime.now(timezone.utc)
        result = rollup_changed(self._db, now=now)
        if self._after_rollup is not None:
            self._after_rollup(now)
        self.last = result
        log.info("health rollup: %s", result.as_dict())
        return result

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="health-rollup", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - log and try again next interval; the process keeps serving
                log.exception("health rollup failed; retrying in %.0f s", self.interval_s)
