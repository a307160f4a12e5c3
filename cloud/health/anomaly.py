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
from functools import lru_cache

from cloud import clock
from cloud.clock import iso
from cloud.db import Database
from cloud.health import alerts
from cloud.health.alerts import Alert, Publish
from cloud.health.baseline import VOLUMES, Baseline, Thresholds, baseline_of, judge, rule_for
from cloud.health.metrics import FROM_ALERTS
from protocol.messages import new_id

log = logging.getLogger(__name__)

_FORMATS = {"hour": "%Y-%m-%dT%H:00", "day": "%Y-%m-%d"}
_STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
#: how far back a store's typical level (the floor for quiet hours) is averaged
LEVEL_WINDOW = timedelta(weeks=2)


@dataclass(frozen=True)
class ScanConfig:
    """What a scan judges and how; the defaults are what the cloud runs (docs/ALERTS.md)."""

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
    local_now = now.astimezone(clock.zone(store["timezone"])).replace(tzinfo=None)
    complete_before = _start_of(local_now, grain).strftime(fmt)
    last = db.scalar("SELECT last_ts FROM alert_scans WHERE store = ? AND grain = ?", (store["id"], grain))
    if last is None:
        last = (_start_of(local_now - config.first_lookback, grain) - step).strftime(fmt)
    periods = [r[0] for r in db.rows(
        "SELECT DISTINCT ts FROM store_metrics WHERE store = ? AND grain = ? AND ts > ? AND ts < ? ORDER BY ts",
        (store["id"], grain, last, complete_before))]
    if not periods:
        return []
    history = _History(_series(db, store["id"], grain, periods, config.thresholds.weeks),
                       _levels(db, store["id"], grain, periods[0]), grain, config.thresholds)
    found = [
        alert
        for period in periods
        for metric in history.metrics()
        if metric not in config.skip_metrics
        if (alert := history.judge(store, metric, period, now)) is not None
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


def _series(db: Database, store: str, grain: str, periods: list[str], weeks: int) -> dict[str, dict[str, float]]:
    """metric -> period -> value, for the new periods and everything they are compared with.

    Baselines only ever look at the same hour of earlier days, so when a scan covers a few hours
    (the usual hourly run) only those hours of the history window are read."""
    first = datetime.fromisoformat(periods[0]) - timedelta(weeks=weeks)
    sql = "SELECT metric, ts, value FROM store_metrics WHERE store = ? AND grain = ? AND ts >= ? AND ts <= ?"
    args: list[object] = [store, grain, first.strftime(_FORMATS[grain]), periods[-1]]
    hours = sorted({n[11:13] for p in periods for n in (p, *_neighbours(datetime.fromisoformat(p)))}) \
        if grain == "hour" else []
    if 0 < len(hours) < 24:
        sql += f" AND substr(ts, 12, 2) IN ({', '.join('?' for _ in hours)})"
        args += hours
    series: dict[str, dict[str, float]] = defaultdict(dict)
    for metric, ts, value in db.rows(sql, args):
        series[metric][ts] = float(value)
    return series


def _levels(db: Database, store: str, grain: str, first_period: str) -> dict[str, float]:
    """metric -> the store's mean over every period (busy or not) of the two weeks before the scan."""
    since = datetime.fromisoformat(first_period) - LEVEL_WINDOW
    return {metric: float(mean) for metric, mean in db.rows(
        "SELECT metric, AVG(value) FROM store_metrics WHERE store = ? AND grain = ? AND ts >= ? AND ts < ? "
        "GROUP BY metric", (store, grain, since.strftime(_FORMATS[grain]), first_period))}


@lru_cache(maxsize=4096)
def _earlier(period: str, grain: str, weeks: int) -> tuple[tuple[datetime, str], ...]:
    """(start, key) of the same hour (or the day) on each of the ``weeks`` * 7 days before ``period``."""
    start = datetime.fromisoformat(period)
    days = (start - timedelta(days=d) for d in range(1, 7 * weeks + 1))
    return tuple((day, day.strftime(_FORMATS[grain])) for day in days)


def baseline_for(series: dict[str, float], period: str, grain: str, thresholds: Thresholds) -> Baseline | None:
    """The period's normal from the same metric at the same hour of the earlier days it has values for
    (the MAD also from the hours either side)."""
    def sample(of: str) -> list[tuple[datetime, float]]:
        return [(day, series[key]) for day, key in _earlier(of, grain, thresholds.weeks) if key in series]

    start = datetime.fromisoformat(period)
    neighbours = tuple(sample(p) for p in _neighbours(start)) if grain == "hour" else ()
    return baseline_of(start, sample(period), thresholds, neighbours)


def _neighbours(start: datetime) -> tuple[str, ...]:
    """The hour keys either side of an hour."""
    return tuple((start + timedelta(hours=h)).strftime(_FORMATS["hour"]) for h in (-1, 1))


class _History:
    """One store's metrics for one scan, and the verdict on each new period (baselines computed once)."""

    def __init__(self, series: dict[str, dict[str, float]], levels: dict[str, float], grain: str,
                 thresholds: Thresholds) -> None:
        self._series = series
        self._levels = levels
        self._grain = grain
        self._thresholds = thresholds
        self._baselines: dict[tuple[str, str], Baseline | None] = {}

    def metrics(self) -> list[str]:
        return sorted(m for m in self._series if m not in FROM_ALERTS)

    def baseline(self, metric: str, period: str) -> Baseline | None:
        key = (metric, period)
        if key not in self._baselines:
            self._baselines[key] = baseline_for(self._series[metric], period, self._grain, self._thresholds)
        return self._baselines[key]

    def judge(self, store: dict, metric: str, period: str, now: datetime) -> Alert | None:
        value = self._series[metric].get(period)
        baseline = self.baseline(metric, period) if value is not None else None
        if value is None or baseline is None or not self._enough_volume(metric, period):
            return None  # no value, too little history to know the store's normal, or too few customers
        rule, level = rule_for(metric, self._grain), self._levels.get(metric, 0.0)
        verdict = judge(value, baseline, rule, self._thresholds, level=level)
        if verdict.severity is None:
            return None
        return Alert(
            id=new_id(), brand=store["brand"], store=store["id"], metric=metric, grain=self._grain, ts=period,
            value=value, baseline=baseline.median, mad=baseline.mad, z=round(verdict.z, 3),
            direction=verdict.direction, severity=verdict.severity, status="open", created=now,
        )

    def _enough_volume(self, metric: str, period: str) -> bool:
        """Whether the metric's volume (``baseline.VOLUMES``) is enough for its value to mean much."""
        volume = VOLUMES.get(metric)
        if volume is None or volume.metric not in self._series:
            return True
        usual = self.baseline(volume.metric, period)
        now = self._series[volume.metric].get(period, 0.0)
        return usual is not None and usual.median >= volume.minimum and (not volume.now_too or now >= volume.minimum)
