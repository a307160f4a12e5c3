"""The periodic job: on the process's scheduler it rolls up the closed hours, then calls the hook (the
anomaly scan) with the same "now", and keeps running after a failed run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud.health.service import HealthService
from cloud.runtime import open_cdp
from cloud.scheduler import Scheduler
from tests.health import rows


def test_periodic_rollup_then_hook(tmp_path: Path) -> None:
    db = open_cdp(tmp_path / "cloud.db", sample_catalogue=False)
    try:
        rows.add_store(db, "S1")
        two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).astimezone(rows.CN)
        rows.add_visit(db, "S1", "v1", two_hours_ago.strftime("%Y-%m-%d %H:%M:%S"), None)
        seen: list[datetime] = []
        ran = threading.Event()

        def hook(now: datetime) -> None:
            seen.append(now)
            if len(seen) == 1:
                raise RuntimeError("a failing scan must not stop the job")
            ran.set()

        scheduler = Scheduler()
        HealthService(db, interval_s=0.05, after_rollup=hook).schedule(scheduler)
        scheduler.start()
        try:
            assert ran.wait(10)
        finally:
            scheduler.stop()
        hour = two_hours_ago.strftime("%Y-%m-%dT%H:00")
        assert db.scalar("SELECT value FROM store_metrics WHERE store = 'S1' AND grain = 'hour' AND ts = ? "
                         "AND metric = 'arrivals'", (hour,)) == 1
        assert all(now.tzinfo is not None for now in seen)
    finally:
        db.close()
