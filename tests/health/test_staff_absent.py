"""Rostered assistants who never showed on the guide screen (issue 17): the roster (master data
``shifts``) says three are on the floor from 10:00; when two of them handle the arrivals and the
third touches nothing, the hourly rule raises ``staff_absent`` once the floor was busy enough that
an even share missing them is no longer chance, and clears it at the first scan after they appear.
A quiet morning raises nothing. At a store whose screens are used to sign in (上岗/离岗) the roster is
checked against the sign-ins instead: absent at the shift's start + ``GRACE``, within one scan. On
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.arrivals import staff
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.health import notify, shortfall
from cloud.health.staff_absent import ALPHA, GRACE, absent_now
from cloud.runtime import open_cdp
from protocol.messages import StaffAction, StaffSign, new_id

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


def _sign(db: Database, assistant: str, action: StaffAction, at: datetime) -> None:
    """What the ingest stores for a tap on the screen's 上岗/离岗 (``cloud.arrivals.staff.record``)."""
    assert staff.record(db, StaffSign(sign_id=new_id(), brand="b", store=STORE, screen="main", assistant=assistant,
                                      action=action, ts=at)) == "stored"


def test_at_a_store_that_signs_in_an_assistant_not_signed_in_by_the_grace_is_absent_within_one_scan(
        db: Database) -> None:
    _sign(db, "a1", "sign_in", OPENS - timedelta(minutes=10))
    _sign(db, "乙", "sign_in", OPENS + timedelta(minutes=3))  # a screen configured with the staff file's names
    assert absent_now(db, STORE, TZ, OPENS + GRACE - timedelta(minutes=1)) is None  # still within the grace
    due = OPENS + GRACE
    absence = absent_now(db, STORE, TZ, due)  # no card handled by anyone: the sign-ins alone tell
    assert absence is not None and absence.absent == ["a3"] and absence.since == OPENS
    raised, _ = shortfall.scan(db, due)
    assert [(a.metric, a.ts, a.value, a.baseline, a.detail) for a in raised] == [
        ("staff_absent", "2026-03-10T10:00", 2.0, 3.0, "丙（a3）")]
    _sign(db, "a3", "sign_in", due + timedelta(minutes=4))
    raised, cleared = shortfall.scan(db, due + timedelta(minutes=5))
    assert raised == [] and cleared == [raised_alert.id for raised_alert in shortfall.alerts.listing(
        db, store=STORE, status=None, limit=5)]


def test_a_sign_out_mid_shift_is_an_absence_after_the_grace_and_the_alert_names_whoever_is_absent_now(
        db: Database) -> None:
    for a in ROSTER:
        _sign(db, a, "sign_in", OPENS - timedelta(minutes=5))
    out = OPENS + timedelta(hours=3)
    _sign(db, "a2", "sign_out", out)
    assert absent_now(db, STORE, TZ, out + GRACE - timedelta(seconds=1)) is None  # a short break is no absence
    raised, _ = shortfall.scan(db, out + GRACE)
    assert [(a.ts, a.detail, a.severity) for a in raised] == [("2026-03-10T13:00", "乙（a2）", "warning")]
    _sign(db, "a1", "sign_out", out + timedelta(minutes=10))
    raised, _ = shortfall.scan(db, out + timedelta(minutes=25))
    assert raised == []  # the same alert, now naming both
    [alert] = shortfall.alerts.listing(db, store=STORE, status="open", limit=5)
    assert alert.detail == "甲（a1）、乙（a2）"
    notice = notify.notice_of(alert, "徐汇店", "", 0)  # what the owner is sent
    assert notice.title == "[警告] 徐汇店（s1） 导购缺勤" and notice.text.endswith("排班 3 人，在岗 1 人；缺勤：甲（a1）、乙（a2）")


def test_a_lone_assistant_is_judged_by_sign_ins_and_yesterdays_sign_in_does_not_count(db: Database) -> None:
    db.execute("DELETE FROM shifts WHERE assistant <> 'a1'")
    _sign(db, "a1", "sign_in", OPENS - timedelta(hours=14))  # yesterday evening, never signed out
    absence = absent_now(db, STORE, TZ, OPENS + GRACE)
    assert absence is not None and absence.absent == ["a1"] and absence.severity == "critical"
    _sign(db, "a1", "sign_in", OPENS + GRACE)
    assert absent_now(db, STORE, TZ, OPENS + GRACE) is None
    assert [(f.assistant, f.name, f.since) for f in staff.on_floor(db, STORE, OPENS + GRACE)] == [
        ("a1", "甲", OPENS + GRACE)]


def test_a_sign_under_a_name_is_the_assistants_by_id_on_the_floor_the_screens_are_sent(db: Database) -> None:
    db.execute("INSERT INTO assistants (id, store, name, active) VALUES ('a4', 's1', '丁', 1), ('a5', 's1', '丁', 1)")
    _sign(db, "a1", "sign_in", OPENS)
    _sign(db, "甲", "sign_out", OPENS + timedelta(hours=1))  # a1 again, on a screen configured with names
    _sign(db, "乙", "sign_in", OPENS + timedelta(minutes=2))
    _sign(db, "丁", "sign_in", OPENS + timedelta(minutes=3))  # two assistants have that name: it names neither
    at = OPENS + timedelta(hours=2)
    assert [(f.assistant, f.name, f.since) for f in staff.on_floor(db, STORE, at)] == [
        ("a2", "乙", OPENS + timedelta(minutes=2)), ("丁", None, OPENS + timedelta(minutes=3))]
    floor = staff.floor(db, "b", STORE, at)
    assert floor is not None and [(a.assistant, a.name, a.screen) for a in floor.assistants] == [
        ("a2", "乙", "main"), ("丁", None, "main")]
    assert floor.until == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)  # midnight in Shanghai: then nobody is on it
    assert staff.floor(db, "b", "nowhere", at) is None


def test_a_name_counts_for_the_employed_assistant_when_one_who_left_had_it_too(db: Database) -> None:
    db.execute("INSERT INTO assistants (id, store, name, active) VALUES ('a9', 's1', '甲', 0)")  # left the company
    _sign(db, "甲", "sign_in", OPENS)
    at = OPENS + timedelta(hours=1)
    assert [(f.assistant, f.name) for f in staff.on_floor(db, STORE, at)] == [("a1", "甲")]


def test_a_sign_from_a_screen_whose_clock_runs_ahead_is_on_the_floor_sent_for_it(db: Database) -> None:
    ahead = StaffSign(brand="b", store=STORE, screen="main", assistant="a1", action="sign_in",
                      ts=utcnow() + timedelta(minutes=3), sign_id=new_id())
    assert staff.record(db, ahead) == "stored"
    floor = staff.floor(db, "b", STORE, utcnow(), ahead.sign_id)
    assert floor is not None and [a.assistant for a in floor.assistants] == ["a1"]
    assert floor.assistants[0].since <= utcnow()  # stored at the cloud's time, not the screen's
