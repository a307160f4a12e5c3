"""The hourly business rule (issue 17): a till that stops, or customers who stop buying, raise an
alert within the hour from the live rows, against the same hours of the store's normal; the alert
clears itself when the rows come back. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.cdp.imports.canonical import order_id
from cloud.clock import iso
from cloud.db import Database
from cloud.health import shortfall
from cloud.health.baseline import poisson_cdf
from cloud.health.shortfall import MAX_DISPERSION, dark_hours, dispersion, is_short
from cloud.runtime import open_cdp

# Tuesday 2026-03-10 14:00 in China (06:00 UTC): the store is open 10:00-22:00
NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
STORE = "s1"
#: the store's usual hour from 10:00 on a Tuesday: 30 tickets, 60 arrivals, 80 % of them claimed
USUAL = {"orders": 30.0, "arrivals": 60.0, "claimed_share": 0.8, "footfall": 70.0}


@pytest.fixture
def db(db_location: str) -> Iterator[Database]:
    db = open_cdp(db_location, sample_catalogue=False)
    db.execute("INSERT INTO stores (id, brand, name, city, created, timezone, opening_hours) "
               "VALUES (?, 'b', '徐汇店', 'Shanghai', ?, 'Asia/Shanghai', '10:00-22:00')", (STORE, iso(NOW)))
    local = NOW + timedelta(hours=8)
    rows = []
    for k in range(1, 5):
        day = local - timedelta(weeks=k)
        rows.append((STORE, "day", day.strftime("%Y-%m-%d"), "orders", 300.0))
        rows += [(STORE, "hour", day.replace(hour=h).strftime("%Y-%m-%dT%H:00"), m, v)
                 for h in range(10, 15) for m, v in USUAL.items()]
    with db.transaction() as tx:
        tx.copy("store_metrics", ("store", "grain", "ts", "metric", "value"), rows)
    yield db
    db.close()


def _trade(db: Database, start: datetime, end: datetime, *, every_s: float | None, claims: bool = True) -> None:
    """Tickets every ``every_s`` (None: the till records none), arrivals, claims and footfall every minute,
    in [start, end)."""
    t, n = start, 0
    with db.transaction() as tx:
        while every_s is not None and t < end:
            n += 1
            key = f"{int(t.timestamp())}-{n}"
            tx.execute("INSERT INTO orders (id, channel, order_no, store, ts, paid, status) "
                       "VALUES (?, 'pos', ?, ?, ?, 100, 'paid')", (order_id("pos", key, STORE), key, STORE, int(t.timestamp())))
            t += timedelta(seconds=every_s)
    t = start
    with db.transaction() as tx:
        while t < end:
            key = f"{int(t.timestamp())}"
            tx.execute("INSERT INTO arrivals (event_id, brand, store, device, camera, ts, received) "
                       "VALUES (?, 'b', ?, 'edge1', 'door', ?, ?)", (f"a{key}", STORE, iso(t), iso(t)))
            tx.execute("INSERT INTO visits (id, brand, store, confidence, ts, arrival_event_id, device, camera, card_id, "
                       "signals) "
                       "VALUES (?, 'b', ?, 0, ?, ?, 'edge1', 'door', ?, 'face')",
                       (f"v{key}", STORE, iso(t), f"a{key}", f"c{key}"))
            tx.execute("INSERT INTO footfall (brand, store, device, minute, people, passing, visits_started, "
                       "distinct_macs, background, probes, event_id, received) "
                       "VALUES ('b', ?, 'wifi', ?, 1, 3, 1, 1, 0, 5, ?, ?)", (STORE, iso(t), f"ff{key}", iso(t)))
            if claims:
                tx.execute("INSERT INTO feedback (feedback_id, brand, store, screen, card_id, visit_id, action, "
                           "assistant, ts, received) VALUES (?, 'b', ?, 'screen', ?, ?, 'claimed', 'a1', ?, ?)",
                           (f"f{key}", STORE, f"c{key}", f"v{key}", iso(t), iso(t)))
            t += timedelta(seconds=60)


def test_a_till_that_stops_is_an_alert_within_the_hour_and_clears_when_tickets_come_back(db: Database) -> None:
    # a normal morning: no alert for any source
    _trade(db, NOW - timedelta(hours=4), NOW - timedelta(minutes=30), every_s=120)
    assert shortfall.scan(db, NOW - timedelta(minutes=30)) == ([], [])
    # the till records nothing from 13:30 (the floor carries on): 15 tickets were due by 14:00
    _trade(db, NOW - timedelta(minutes=30), NOW, every_s=None)
    raised, _ = shortfall.scan(db, NOW)
    assert [(a.metric, a.kind, a.severity, a.value, a.ts) for a in raised] == [
        ("orders_low", "source", "critical", 0.0, "2026-03-10T13:40")]
    assert raised[0].baseline == pytest.approx(10.0) and raised[0].link().endswith("metric=orders_low&alert="
                                                                                   + raised[0].id)
    assert shortfall.scan(db, NOW + timedelta(minutes=5)) == ([], [])  # one alert while it lasts
    # the tickets are back at their usual pace
    _trade(db, NOW + timedelta(minutes=5), NOW + timedelta(minutes=35), every_s=120)
    raised_again, cleared = shortfall.scan(db, NOW + timedelta(minutes=35))
    assert raised_again == [] and cleared == [raised[0].id]


def _taps(db: Database, *at: datetime) -> None:
    """Sales an assistant tapped 成交 on the guide screen at these times."""
    with db.transaction() as tx:
        for t in at:
            key = f"sold{int(t.timestamp())}"
            tx.execute("INSERT INTO feedback (feedback_id, brand, store, screen, card_id, visit_id, action, "
                       "assistant, amount, ts, received) VALUES (?, 'b', ?, 'screen', ?, ?, 'sold', 'a1', 300, ?, ?)",
                       (key, STORE, f"c{key}", f"v{key}", iso(t), iso(t)))


def test_sales_tapped_with_no_till_ticket_after_them_are_a_dark_till_within_minutes(db: Database) -> None:
    # a store with no history yet: the hourly count has nothing to judge against, the taps need none
    db.execute("DELETE FROM store_metrics")
    _trade(db, NOW - timedelta(hours=2), NOW - timedelta(minutes=40), every_s=120)
    _taps(db, NOW - timedelta(minutes=90), NOW - timedelta(minutes=60))  # each followed by tickets
    # the till records nothing from 13:20 while three sales are tapped at 13:22, 13:27 and 13:32
    _taps(db, *(NOW - timedelta(minutes=m) for m in (38, 33, 28)))
    assert shortfall.scan(db, NOW - timedelta(minutes=20)) == ([], [])  # the third is not 10 minutes old
    raised, _ = shortfall.scan(db, NOW - timedelta(minutes=17))
    assert [(a.metric, a.severity, a.value, a.baseline, a.ts) for a in raised] == [
        ("orders_low", "critical", 0.0, 3.0, "2026-03-10T13:18")]  # since the last ticket
    # one ticket comes through: the till is back
    _trade(db, NOW - timedelta(minutes=12), NOW - timedelta(minutes=11), every_s=120)
    assert shortfall.scan(db, NOW - timedelta(minutes=10)) == ([], [raised[0].id])


def test_customers_who_stop_buying_are_a_collapse_not_a_dark_till(db: Database) -> None:
    _trade(db, NOW - timedelta(hours=4), NOW - timedelta(hours=1), every_s=120)
    _trade(db, NOW - timedelta(hours=1), NOW, every_s=600)  # one ticket in five since 13:00
    raised, _ = shortfall.scan(db, NOW)
    assert [(a.metric, a.severity) for a in raised] == [("orders_low", "warning")]
    assert 0 < raised[0].value < raised[0].baseline / 3


def test_a_frozen_guide_screen_is_claims_dark_and_a_closed_store_is_nothing(db: Database) -> None:
    _trade(db, NOW - timedelta(hours=4), NOW - timedelta(minutes=40), every_s=120)
    _trade(db, NOW - timedelta(minutes=40), NOW, every_s=120, claims=False)
    assert [a.metric for a in shortfall.scan(db, NOW)[0]] == ["claims_low"]
    night = NOW + timedelta(hours=9)  # 23:00 local: closed, nothing is due
    assert shortfall.judge(db, night) == []


def test_the_test_is_a_poisson_tail_with_a_minimum_shortfall() -> None:
    assert is_short(0, 10) and not is_short(0, 4.9)  # 4.9 due: a quiet stretch, not news
    assert is_short(2, 20) and not is_short(8, 20)
    # the hours of the incident, not every run that includes them
    usual = dict.fromkeys(("10", "11", "12", "13", "14"), 10.0)
    assert dark_hours({"10": 9, "11": 10, "12": 0, "13": 0, "14": 1}, usual) == {"12", "13", "14"}
    assert dark_hours({"10": 9, "11": 11}, {"10": 10.0, "11": 10.0}) == set()
    # a source that varies more than a Poisson count (a Wi-Fi box counting groups) is judged on scaled counts
    assert dispersion([[10, 10, 10, 10]]) == 1.0 and dispersion([[0, 40, 0, 40]]) == MAX_DISPERSION
    assert dark_hours({"10": 1, "11": 1}, {"10": 10.0, "11": 10.0}) == {"10", "11"}
    assert dark_hours({"10": 1, "11": 1}, {"10": 10.0, "11": 10.0}, phi=3.0) == set()
    # scaled counts are seldom whole: 11 rows of 40 due at dispersion 2 is 5.5 of 20, whose tail
    # (1.4e-4) is above ALPHA; floored to 5 (7.2e-5) it was called short
    assert poisson_cdf(5, 20) == pytest.approx(7.19088e-5, rel=1e-5)
    assert poisson_cdf(5, 20) < poisson_cdf(5.5, 20) < poisson_cdf(6, 20)
    assert is_short(10 / 2, 40 / 2) and not is_short(11 / 2, 40 / 2)
