"""Each box's telemetry kept for a while, so a rollout can compare frame rates before and after.

One row per report (every 30 s per box: 2,880 rows a day); the box's fps is the mean over its
running cameras, so boxes with more cameras are comparable with boxes with fewer. Rows older than
``KEEP`` are pruned by the periodic upkeep.
"""

from __future__ import annotations

from datetime import timedelta

from cloud.clock import iso, utcnow
from cloud.db import Database
from protocol.device import Telemetry

KEEP = timedelta(days=14)


def record(db: Database, report: Telemetry) -> None:
    running = [c.fps for c in report.cameras if c.state == "running"]
    fps = sum(running) / len(running) if running else 0.0
    db.execute("INSERT INTO device_telemetry (brand, store, device, ts, model_pack, fps, received) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)",
               (report.brand, report.store, report.device, iso(report.ts), report.model_pack, fps, iso(utcnow())))


def prune(db: Database) -> int:
    return db.execute("DELETE FROM device_telemetry WHERE ts < ?", (iso(utcnow() - KEEP),))
