"""Shelves running empty, told by the hourly rule from the stock system's intraday movements (issue 17):
a hand-made store-day whose sales drive SKUs to zero at known times raises an alert at the first scan
after a third of the usually-selling SKUs are out, critical once half are, cleared by a receipt; a
store with stock, and a store that sends only closing counts, raise nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from cloud.clock import iso
from cloud.db import Database
from cloud.health import shortfall
from cloud.health.stock_out import empty_shelves
from cloud.runtime import open_cdp

TZ = "Asia/Shanghai"
TODAY = date(2026, 3, 10)  # a Tuesday; the stores open 10:00-22:00 China time
SKUS = [f"sku{k}" for k in range(6)]
ON_SHELF = 5  # each SKU's closing count yesterday


def local(hour: int, minute: int = 0) -> datetime:
    """A China-time moment of TODAY, in UTC."""
    return datetime(2026, 3, 10, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def _store(db: Database, store: str, *, movements: bool, closing: int = ON_SHELF) -> None:
    """Two weeks of daily counts (2 of every SKU sold a day), the last closing at ``closing``; with
    ``movements``, the stock system also sent last week's receipt."""
    db.execute("INSERT INTO stores (id, brand, name, city, created, timezone, opening_hours) "
               "VALUES (?, 'b', ?, 'Shanghai', ?, ?, '10:00-22:00')", (store, store, iso(local(0)), TZ))
    rows = [(store, (TODAY - timedelta(days=d)).isoformat(), sku, closing + 2, 0, 2, 0, 0.0)
            for d in range(1, 15) for sku in SKUS]
    with db.transaction() as tx:
        tx.copy("stock_days", ("store", "day", "sku", "opening", "received", "sold", "wasted", "markdown_loss"), rows)
    if movements:
        _move(db, store, "sku0", local(8) - timedelta(days=5), "receipt", 10)


def _move(db: Database, store: str, sku: str, at: datetime, kind: str, qty: int) -> None:
    db.execute("INSERT INTO stock_movements (store, sku, ts, day, kind, qty, ref) VALUES (?, ?, ?, ?, ?, ?, ?)",
               (store, sku, at.isoformat(), (at + timedelta(hours=8)).date().isoformat(), kind, qty,
                f"{store}-{sku}-{at.isoformat()}-{kind}"))


def _sell(db: Database, store: str, sku: str, *, out_at: datetime) -> None:
    """The SKU's shelf sold unit by unit, the last unit at ``out_at``."""
    for k in range(ON_SHELF):
        _move(db, store, sku, out_at - timedelta(minutes=10 * k), "sale", 1)


@pytest.fixture
def db(db_location: str) -> Iterator[Database]:
    db = open_cdp(db_location, sample_catalogue=False)
    _store(db, "s1", movements=True)
    yield db
    db.close()


def test_sales_that_empty_the_shelves_raise_an_alert_within_one_scan_and_a_receipt_clears_it(db: Database) -> None:
    _sell(db, "s1", "sku0", out_at=local(11))
    _sell(db, "s1", "sku1", out_at=local(11, 30))
    _sell(db, "s1", "sku2", out_at=local(12))
    _move(db, "s1", "sku3", local(11), "sale", 2)  # selling, not out

    assert shortfall.scan(db, local(11, 25)) == ([], [])  # one SKU of six out: ordinary
    raised, _ = shortfall.scan(db, local(11, 35))  # the first scan after the second is out (a third)
    assert [(a.store, a.metric, a.kind, a.severity, a.ts, a.value, a.baseline) for a in raised] == [
        ("s1", "shelves_empty", "source", "warning", "2026-03-10T11:30", 4.0, 6.0)]
    shelves = empty_shelves(db, "s1", TZ, local(12, 5))
    assert shelves is not None and (shelves.empty, shelves.usual, shelves.severity) == (3, 6, "critical")
    assert shortfall.scan(db, local(12, 5)) == ([], [])  # still open, not raised twice

    for sku in ("sku0", "sku1", "sku2"):
        _move(db, "s1", sku, local(12, 30), "receipt", 20)
    assert shortfall.scan(db, local(12, 35)) == ([], [raised[0].id])


def test_a_store_with_stock_and_a_store_that_sends_only_closing_counts_raise_nothing(db: Database) -> None:
    for sku in SKUS[:4]:
        _move(db, "s1", sku, local(14), "sale", 3)  # selling all day, 2 left of each
    _store(db, "s2", movements=False, closing=0)  # sold out yesterday, but the count says so only after the day
    found = [(f.store, f.metric) for f in shortfall.judge(db, local(15))]
    assert found == []
    assert empty_shelves(db, "s2", TZ, local(15)) is None
