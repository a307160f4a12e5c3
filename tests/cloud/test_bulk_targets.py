"""The bulk loader (``cloud.synthetic.bulk``, the benchmarks' 1M-person brand) writes targets as
the targets import does: day targets in ``store_day_targets`` (the live screen's) and their months'
sums in ``store_targets`` (store health's), so both read one set of numbers (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud.db import Database
from cloud.synthetic.bulk import load_for_benchmark


def test_the_bulk_loader_writes_day_targets_and_their_monthly_sums(db: Database) -> None:
    load_for_benchmark(db, persons=200, stores=2, seed=5, end=datetime(2026, 12, 1, tzinfo=UTC), floor_days=7)
    days = db.rows("SELECT store, substr(day, 1, 7), SUM(sales), COUNT(*), COUNT(import_id) FROM store_day_targets "
                   "GROUP BY store, substr(day, 1, 7) ORDER BY 1, 2")
    months = db.rows("SELECT store, month, sales_target FROM store_targets ORDER BY store, month")
    assert days and all(count >= 28 and imported == 0 for _, _, _, count, imported in days)  # every day of a month
    assert [(store, month, round(total, 2)) for store, month, total, _, _ in days] == \
        [(store, month, round(total, 2)) for store, month, total in months]
