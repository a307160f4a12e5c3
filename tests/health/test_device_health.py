"""Device health in minutes (issue 17): a box, camera, guide screen or label gateway that goes
offline (Last Will) or silent during opening hours raises an alert at the next check (every
minute), and the alert clears itself when the device is back. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.clock import iso
from cloud.db import Database
from cloud.fleet import devices
from cloud.health import device_health
from cloud.health.opening_hours import OpeningHours
from cloud.runtime import open_cdp

# Tuesday 2026-03-10 14:00 in China (06:00 UTC): the store is open 10:00-22:00
NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
STORE = "s1"


@pytest.fixture
def db(db_location: str) -> Iterator[Database]:
    db = open_cdp(db_location, sample_catalogue=False)
    db.execute("INSERT INTO stores (id, brand, name, city, created, timezone, opening_hours) "
               "VALUES (?, 'b', '徐汇店', 'Shanghai', ?, 'Asia/Shanghai', '10:00-22:00')", (STORE, iso(NOW)))
    # the door usually sees 60 arrivals at 14:00 on a Tuesday
    for k in range(1, 5):
        db.execute("INSERT INTO store_metrics (store, grain, ts, metric, value) VALUES (?, 'hour', ?, 'arrivals', 60)",
                   (STORE, (NOW + timedelta(hours=8) - timedelta(weeks=k)).strftime("%Y-%m-%dT%H:00")))
    yield db
    db.close()


def _telemetry(db: Database, device: str, ts: datetime, fps: float) -> None:
    devices.observed(db, "b", STORE, device, "edge", ts=ts, conn_state="online")
    db.execute("INSERT INTO device_telemetry (brand, store, device, ts, model_pack, fps, received) "
               "VALUES ('b', ?, ?, ?, 'p', ?, ?)", (STORE, device, iso(ts), fps, iso(ts)))


def _arrival(db: Database, device: str, ts: datetime, n: int) -> None:
    db.execute("INSERT INTO arrivals (event_id, brand, store, device, camera, ts, received) "
               "VALUES (?, 'b', ?, ?, 'door', ?, ?)", (f"e{n}", STORE, device, iso(ts), iso(ts)))


def test_opening_hours() -> None:
    t = datetime(2026, 3, 10, 9, 59)
    day, night, default = (OpeningHours.parse(h) for h in ("10:00-22:00", "20:00-02:00", None))
    assert not day.is_open(t) and day.is_open(t.replace(hour=10, minute=0))
    assert night.is_open(t.replace(hour=1)) and not night.is_open(t.replace(hour=3))
    assert default.is_open(t.replace(hour=12))  # DEFAULT_HOURS


def test_a_span_past_midnight_opened_the_evening_before_and_equal_ends_are_round_the_clock() -> None:
    night, t = OpeningHours.parse("20:00-02:00"), datetime(2026, 3, 10, 1, 0)
    assert night.opened(t) == datetime(2026, 3, 9, 20, 0) and night.opened(t.replace(hour=21)) == t.replace(hour=20)
    assert night.span_on(t.date(), "Asia/Shanghai") == (datetime(2026, 3, 10, 12, 0, tzinfo=UTC),
                                                       datetime(2026, 3, 10, 18, 0, tzinfo=UTC))
    always = OpeningHours.parse("08:00-08:00")  # as the day's span has always read it: 24 hours
    assert always.is_open(t) and always.is_open(t.replace(hour=8)) and always.opened(t) == datetime(2026, 3, 9, 8, 0)


def test_last_will_offline_raises_within_the_minute_and_clears_when_back(db: Database) -> None:
    devices.observed(db, "b", STORE, "screen-1", "kiosk", ts=NOW - timedelta(minutes=1), conn_state="offline")
    raised, cleared = device_health.scan(db, NOW)
    assert [(a.metric, a.device, a.severity, a.kind) for a in raised] == [
        ("device_offline", "screen-1", "critical", "device")]
    assert raised[0].ts == "2026-03-10T14:00" and raised[0].link().endswith(
        "store=s1&day=2026-03-10&metric=device_offline&alert=" + raised[0].id)
    assert device_health.scan(db, NOW + timedelta(minutes=1)) == ([], [])  # one alert while it lasts
    devices.observed(db, "b", STORE, "screen-1", "kiosk", ts=NOW + timedelta(minutes=2), conn_state="online")
    raised2, cleared = device_health.scan(db, NOW + timedelta(minutes=2))
    assert raised2 == [] and cleared == [raised[0].id]
    row = db.one("SELECT status, cleared_at FROM alerts WHERE id = ?", (raised[0].id,))
    assert row["status"] == "cleared" and row["cleared_at"]
    # offline again later: a new episode, a new alert
    devices.observed(db, "b", STORE, "screen-1", "kiosk", ts=NOW + timedelta(minutes=10), conn_state="offline")
    assert len(device_health.scan(db, NOW + timedelta(minutes=10))[0]) == 1


def test_nothing_is_expected_while_the_store_is_closed(db: Database) -> None:
    night = NOW + timedelta(hours=10)  # 00:00 in China
    devices.observed(db, "b", STORE, "screen-1", "kiosk", ts=night, conn_state="offline")
    assert device_health.scan(db, night) == ([], [])


def test_an_edge_box_without_telemetry_is_offline_and_a_camera_without_frames_silent(db: Database) -> None:
    _telemetry(db, "box-1", NOW - timedelta(minutes=3), 8.0)  # last report 3 min ago, stale after 2
    _telemetry(db, "box-2", NOW - timedelta(seconds=20), 0.0)  # reports, but its cameras see no frames
    _arrival(db, "box-1", NOW - timedelta(minutes=3), 1)
    _arrival(db, "box-2", NOW - timedelta(minutes=1), 2)
    raised, _ = device_health.scan(db, NOW)
    assert sorted((a.device, a.metric, a.severity) for a in raised) == [
        ("box-1", "device_offline", "critical"), ("box-2", "device_silent", "critical")]
    _telemetry(db, "box-2", NOW + timedelta(seconds=30), 9.5)  # frames again
    _telemetry(db, "box-1", NOW + timedelta(seconds=30), 9.5)
    _, cleared = device_health.scan(db, NOW + timedelta(minutes=1))
    assert len(cleared) == 2


def test_a_camera_that_runs_but_sees_nobody_against_its_expected_rate(db: Database) -> None:
    # 60 an hour at this store and hour, one box: 6 are due in 6 minutes (P(none) = 0.25 %)
    _arrival(db, "box-1", NOW - timedelta(minutes=5), 1)
    _telemetry(db, "box-1", NOW - timedelta(seconds=10), 9.0)
    assert device_health.scan(db, NOW)[0] == []  # 5 min without: not yet unusual
    _telemetry(db, "box-1", NOW + timedelta(minutes=1, seconds=20), 9.0)
    raised, _ = device_health.scan(db, NOW + timedelta(minutes=2))
    assert [(a.metric, a.severity, a.baseline) for a in raised] == [("device_silent", "warning", 7.0)]
    _arrival(db, "box-1", NOW + timedelta(minutes=2, seconds=30), 2)
    _telemetry(db, "box-1", NOW + timedelta(minutes=2, seconds=40), 9.0)
    assert device_health.scan(db, NOW + timedelta(minutes=3))[1] == [raised[0].id]


def test_a_guide_screen_whose_heartbeat_stops_is_offline_though_no_last_will_came(db: Database) -> None:
    # the screen's UI thread says "online" every 30 s; frozen at 13:59, its network thread keeps the connection
    devices.observed(db, "b", STORE, "kiosk-main", "kiosk", ts=NOW - timedelta(minutes=1), conn_state="online")
    assert device_health.scan(db, NOW) == ([], [])
    raised, _ = device_health.scan(db, NOW + timedelta(minutes=2))
    assert [(a.device, a.metric, a.severity) for a in raised] == [("kiosk-main", "device_offline", "critical")]
    assert "guide screen kiosk-main sent nothing for 3 min" in device_health.judge(db, NOW + timedelta(minutes=2))[0].reason
    devices.observed(db, "b", STORE, "kiosk-main", "kiosk", ts=NOW + timedelta(minutes=3), conn_state="online")
    assert device_health.scan(db, NOW + timedelta(minutes=3)) == ([], [raised[0].id])


def test_the_silence_of_a_store_opening_at_half_past_counts_from_its_opening_minute(db: Database) -> None:
    # opens 09:30: at 09:35 five arrivals were due since opening, not the 35 since 09:00 (the minutes
    # of the opening time were once dropped, a false silent alert in the store's first half hour)
    db.execute("UPDATE stores SET opening_hours = '09:30-22:00' WHERE id = ?", (STORE,))
    opening = NOW.replace(hour=1, minute=30)  # 09:30 in China
    for k in range(1, 5):
        db.execute("INSERT INTO store_metrics (store, grain, ts, metric, value) VALUES (?, 'hour', ?, 'arrivals', 60)",
                   (STORE, (opening + timedelta(hours=8) - timedelta(weeks=k)).strftime("%Y-%m-%dT%H:00")))
    _telemetry(db, "box-1", opening + timedelta(minutes=4, seconds=50), 9.0)
    assert device_health.scan(db, opening - timedelta(minutes=10)) == ([], [])  # 09:20: closed
    assert device_health.scan(db, opening + timedelta(minutes=5)) == ([], [])
    _telemetry(db, "box-1", opening + timedelta(minutes=6, seconds=50), 9.0)
    raised, _ = device_health.scan(db, opening + timedelta(minutes=7))
    assert [(a.metric, a.severity, a.baseline) for a in raised] == [("device_silent", "warning", 7.0)]
