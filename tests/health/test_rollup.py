"""The rollup on hand-made raw rows of one store-day (China time), on SQLite and PostgreSQL:
exact metric values, idempotence, and the incremental run picking up late feedback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from cloud.db import Database
from cloud.health.rollup import rollup_changed, rollup_days, set_mark
from cloud.runtime import open_cdp
from tests.health import rows

DAY = date(2026, 3, 10)
UNTIL = datetime(2026, 3, 11, 12, tzinfo=UTC)


@pytest.fixture
def db(db_location: str) -> Iterator[Database]:
    database = open_cdp(db_location, sample_catalogue=False)
    yield database
    database.close()


def _seed(db: Database) -> None:
    rows.add_store(db, "S1")
    for member in ("m1", "m2", "m3", "m4"):
        rows.add_member(db, member, "S1", "2024-06-01 12:00:00")
    # hour 10: three arrivals, two members; a1 greets m1 after 30 s and sells, a2 greets a visitor after 70 s
    rows.add_visit(db, "S1", "v1", "2026-03-10 10:00:00", "m1")
    for action, at, amount in (("claimed", "10:00:05", None), ("greeted", "10:00:30", None),
                               ("served", "10:01:00", None), ("sold", "10:10:00", 300.0)):
        rows.add_feedback(db, "S1", "v1", action, "a1", f"2026-03-10 {at}", amount)
    rows.add_visit(db, "S1", "v2", "2026-03-10 10:20:00", None)
    rows.add_feedback(db, "S1", "v2", "claimed", "a2", "2026-03-10 10:20:10")
    rows.add_feedback(db, "S1", "v2", "greeted", "a2", "2026-03-10 10:21:10")
    rows.add_visit(db, "S1", "v3", "2026-03-10 10:40:00", "m2")
    rows.add_footfall(db, "S1", "2026-03-10 10:05:00", 3)
    rows.add_footfall(db, "S1", "2026-03-10 10:30:00", 2)
    rows.add_order(db, "o1", "S1", "m1", "2026-03-10 10:15:00", [("A", 2, 200.0), ("B", 1, 100.0)])
    rows.add_order(db, "o2", "S1", None, "2026-03-10 10:50:00", [("A", 1, 100.0)])
    # hour 11: one visitor served by a1 after 50 s, no Wi-Fi box reporting; m2 buys
    rows.add_visit(db, "S1", "v4", "2026-03-10 11:05:00", None)
    for action, at in (("claimed", "11:05:02"), ("greeted", "11:05:50"), ("served", "11:06:30")):
        rows.add_feedback(db, "S1", "v4", action, "a1", f"2026-03-10 {at}")
    rows.add_order(db, "o3", "S1", "m2", "2026-03-10 11:30:00", [("B", 1, 200.0)])
    # earlier orders: m1 59 days before (repeat), m2 over a year before (dormant, not a repeat)
    rows.add_order(db, "e1", None, "m1", "2026-01-10 12:00:00", [("A", 1, 50.0)], channel="tmall")
    rows.add_order(db, "e2", None, "m2", "2024-12-01 12:00:00", [("A", 1, 50.0)], channel="tmall")
    # 180 days before (2025-09-11) m3 and m4 bought here; only m4 came back
    rows.add_order(db, "c3", "S1", "m3", "2025-09-11 15:00:00", [("A", 1, 80.0)])
    rows.add_order(db, "c4", "S1", "m4", "2025-09-11 16:00:00", [("A", 1, 80.0)])
    rows.add_order(db, "c4b", None, "m4", "2025-12-01 16:00:00", [("A", 1, 80.0)], channel="tmall")
    # a member card signed up at 12:00 local, another at 23:30 the evening before (15:30 UTC the 9th)
    rows.add_member(db, "m5", "S1", "2026-03-10 12:00:00")
    rows.add_member(db, "m6", "S1", "2026-03-09 23:30:00")
    db.execute("INSERT INTO stock_days VALUES ('S1', '2026-03-10', 'A', 5, 0, 5, 0, 0)")
    db.execute("INSERT INTO stock_days VALUES ('S1', '2026-03-10', 'B', 10, 10, 4, 1, 60)")
    db.execute("INSERT INTO store_targets VALUES ('S1', '2026-03', 31000)")


def _metrics(db: Database, grain: str, ts: str) -> dict[str, float]:
    return dict(db.rows("SELECT metric, value FROM store_metrics WHERE store = 'S1' AND grain = ? AND ts = ?",
                        (grain, ts)))


def test_hand_computed_store_day(db: Database) -> None:
    _seed(db)
    rollup_days(db, DAY, DAY, until=UNTIL)
    h10 = _metrics(db, "hour", "2026-03-10T10:00")
    assert h10 == pytest.approx({
        "footfall": 5, "arrivals": 3, "members_recognised": 2, "recognised_share": 2 / 3, "claimed_share": 2 / 3,
        "greeted_share": 2 / 3, "served_share": 1 / 3, "converted_share": 1.0, "median_time_to_greet_s": 50,
        "sales": 400, "orders": 2, "avg_ticket": 200, "units_per_ticket": 2, "member_sales_share": 0.75,
        "conversion": 0.4})
    h11 = _metrics(db, "hour", "2026-03-10T11:00")
    assert h11["footfall"] == 1 and h11["converted_share"] == 0 and h11["median_time_to_greet_s"] == 50
    day = _metrics(db, "day", "2026-03-10")
    assert day == pytest.approx({
        "footfall": 6, "arrivals": 4, "members_recognised": 2, "recognised_share": 0.5, "claimed_share": 0.75,
        "greeted_share": 0.75, "served_share": 0.5, "converted_share": 0.5, "median_time_to_greet_s": 50,
        "sales": 600, "orders": 3, "avg_ticket": 200, "units_per_ticket": 5 / 3, "member_sales_share": 500 / 600,
        "conversion": 0.5, "new_members": 1, "repurchase_rate": 0.5, "dormant_reactivated": 1, "churn_rate": 0.5,
        "stock_outs": 1, "stock_out_rate": 0.5, "sell_through": 9 / 25, "markdown_waste": 60,
        "markdown_waste_share": 0.1, "assistants_active": 2, "sales_per_assistant": 300, "target_attainment": 0.6,
        "incident_hours_share": 0})  # no alert that day


def test_sales_per_assistant_counts_the_roster(db: Database) -> None:
    """Issue 16 item 5: the team's figures from the roster. Three assistants were on the day's shifts and
    two worked the screen (a3 stayed away): sales per assistant is 600 / 3, not 600 / 2, so an absence
    does not make the store look more productive. A shift on another day or store does not count."""
    _seed(db)
    for assistant, store, day in (("a1", "S1", "2026-03-10"), ("a2", "S1", "2026-03-10"), ("a3", "S1", "2026-03-10"),
                                  ("a1", "S1", "2026-03-11"), ("b1", "S2", "2026-03-10")):
        db.execute("INSERT INTO shifts (assistant, store, day, start_time, end_time) VALUES (?, ?, ?, '10:00', '18:00')",
                   (assistant, store, day))
    db.execute("INSERT INTO shifts (assistant, store, day, start_time, end_time) "
               "VALUES ('a1', 'S1', '2026-03-10', '19:00', '21:00')")  # a second shift the same day: one person
    rollup_days(db, DAY, DAY, until=UNTIL)
    day = _metrics(db, "day", "2026-03-10")
    assert day["assistants_rostered"] == 3 and day["assistants_active"] == 2
    assert day["sales_per_assistant"] == pytest.approx(200)


def test_rollup_is_idempotent(db: Database) -> None:
    _seed(db)
    rollup_days(db, DAY, DAY, until=UNTIL)
    first = sorted(db.rows("SELECT * FROM store_metrics"))
    rollup_days(db, DAY, DAY, until=UNTIL)
    assert sorted(db.rows("SELECT * FROM store_metrics")) == first


def test_only_closed_hours_are_rolled_up(db: Database) -> None:
    _seed(db)
    rollup_days(db, DAY, DAY, until=datetime(2026, 3, 10, 3, tzinfo=UTC))  # 11:00 local
    assert _metrics(db, "hour", "2026-03-10T10:00")["arrivals"] == 3
    assert _metrics(db, "hour", "2026-03-10T11:00") == {}
    assert _metrics(db, "day", "2026-03-10")["arrivals"] == 3


def test_incremental_run_picks_up_late_feedback(db: Database) -> None:
    _seed(db)
    rollup_days(db, DAY, DAY, until=UNTIL)
    set_mark(db)
    # v3 (10:40) is greeted, but the guide screen was offline: the row arrives much later
    late = datetime.now(UTC)
    rows.add_feedback(db, "S1", "v3", "greeted", "a2", "2026-03-10 10:41:00", received=late)
    result = rollup_changed(db)
    assert result.store_days >= 1
    assert _metrics(db, "day", "2026-03-10")["greeted_share"] == 1.0
    assert _metrics(db, "hour", "2026-03-10T10:00")["median_time_to_greet_s"] == 60  # 30, 60, 70
