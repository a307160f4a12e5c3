"""The share of a store's opening hours covered by the product's own incident alerts, per local day.

A store-day on which the product itself raised an operational alert while the store was open (a
device offline or silent, ``cloud.health.device_health``; a source dark or collapsing, the till
silent, the shelves empty or an assistant absent, ``cloud.health.shortfall`` and the rules it runs)
is a worse day for that store whatever its other metrics say: the metric ``incident_hours_share``
(sub-score ``operations``, ``cloud.health.metrics``) is what carries it into the ranking, so the
ranking code has no special case. Each alert covers the minutes from its own start (``ts``, the
local minute the product says the incident began) to its clearing (or the end of what is rolled
up); ``critical`` minutes count whole and ``warning`` minutes half (``SEVERITY_WEIGHT``), the
heaviest alert counting where several overlap. The anomaly scan's alerts (kind ``metric``) are
left out: they judge the metrics themselves, and the score must not count a metric's own move twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cloud import clock
from cloud.db.database import Tx
from cloud.health.opening_hours import OpeningHours

#: the alert kinds that are incidents of the store's operations (``cloud.health.alerts.Kind``)
KINDS = ("device", "source")
SEVERITY_WEIGHT = {"critical": 1.0, "warning": 0.5}


@dataclass(frozen=True)
class Incident:
    """One alert's part of one store-day's opening hours (UTC times)."""

    alert_id: str
    kind: str
    metric: str
    device: str
    severity: str
    start: datetime
    end: datetime

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60


def incidents_by_day(tx: Tx, store: str, tz: str | None, hours: OpeningHours, first: date, last: date,
                     until: datetime) -> dict[str, tuple[list[Incident], float]]:
    """Local day -> the store's incident alerts clipped to that day's opening hours (and to ``until``), and
    the share of those hours they cover (``covered_share``); days without one are left out. The store's
    time zone and hours come from the caller, which has read its row already (the store page once a request)."""
    spans = {}
    day = first
    while day <= last:
        spans[day.isoformat()] = hours.span_on(day, tz)
        day += timedelta(days=1)
    # the alerts begun by the range's end (``ts`` is local text) and not cleared before its start: a camera
    # dead since the day before last still covers today
    rows = tx.rows(f"SELECT id, kind, metric, device, severity, ts, cleared_at FROM alerts WHERE store = ? "
                   f"AND kind IN ({', '.join('?' for _ in KINDS)}) AND ts < ? AND (cleared_at IS NULL OR cleared_at > ?)",
                   (store, *KINDS, (last + timedelta(days=1)).isoformat(), clock.iso_utc(spans[first.isoformat()][0])))
    found: dict[str, list[Incident]] = {}
    for alert_id, kind, metric, device, severity, ts, cleared_at in rows:
        began = datetime.fromisoformat(ts).replace(tzinfo=clock.zone(tz))
        ended = min(datetime.fromisoformat(cleared_at), until) if cleared_at else until
        for key, (opens, closes) in spans.items():
            start, end = max(began, opens), min(ended, closes, until)
            if end > start:
                found.setdefault(key, []).append(Incident(alert_id, kind, metric, device or "", severity, start, end))
    return {key: (incidents, covered_share(incidents, *spans[key])) for key, incidents in found.items()}


def covered_share(incidents: list[Incident], opens: datetime, closes: datetime) -> float:
    """The severity-weighted share of [opens, closes) the incidents cover (the heaviest where they overlap)."""
    edges = sorted({opens, closes, *(t for i in incidents for t in (i.start, i.end))})
    covered = 0.0
    for a, b in zip(edges, edges[1:]):
        weight = max((SEVERITY_WEIGHT.get(i.severity, 1.0) for i in incidents if i.start <= a and i.end >= b),
                     default=0.0)
        covered += weight * (b - a).total_seconds()
    return covered / (closes - opens).total_seconds()
