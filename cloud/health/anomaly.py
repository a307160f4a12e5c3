"""The anomaly scan: each store's new complete hours and days against its own weekday-hour normal.

``scan`` is called after every rollup of ``store_metrics`` (``cloud/health/service.py``). Per store
and grain it reads only the periods after the store's watermark (``alert_scans``) that are
complete in the store's own time zone (a half-rolled-up current hour would look like a collapse),
plus the history those periods are compared with: the same weekday (and hour) over the last
``weeks`` weeks, falling back to days of the same kind and then to any day when the store is
new (``cloud/health/baseline.py``). Every value far enough from its baseline becomes an alert;
alerts and the moved watermark are written in one transaction, so a crash re-scans instead of
skipping, and the unique period index means a re-scan raises nothing twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cloud.db import Database
from cloud.health import alerts
from cloud.health.alerts import Alert, Publish
from cloud.health.baseline import DENOMINATORS, RULES, Baseline, Thresholds, baseline_of, judge, kind_of
from cloud.store import iso
from protocol.messages import new_id

log = logging.getLogger(__name__)

_FORMATS = {"hour": "%Y-%m-%dT%H:00", "day": "%Y-%m-%d"}
_STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class ScanConfig:
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: a store scanned for the first time starts this far back (not at the start of its history)
    first_lookback: timedelta = timedelta(hours=24)
    grains: tuple[str, ...] = ("hour", "day")
    skip_metrics: frozenset[str] = frozenset()


def scan(db: Database, publish: Publish | None, now: datetime, config: ScanConfig | None = None) -> list[Alert]:
    """Scan every store's new complete periods; the alerts raised (each published if ``publish``)."""
    if now.tzinfo is None:
        raise ValueError("scan needs an aware 'now' (stores keep local hours in their own time zones)")
    config = config or ScanConfig()
    raised: list[Alert] = []
    for store in db.query("SELECT id, brand, timezone FROM stores ORDER BY id"):
        for grain in config.grains:
            raised += _scan_store(db, store, grain, now, config)
    if raised:
        log.info("anomaly scan raised %d alert(s)", len(raised))
    if publish is not None:
        alerts.publish_pending(db, publish)
    return raised


def _scan_store(db: Database, store: dict, grain: str, now: datetime, config: ScanConfig) -> list[Alert]:
    fmt, step = _FORMATS[grain], _STEPS[grain]
    local_now = now.astimezone(ZoneInfo(store["timezone"] or alerts.DEFAULT_ZONE)).replace(tzinfo=None)
    complete_before = _start_of(local_now, grain).strftime(fmt)
    last = db.scalar("SELECT last_ts FROM alert_scans WHERE store = ? AND grain = ?", (store["id"], grain))
    if last is None:
        last = (_start_of(local_now - config.first_lookback, grain) - step).strftime(fmt)
    periods = [r[0] for r in db.rows(
        "SELECT DISTINCT ts FROM store_metrics WHERE store = ? AND grain = ? AND ts > ? AND ts < ? ORDER BY ts",
        (store["id"], grain, last, complete_before))]
    if not periods:
        return []
    history = _history(db, store["id"], grain, periods, config.thresholds.weeks)
    levels = _levels(db, store["id"], grain, periods, config.thresholds.weeks)
    found = [
        alert
        for period in periods
        for metric, series in history.items()
        if metric not in config.skip_metrics and period in series
        if (alert := _judge(store, grain, period, metric, history, levels.get(metric, 0.0), now,
                            config.thresholds)) is not None
    ]
    with db.transaction() as tx:
        fresh = alerts.record(db, found)
        tx.execute(
            "INSERT INTO alert_scans (store, grain, last_ts, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (store, grain) DO UPDATE SET last_ts = excluded.last_ts, updated = excluded.updated",
            (store["id"], grain, periods[-1], iso(now)))
    return fresh


def _start_of(moment: datetime, grain: str) -> datetime:
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if grain == "hour" else hour.replace(hour=0)


def _history(db: Database, store: str, grain: str, periods: list[str], weeks: int) -> dict[str, dict[str, float]]:
    """metric -> period -> value, for the new periods and everything they are compared with.

    Baselines only ever look at the same hour of earlier days, so when a scan covers a few hours
    (the usual hourly run) only those hours of the history window are read."""
    first = datetime.fromisoformat(periods[0]) - timedelta(weeks=weeks)
    sql = "SELECT metric, ts, value FROM store_metrics WHERE store = ? AND grain = ? AND ts >= ? AND ts <= ?"
    args: list[object] = [store, grain, first.strftime(_FORMATS[grain]), periods[-1]]
    hours = sorted({p[11:13] for p in periods}) if grain == "hour" else []
    if 0 < len(hours) < 24:
        sql += f" AND substr(ts, 12, 2) IN ({', '.join('?' for _ in hours)})"
        args += hours
    series: dict[str, dict[str, float]] = defaultdict(dict)
    for metric, ts, value in db.rows(sql, args):
        series[metric][ts] = float(value)
    return series


def _levels(db: Database, store: str, grain: str, periods: list[str], weeks: int) -> dict[str, float]:
    """metric -> the store's mean over every period of the history window (all hours, busy or not)."""
    first = datetime.fromisoformat(periods[0]) - timedelta(weeks=weeks)
    return {metric: float(mean) for metric, mean in db.rows(
        "SELECT metric, AVG(value) FROM store_metrics WHERE store = ? AND grain = ? AND ts >= ? AND ts < ? "
        "GROUP BY metric", (store, grain, first.strftime(_FORMATS[grain]), periods[0]))}


def baseline_for(series: dict[str, float], period: str, grain: str, thresholds: Thresholds) -> Baseline | None:
    """The period's normal from the same metric at the same hour of the earlier days it has values for."""
    start, fmt = datetime.fromisoformat(period), _FORMATS[grain]
    earlier = [start - timedelta(days=d) for d in range(1, 7 * thresholds.weeks + 1)]
    return baseline_of(start, [(day, series[key]) for day in earlier if (key := day.strftime(fmt)) in series],
                       thresholds)


def _judge(store: dict, grain: str, period: str, metric: str, history: dict[str, dict[str, float]], level: float,
           now: datetime, thresholds: Thresholds) -> Alert | None:
    series = history[metric]
    baseline = baseline_for(series, period, grain, thresholds)
    if baseline is None or not _enough_volume(metric, period, grain, history, thresholds):
        return None  # too little history to know the store's normal, or too few customers for a ratio
    value = series[period]
    verdict = judge(value, baseline, RULES[kind_of(metric)], thresholds, level=level)
    if verdict.severity is None:
        return None
    return Alert(
        id=new_id(), brand=store["brand"], store=store["id"], metric=metric, grain=grain, ts=period, value=value,
        baseline=baseline.median, mad=baseline.mad, z=round(verdict.z, 3), direction=verdict.direction,
        severity=verdict.severity, status="open", created=now,
    )


def _enough_volume(metric: str, period: str, grain: str, history: dict[str, dict[str, float]],
                   thresholds: Thresholds) -> bool:
    """A ratio is judged only when its denominator reaches ``min_volume`` now and in its baseline."""
    denominator = history.get(DENOMINATORS.get(metric, ""))
    if denominator is None:
        return True
    usual = baseline_for(denominator, period, grain, thresholds)
    return (denominator.get(period, 0.0) >= thresholds.min_volume
            and usual is not None and usual.median >= thresholds.min_volume)
