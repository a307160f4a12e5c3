"""Rostered assistants who never showed on the guide screen (issue 17): the roster (master data
``shifts``) says three are on the floor from 10:00; when two of them handle the arrivals and the
third touches nothing, the hourly rule raises ``staff_absent`` once the floor was busy enough that
an even share missing them is no longer chance, and clears it at the first scan after they appear.
A quiet morning raises nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.clock import iso
from cloud.db import Database
from cloud.health import shortfall
from cloud.health.staff_absent import ALPHA, absent_now
from cloud.runtime import open_cdp

TZ = "Asia/Shanghai"
STORE = "s1"
OPENS = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 China time, a Tuesday
ROSTER = ("a1", "a2", "a3")


@pytest.fixture
def db(db_location: str) -> Iterator[Database]:
    db = open_cdp(db_location, sample_catalogue=False)
    db.execute("INSERT INTO stores (id, brand, name, city, created, timezone, opening_hours) "
               "VALUES (?, 'b', '徐汇店', 'Shanghai', ?, ?, '10:00-22:00')", (STORE, iso(OPENS), TZ))
    db.execute("INSERT INTO assistants (id, store, name, active) VALUES ('a1', 's1', '甲', 1), ('a2', 's1', '乙', 1), "
               "('a3', 's1', '丙', 1)")
    for a in ROSTER:
        db.execute("INSERT INTO shifts (assistant, store, day, start_time, end_time) VALUES (?, ?, '2026-03-10', "
                   "'10:00', '18:00')", (a, STORE))
    yield db
    db.close()


def _handle(db: Database, assistant: str, at: datetime, n: int = 1) -> None:
    """``n`` arrivals' cards claimed by ``assistant`` from ``at``, a minute apart."""
    for k in range(n):
        t = at + timedelta(minutes=k)
        key = f"{assistant}-{int(t.timestamp())}"
        db.execute("INSERT INTO feedback (feedback_id, brand, store, screen, card_id, visit_id, action, assistant, ts, "
                   "received) VALUES (?, 'b', ?, 'screen', ?, ?, 'claimed', ?, ?, ?)",
                   (f"f{key}", STORE, f"c{key}", f"v{key}", assistant, iso(t), iso(t)))


def test_an_assistant_who_never_came_in_is_an_alert_once_the_floor_was_busy_and_clears_when_they_appear(
        db: Database) -> None:
    handled = 0
    while (2 / 3) ** handled >= ALPHA:
        handled += 1  # the arrivals the other two must handle before a missing share is not chance (23)
    _handle(db, "a1", OPENS + timedelta(minutes=1), handled // 2)
    _handle(db, "a2", OPENS + timedelta(minutes=2), handled - handled // 2 - 1)
    busy = OPENS + timedelta(minutes=40)
    assert absent_now(db, STORE, TZ, busy) is None  # one arrival short of telling
    _handle(db, "a2", busy - timedelta(minutes=5))
    absence = absent_now(db, STORE, TZ, busy)
    assert absence is not None and absence.absent == ["a3"] and absence.rostered == 3
    assert absence.since == OPENS and absence.severity == "warning"
    raised, _ = shortfall.scan(db, busy)
    assert [(a.metric, a.ts, a.value, a.baseline) for a in raised] == [("staff_absent", "2026-03-10T10:00", 2.0, 3.0)]
    _handle(db, "a3", busy + timedelta(minutes=2))
    raised, cleared = shortfall.scan(db, busy + timedelta(minutes=5))
    assert raised == [] and cleared == [r.id for r in shortfall.alerts.listing(db, store=STORE, status=None, limit=5)]


def test_a_quiet_morning_or_a_store_without_a_roster_raises_nothing(db: Database) -> None:
    _handle(db, "a1", OPENS + timedelta(minutes=5), 4)
    _handle(db, "a2", OPENS + timedelta(minutes=30), 3)
    assert absent_now(db, STORE, TZ, OPENS + timedelta(hours=2)) is None  # 7 handled: a3 may just be unlucky
    db.execute("DELETE FROM shifts")
    _handle(db, "a1", OPENS + timedelta(minutes=40), 40)
    assert absent_now(db, STORE, TZ, OPENS + timedelta(hours=2)) is None
