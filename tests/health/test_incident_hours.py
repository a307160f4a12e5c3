"""The operations sub-score (issue 17): the share of a store's opening hours under its own device and
source alerts, severity-weighted, rolled up as the day metric ``incident_hours_share`` and scored like
any lower-is-better metric, so a store with an outage ranks below its otherwise equal peers; the
store page lists the alerts that made it. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from cloud.db import Database
from cloud.health import alerts, views
from cloud.health.alerts import Alert
from cloud.health.incident_hours import Incident, covered_share
from cloud.health.model import DEFAULT_WEIGHTS, combine
from cloud.health.peers import PeerGroup
from cloud.health.rollup import rollup_days
from cloud.health.scoring import score_day
from cloud.runtime import open_cdp
from protocol.messages import new_id
from tests.health import rows

DAY = date(2026, 3, 10)
OPENS = datetime(2026, 3, 10, 2, tzinfo=UTC)  # 10:00 China time; the stores open 10:00-22:00 (the default)


def _at(hour: float) -> datetime:
    return OPENS + timedelta(hours=hour - 10)


def test_critical_hours_count_whole_warning_hours_half_and_the_heaviest_where_they_overlap() -> None:
    incidents = [Incident("x", "source", "orders_low", "", "critical", _at(16), _at(22)),
                 Incident("y", "device", "device_offline", "edge-1", "warning", _at(14), _at(18))]
    assert covered_share(incidents, _at(10), _at(22)) == pytest.approx((6 + 2 * 0.5) / 12)
    assert covered_share([], _at(10), _at(22)) == 0.0


@pytest.fixture
def db(db_location: str) -> Iterator[Database]:
    db = open_cdp(db_location, sample_catalogue=False)
    for store in ("A", "B"):
        rows.add_store(db, store)
        rows.add_visit(db, store, f"v-{store}", "2026-03-10 11:00:00", None)
    yield db
    db.close()


def _alert(store: str, kind: str, metric: str, local_start: str, severity: str) -> Alert:
    return Alert(id=new_id(), brand="lumiere", store=store, metric=metric, grain="hour", ts=local_start, value=0.0,
                 baseline=10.0, mad=0.0, z=-3.0, direction="low", severity=severity, status="open",
                 created=_at(16), kind=kind)


def test_the_rollup_counts_the_days_device_and_source_alerts_not_the_anomaly_scans(db: Database) -> None:
    device = _alert("A", "device", "device_offline", "2026-03-10T09:00", "warning")  # before opening: from 10:00
    alerts.record(db, [
        _alert("A", "source", "orders_low", "2026-03-10T16:00", "critical"),  # not cleared: to the day's end
        device,
        _alert("A", "metric", "footfall", "2026-03-10T11:00", "critical"),  # the metric's own move
    ])
    alerts.clear(db, device.id, _at(13))
    # a camera of B dead since the day before last and still down covers B's whole day; one that came back
    # before B opened covers nothing
    old = [_alert("B", "device", "device_offline", "2026-03-08T15:00", "critical"),
           _alert("B", "device", "device_silent", "2026-03-08T11:00", "critical")]
    alerts.record(db, old)
    alerts.clear(db, old[1].id, _at(9))
    rollup_days(db, DAY, DAY, until=datetime(2026, 3, 11, 0, tzinfo=UTC))
    share = dict(db.rows("SELECT store, value FROM store_metrics WHERE grain = 'day' AND ts = ? "
                         "AND metric = 'incident_hours_share'", (DAY.isoformat(),)))
    assert share == {"A": pytest.approx((6 + 3 * 0.5) / 12, abs=1e-4), "B": 1.0}
    shown = views.store_detail(db, "A", DAY)
    assert shown is not None
    assert sorted((i["metric"], i["severity"], i["minutes"]) for i in shown["incidents"]) == [
        ("device_offline", "warning", 180.0), ("orders_low", "critical", 360.0)]


def test_an_outage_ranks_a_store_below_its_otherwise_equal_peers() -> None:
    values = {(s, DAY.isoformat(), m): v for s in "ABC" for m, v in (("arrivals", 100.0), ("greeted_share", 0.6))}
    values[("A", DAY.isoformat(), "incident_hours_share")] = 0.5
    values.update({(s, DAY.isoformat(), "incident_hours_share"): 0.0 for s in "BC"})
    groups = {s: PeerGroup("p", tuple(p for p in "ABC" if p != s)) for s in "ABC"}
    scores: dict[str, dict[str, float]] = {}
    for store, _, metric, *_, score in score_day(values, DAY, groups):
        scores.setdefault(store, {})[metric] = score
    # B's peers are A and C: their median 0.25 makes B's incident-free day better than its peers'
    assert scores["A"]["incident_hours_share"] == 0.0 and scores["B"]["incident_hours_share"] == 100.0
    overall = {s: combine(scores[s], DEFAULT_WEIGHTS) for s in "ABC"}
    assert overall["A"].sub_scores["operations"] == 0.0
    assert overall["A"].sub_scores["experience"] == overall["B"].sub_scores["experience"]  # the rest untouched
    assert overall["A"].overall is not None and overall["B"].overall is not None
    assert overall["A"].overall < overall["B"].overall == overall["C"].overall
