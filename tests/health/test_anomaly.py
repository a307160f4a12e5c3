"""Anomaly baselines and the scan: hand-computed z and severity, short and constant histories, the
incremental and de-duplicated scan on both engines, and precision/recall on planted data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloud.cli import app as cloud_app
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.health import alerts
from cloud.health.anomaly import ScanConfig, scan
from cloud.health.baseline import Baseline, Thresholds, baseline_of, judge, rule_for, spread
from cloud.runtime import open_cdp
from cloud.synthetic.anomaly_evaluation import evaluate, load
from cloud.synthetic.planted import generate

TH = Thresholds()
MONDAY = datetime(2026, 3, 2, 15)  # a Monday, 15:00 local


def _weeks_back(values: list[float], start: datetime = MONDAY) -> list[tuple[datetime, float]]:
    """One value per earlier week, same weekday and hour, newest first."""
    return [(start - timedelta(weeks=w + 1), v) for w, v in enumerate(values)]


def test_z_and_severity_from_a_known_median_and_mad() -> None:
    base = Baseline(median=100.0, mad=10.0, n=8, pool="weekday_hour")
    footfall = rule_for("footfall", "hour")
    # spread = max(1.4826 * 10, sqrt(100), 8% of 100, 1) = 14.826
    assert spread(base, footfall, level=0.0) == pytest.approx(14.826)
    assert judge(170, base, footfall, TH).z == pytest.approx(70 / 14.826)  # 4.72: warning
    assert judge(170, base, footfall, TH).severity == "warning"
    assert judge(210, base, footfall, TH).severity == "critical"  # 7.42
    # below its median a count is judged as a count: quasi-Poisson with the noise's dispersion
    # (14.826^2 / 100 = 2.2), whose low tail is lighter than the normal's: 50 is -3.62 (-3.37 by
    # the spread), 45 is -4.04 (-3.71)
    assert judge(50, base, footfall, TH).direction == "low" and judge(50, base, footfall, TH).severity is None
    assert judge(50, base, footfall, TH).z == pytest.approx(-3.616, abs=1e-3)
    assert judge(45, base, footfall, TH).severity == "warning"
    # sales: a fifth of the median is the floor at hour grain (one big ticket), a tenth at day grain
    sales = Baseline(median=1000.0, mad=10.0, n=8, pool="weekday_hour")
    assert judge(2000, sales, rule_for("sales", "hour"), TH).z == pytest.approx(5.0)
    assert judge(2000, sales, rule_for("sales", "day"), TH).z == pytest.approx(10.0)


def test_a_day_without_a_count_is_flagged_whatever_the_level_floor() -> None:
    """The demo's door camera down all day at a store whose Saturdays brought 30-47 arrivals: by the
    spread (the MAD's sigma, 10.4, or the level floor, a fifth of a store's 52-a-day mean) a zero
    was 3.6 spreads low and raised nothing; as a count with that noise it is a once-in-a-million day."""
    saturday = datetime(2026, 12, 5)
    base = baseline_of(saturday, [(saturday - timedelta(weeks=w + 1), v) for w, v in enumerate([44, 31, 47, 30])], TH)
    assert base is not None and (base.median, base.mad) == (37.5, 7.0)
    arrivals = rule_for("arrivals", "day")
    assert (0 - 37.5) / spread(base, arrivals, level=52.0) == pytest.approx(-3.606, abs=1e-3)
    zero = judge(0, base, arrivals, TH, level=52.0)
    assert zero.severity == "warning" and zero.z == pytest.approx(-4.598, abs=1e-3)
    # an ordinary quiet Saturday is not news, nor is half the usual day (z -1.6)
    assert judge(25, base, arrivals, TH, level=52.0).severity is None
    assert judge(20, base, arrivals, TH, level=52.0).severity is None
    # a small store: 12 a day, none today (the spread called it -3.5 sigmas; P = 6e-6)
    small = Baseline(median=12.0, mad=2.0, n=8, pool="weekday_hour")
    assert judge(0, small, arrivals, TH, level=12.0).severity == "warning"
    # a count never judged low when its normal is nothing
    assert judge(0, Baseline(median=0.0, mad=0.0, n=8, pool="weekday_hour"), arrivals, TH).z == 0


def test_baseline_median_from_the_weekday_and_mad_from_the_residuals() -> None:
    base = baseline_of(MONDAY, _weeks_back([10, 12, 14, 16, 18, 20, 22, 24]), TH)
    assert base is not None and base.pool == "weekday_hour"
    assert (base.median, base.mad) == (17, 4)  # |deviations| 7 5 3 1 1 3 5 7
    # Tuesdays' residuals around their own median join Mondays' for the MAD, not for the median
    tuesday = [(d + timedelta(days=1), v) for d, v in _weeks_back([100, 100, 100, 100, 100, 100, 100, 100])]
    pooled = baseline_of(MONDAY, _weeks_back([10, 12, 14, 16, 18, 20, 22, 24]) + tuesday, TH)
    # sixteen residuals: eight 0s and 1 1 3 3 5 5 7 7; their median (0.5) hides the tail, so the
    # spread is the MAD a normal with this 80th percentile (5) would have: 5 * 0.6745 / 1.2816
    assert pooled is not None and pooled.median == 17 and pooled.mad == pytest.approx(2.6315, abs=1e-4)


def test_short_history_falls_back_to_days_of_the_same_kind_then_to_any_day() -> None:
    weekdays = [(MONDAY - timedelta(days=d), 20.0 + d) for d in (3, 4, 5, 6, 7)]  # Fri Thu Wed Tue Mon
    short = baseline_of(MONDAY, weekdays, TH)
    assert short is not None and short.pool == "daytype_hour" and short.median == 25
    saturday = MONDAY + timedelta(days=5)
    mixed = baseline_of(saturday, [(saturday - timedelta(days=d), 10.0) for d in range(1, 6)], TH)
    assert mixed is not None and mixed.pool == "hour"  # one Sunday and four weekdays
    assert baseline_of(MONDAY, weekdays[:3], TH) is None  # three days: no normal yet, no alert


def test_a_constant_series_alerts_only_on_a_real_change() -> None:
    flat = baseline_of(MONDAY, _weeks_back([50.0] * 8), TH)
    assert flat is not None and flat.mad == 0
    footfall = rule_for("footfall", "hour")
    assert judge(51, flat, footfall, TH).severity is None  # below min_delta: one more visitor is not news
    assert judge(60, flat, footfall, TH).severity is None  # sqrt(50) = 7.1 -> z 1.4
    assert judge(100, flat, footfall, TH).severity == "critical"  # z 7.1
    night = baseline_of(MONDAY, _weeks_back([0.0] * 8), TH)
    assert night is not None
    assert judge(3, night, footfall, TH, level=30.0).severity is None  # three visitors at a closed hour
    assert judge(1.0, night, rule_for("sales", "hour"), TH, level=3000.0).severity is None
    full = baseline_of(MONDAY, _weeks_back([1.0] * 8), TH)
    assert full is not None and judge(0.95, full, rule_for("greeted_share", "hour"), TH).severity is None


def _store_with_hours(db: Database, until: datetime, *, spike_at: str | None = None, weeks: int = 5) -> None:
    """A store whose footfall is 40 +- 2 every hour for ``weeks`` weeks before ``until``, local time."""
    db.execute("INSERT INTO stores (id, brand, name, city, created, timezone) VALUES (?, ?, ?, ?, ?, ?)",
               ("s1", "b1", "一号店", "上海", iso(utcnow()), "Asia/Shanghai"))
    rows, hour = [], until - timedelta(weeks=weeks)
    while hour <= until:
        key = hour.strftime("%Y-%m-%dT%H:00")
        rows.append(("s1", "hour", key, "footfall", 200.0 if key == spike_at else 40.0 + hour.day % 5 - 2))
        hour += timedelta(hours=1)
    with db.transaction() as tx:
        tx.copy("store_metrics", ("store", "grain", "ts", "metric", "value"), rows)


def test_scan_is_incremental_and_raises_each_alert_once(db_location: str) -> None:
    db = open_cdp(db_location, sample_catalogue=False)
    try:
        local_now = datetime(2026, 3, 2, 15, 20)  # Shanghai; 15:00 is still open
        _store_with_hours(db, local_now.replace(minute=0), spike_at="2026-03-02T14:00")
        now = (local_now - timedelta(hours=8)).replace(tzinfo=UTC)
        db.execute("UPDATE store_metrics SET value = 0 WHERE ts = '2026-03-02T15:00'")  # the open hour, half-rolled

        raised = scan(db, None, now)
        assert [(a.store, a.metric, a.ts, a.direction, a.severity) for a in raised] == [
            ("s1", "footfall", "2026-03-02T14:00", "high", "critical")]
        assert abs(raised[0].baseline - 40) <= 2 and raised[0].value == 200.0
        assert db.scalar("SELECT last_ts FROM alert_scans WHERE store = 's1' AND grain = 'hour'") == "2026-03-02T14:00"

        assert scan(db, None, now) == []  # nothing new: nothing raised again
        db.execute("DELETE FROM alert_scans")  # even a full re-scan finds the period already alerted
        assert scan(db, None, now) == []
        assert db.scalar("SELECT COUNT(*) FROM alerts") == 1

        db.execute("UPDATE store_metrics SET value = 1 WHERE ts = '2026-03-02T15:00'")  # the hour, complete
        later = scan(db, None, now + timedelta(hours=1))
        assert [(a.ts, a.direction) for a in later] == [("2026-03-02T15:00", "low")]
        with pytest.raises(ValueError, match="aware"):
            scan(db, None, datetime(2026, 3, 2, 16))
    finally:
        db.close()


def test_the_scan_flags_a_store_day_without_arrivals_among_busy_weekdays(db_location: str) -> None:
    """Through the scan and the alerts table, a brand's day rows written by hand: four weeks of a store
    whose weekdays bring 90 door arrivals, Sundays 50, Saturdays 44, 31, 47, 30 (newest first), then a
    Saturday with none. The truth, by hand: the median of the Saturdays 37.5; the weekend residuals
    (-7.5 9.5 -6.5 6.5 and four 0s) give a tail-aware MAD of 7.5 x 0.6745 / 1.2816 = 3.947, so the
    noise is max(1.4826 x 3.947 = 5.85, sqrt(37.5) = 6.12) and the dispersion 1: P(0 | 37.5) = 5.2e-17,
    z -8.3, critical. By the spread alone the level floor (a fifth of the 2-week mean of 77) made it
    -2.4 and nothing was raised. The Friday before, at its usual 90, raises nothing."""
    db = open_cdp(db_location, sample_catalogue=False)
    try:
        db.execute("INSERT INTO stores (id, brand, name, city, created, timezone) VALUES (?, ?, ?, ?, ?, ?)",
                   ("s1", "b1", "一号店", "上海", iso(utcnow()), "Asia/Shanghai"))
        zero_day = datetime(2026, 3, 7)  # a Saturday
        saturdays = [44.0, 31.0, 47.0, 30.0]
        rows = [("s1", "day", zero_day.strftime("%Y-%m-%d"), "arrivals", 0.0)]
        for back in range(1, 29):
            day = zero_day - timedelta(days=back)
            value = saturdays[back // 7 - 1] if day.weekday() == 5 else 50.0 if day.weekday() == 6 else 90.0
            rows.append(("s1", "day", day.strftime("%Y-%m-%d"), "arrivals", value))
        with db.transaction() as tx:
            tx.copy("store_metrics", ("store", "grain", "ts", "metric", "value"), rows)
        now = datetime(2026, 3, 7, 17, 30, tzinfo=UTC)  # 01:30 on Sunday in Shanghai: Saturday is complete
        raised = scan(db, None, now, ScanConfig(grains=("day",), first_lookback=timedelta(days=2)))
        assert [(a.metric, a.ts, a.value, a.baseline, a.direction, a.severity) for a in raised] == [
            ("arrivals", "2026-03-07", 0.0, 37.5, "low", "critical")]
        assert raised[0].z == pytest.approx(-8.3, abs=0.05)
        assert db.scalar("SELECT last_ts FROM alert_scans WHERE store = 's1' AND grain = 'day'") == "2026-03-07"
    finally:
        db.close()


def test_a_metric_made_of_the_products_own_alerts_is_not_scanned(db_location: str) -> None:
    db = open_cdp(db_location, sample_catalogue=False)
    try:
        local_now = datetime(2026, 3, 2, 15, 20)
        _store_with_hours(db, local_now.replace(minute=0), spike_at="2026-03-02T14:00")
        db.execute("INSERT INTO store_metrics (store, grain, ts, metric, value) SELECT store, grain, ts, "
                   "'incident_hours_share', CASE WHEN value = 200 THEN 1 ELSE 0 END FROM store_metrics")
        raised = scan(db, None, (local_now - timedelta(hours=8)).replace(tzinfo=UTC))
        assert [a.metric for a in raised] == ["footfall"]  # the outage's own alerts already told it
    finally:
        db.close()


def test_the_cli_scans_a_store_never_scanned_days_back(tmp_path: Path) -> None:
    utc_hour = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    shanghai_now = utc_hour + timedelta(hours=8)
    db = open_cdp(tmp_path / "cloud.db", sample_catalogue=False)
    _store_with_hours(db, shanghai_now - timedelta(hours=30),
                      spike_at=(shanghai_now - timedelta(days=2)).strftime("%Y-%m-%dT%H:00"))
    db.close()
    first = CliRunner().invoke(cloud_app, ["health", "scan", "--db", str(tmp_path / "cloud.db"), "--days", "3"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"raised": 1, "critical": 1}
    again = CliRunner().invoke(cloud_app, ["health", "scan", "--db", str(tmp_path / "cloud.db"), "--days", "3"])
    assert json.loads(again.output) == {"raised": 0, "critical": 0}


def test_alerts_are_acknowledged_once_and_unpublished_ones_are_retried(tmp_path: Path) -> None:
    db = open_cdp(tmp_path / "cloud.db", sample_catalogue=False)
    local_now = datetime(2026, 3, 2, 15, 20)
    _store_with_hours(db, local_now.replace(minute=0), spike_at="2026-03-02T14:00")
    now = (local_now - timedelta(hours=8)).replace(tzinfo=UTC)
    sent: list = []
    assert len(scan(db, lambda message: False, now)) == 1  # the broker is away: kept pending
    assert db.scalar("SELECT COUNT(*) FROM alerts WHERE published_at IS NULL") == 1
    assert alerts.publish_pending(db, lambda message: sent.append(message) or True) == 1
    assert alerts.publish_pending(db, lambda message: sent.append(message) or True) == 0
    assert sent[0].period_start.isoformat() == "2026-03-02T14:00:00+08:00" and sent[0].severity == "critical"

    alert_id = sent[0].alert_id
    acked = alerts.ack(db, alert_id, actor="store_manager:k1", note="促销活动")
    assert (acked.status, acked.acked_by, acked.note) == ("acked", "store_manager:k1", "促销活动")
    with pytest.raises(alerts.AlreadyAcked, match="store_manager:k1"):
        alerts.ack(db, alert_id, actor="hq_admin:k2", note=None)
    assert alerts.listing(db, store=None, status="open", limit=10) == []
    db.close()


def test_precision_and_recall_on_planted_anomalies(tmp_path: Path) -> None:
    """A smaller bench/anomaly.py: 6 stores, 8 weeks of history, one week scanned twice a day."""
    data = generate(seed=5, stores=6, days=63)
    db = open_cdp(tmp_path / "planted.db", sample_catalogue=False)
    load(db, data, brand="bench")
    result = evaluate(db, data, eval_days=7, every=timedelta(hours=12))
    db.close()
    assert result.labels >= 30
    assert result.precision >= 0.9, result
    assert result.recall >= 0.9, result
