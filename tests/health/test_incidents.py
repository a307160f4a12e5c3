"""The planted incidents of the health benchmark and the demo (issue 17) change the raw rows the way
the failure would: the till, the floor and the staff each lose what that failure loses, from the
incident's hour, and nothing before it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from cloud import clock
from cloud.health.stock_out import on_hand
from cloud.runtime import open_cdp
from cloud.synthetic.brand import generate
from cloud.synthetic.incidents import KEPT_SALE, KINDS, SELL_OUT, plant_incidents

DAY = date(2026, 3, 2)
END = datetime(2026, 3, 2, 16, tzinfo=UTC)  # local midnight after DAY


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    db = open_cdp(tmp_path_factory.mktemp("brand") / "cloud.db", sample_catalogue=False)
    generate(db, persons=300, stores=4, seed=3, end=END, floor_days=3, arrivals_per_day=200)
    yield db
    db.close()


def _counts(db, store: str) -> dict[str, tuple[int, int]]:
    """(before, after) the incident's start at 15:00 local, per kind of row."""
    start = clock.day_start_utc(DAY, "Asia/Shanghai").timestamp() + 15 * 3600
    day0 = start - 15 * 3600
    iso_start, iso_day0 = clock.iso_utc(datetime.fromtimestamp(start, UTC)), clock.iso_utc(datetime.fromtimestamp(day0, UTC))
    return {
        "orders": (db.scalar("SELECT COUNT(*) FROM orders WHERE store = ? AND channel = 'pos' AND ts >= ? AND ts < ?",
                             (store, day0, start)),
                   db.scalar("SELECT COUNT(*) FROM orders WHERE store = ? AND channel = 'pos' AND ts >= ?",
                             (store, start))),
        "assistants": (db.scalar("SELECT COUNT(DISTINCT assistant) FROM feedback WHERE store = ? AND ts >= ? AND ts < ?",
                                 (store, iso_day0, iso_start)),
                       db.scalar("SELECT COUNT(DISTINCT assistant) FROM feedback WHERE store = ? AND ts >= ?",
                                 (store, iso_start))),
        "visits": (db.scalar("SELECT COUNT(*) FROM visits WHERE store = ? AND ts >= ? AND ts < ?",
                             (store, iso_day0, iso_start)),
                   db.scalar("SELECT COUNT(*) FROM visits WHERE store = ? AND ts >= ?", (store, iso_start))),
    }


def test_each_new_kind_loses_what_its_failure_loses_from_its_hour(db) -> None:
    assert KINDS[3:] == ("staff_absent", "conversion_collapse", "pos_down")
    stores = ["st-0000", "st-0001", "st-0002"]
    before = {s: _counts(db, s) for s in stores}
    planted = plant_incidents(db, stores, DAY, from_hour=15, kinds=list(KINDS[3:]))
    assert [i.kind for i in planted] == list(KINDS[3:]) and all(i.rows_changed > 0 for i in planted)
    after = {s: _counts(db, s) for s in stores}
    absent, collapse, pos = stores
    # the roster's first shift start at or after 15:00 is when the absence begins: those starting then or later
    # never came in, those already on shift carry on
    starts = {a: int(t[:2]) for a, t in db.rows("SELECT assistant, start_time FROM shifts WHERE store = ? AND day = ?",
                                                  (absent, DAY.isoformat()))}
    assert planted[0].from_hour == min(h for h in starts.values() if h >= 15)
    since = clock.iso_utc(clock.day_start_utc(DAY, "Asia/Shanghai") + timedelta(hours=planted[0].from_hour))
    acting = {a for (a,) in db.rows("SELECT DISTINCT assistant FROM feedback WHERE store = ? AND ts >= ?", (absent, since))}
    assert acting and all(starts[a] < planted[0].from_hour for a in acting)
    # the floor signs every rostered assistant in and out on the screen; the absent never signed in that day
    day = (clock.iso_utc(clock.day_start_utc(DAY, "Asia/Shanghai")), clock.iso_utc(END))
    signs = db.rows("SELECT assistant, action FROM staff_signs WHERE store = ? AND ts >= ? AND ts < ?", (absent, *day))
    came = {a for a, h in starts.items() if h < planted[0].from_hour}
    assert sorted(signs) == sorted((a, action) for a in came for action in ("sign_in", "sign_out"))
    rostered = {a for (a,) in db.rows("SELECT assistant FROM shifts WHERE store = ? AND day = ?", (collapse, DAY.isoformat()))}
    assert {a for (a,) in db.rows("SELECT DISTINCT assistant FROM staff_signs WHERE store = ? AND ts >= ?",
                                  (collapse, day[0]))} == rostered
    assert after[absent]["orders"][1] < before[absent]["orders"][1]  # the absent ones' sales are gone too
    kept = after[collapse]["orders"][1]
    assert 0 < kept <= before[collapse]["orders"][1] // KEPT_SALE + 1
    assert after[pos]["orders"][1] == 0 and after[pos]["visits"] == before[pos]["visits"]  # the floor carries on
    for s in stores:  # nothing before 15:00 changed
        assert {k: v[0] for k, v in after[s].items()} == {k: v[0] for k, v in before[s].items()}


def _day_change(db, store: str) -> dict[str, int]:
    """SKU -> the day's net movement of stock (receipts less sales and write-offs)."""
    return dict(db.rows("SELECT sku, SUM(CASE WHEN kind = 'receipt' THEN qty ELSE -qty END) FROM stock_movements "
                        "WHERE store = ? AND day = ? GROUP BY sku", (store, DAY.isoformat())))


def test_empty_shelves_are_planted_in_the_movements_where_the_store_sends_them_else_in_the_closing_count(db) -> None:
    moving, counting = "st-0002", "st-0003"  # even-numbered stores export their movements
    counts = {sku: received - sold - wasted for sku, received, sold, wasted in db.rows(
        "SELECT sku, received, sold, wasted FROM stock_days WHERE store = ? AND day = ?", (moving, DAY.isoformat()))}
    assert {k: v for k, v in counts.items() if v or k in _day_change(db, moving)} == _day_change(db, moving)
    assert _day_change(db, counting) == {}
    start = clock.day_start_utc(DAY, "Asia/Shanghai") + timedelta(hours=15)
    plant_incidents(db, [moving, counting], DAY, from_hour=15, kinds=["shelves_empty", "shelves_empty"])
    assert all(v <= 0 for v in _day_change(db, moving).values())  # no delivery that day
    assert any(left > 0 for left, _ in on_hand(db, moving, DAY, "Asia/Shanghai", start).values())
    sold_out = on_hand(db, moving, DAY, "Asia/Shanghai", start + SELL_OUT)
    assert sold_out and all(left == 0 for left, _ in sold_out.values())
    assert all(zero_at is None or zero_at <= start + SELL_OUT for _, zero_at in sold_out.values())
    for store in (moving, counting):  # the day's count agrees: nothing left
        assert db.scalar("SELECT MAX(opening + received - sold - wasted) FROM stock_days WHERE store = ? AND day = ?",
                         (store, DAY.isoformat())) == 0


def test_the_late_delivery_comes_the_next_morning_so_the_next_day_is_as_generated(db) -> None:
    store, day = "st-0000", DAY - timedelta(days=1)
    next_morning = clock.day_start_utc(DAY, "Asia/Shanghai") + timedelta(hours=9)
    before = on_hand(db, store, DAY, "Asia/Shanghai", next_morning)
    plant_incidents(db, [store], day, from_hour=12, kinds=["shelves_empty"])
    assert on_hand(db, store, DAY, "Asia/Shanghai", next_morning) == before
