"""A small brand for the dashboard tests: the synthetic brand generator with its shop floor, one
planted anomaly, then the production rollup and anomaly scan.

``cloud.synthetic.brand.generate(..., floor_days=...)`` writes stores, members, a year of orders and a
month of arrivals, guide-screen feedback, footfall, stock and targets, the way the demo does. On
top, store A's guide screen goes idle from 14:00 on the last day (``cloud.synthetic.incidents``: its
feedback rows are removed), so the greeted share collapses and HQ must see it flagged. Data stops
at the end of the last full local day, so the pages are opened on a complete day whatever the time
of the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from cloud import clock
from cloud.db import Database
from cloud.health import anomaly
from cloud.health.rollup import rollup_days
from cloud.synthetic.brand import generate
from cloud.synthetic.incidents import plant_incidents

TZ = clock.DEFAULT_TZ


@dataclass(frozen=True)
class Seeded:
    stores: tuple[str, ...]
    first: date
    last: date  # the last full local day with data: the day the tests open the pages on
    idle: str  # the store whose screen went idle on the last afternoon


def yesterday() -> date:
    return datetime.now(UTC).astimezone(clock.zone(TZ)).date() - timedelta(days=1)


def seed(db: Database, *, stores: int = 6, persons: int = 3000, days: int = 35, idle: str = "st-0001",
         last: date | None = None) -> Seeded:
    last = last or yesterday()
    end = clock.day_start_utc(last + timedelta(days=1), TZ)
    generate(db, persons=persons, stores=stores, seed=7, end=end, floor_days=days)
    plant_incidents(db, [idle], last, from_hour=14)  # the first kind: the guide screen idle
    first = last - timedelta(days=days - 1)
    rollup_days(db, first, last, until=end)
    # the scan the cloud runs after each rollup, here once over the last two days
    anomaly.scan(db, None, end, anomaly.ScanConfig(first_lookback=timedelta(days=2)))
    ids = tuple(r[0] for r in db.rows("SELECT id FROM stores ORDER BY id"))
    return Seeded(ids, first, last, idle)
