"""The hourly business rule: a source that should report during opening hours and goes dark, or
collapses against the same hours of its normal, raises an alert within the hour, from the live rows.

The anomaly scan (``cloud.health.anomaly``) judges closed hours and days of ``store_metrics``; at a
store's volumes an hour of tickets is too small for it, and a day is known only after midnight. This
rule instead asks, every ``source_health_every_s`` (a scheduler job of the ``Runtime``), for each
store open now (``opening_hours.OpeningHours.is_open``) and each source: over the last 20, 40, 60, 120 and 240
minutes (not before the store opened), how many rows came (``observed``) and how many were due
(``expected``: the median of the same hour on the same weekday of the 4 weeks before, from the
hourly rollup, pro-rated by the minutes of each hour in the window). A window whose count is so
low that a Poisson count with that mean would be as low less than ``ALPHA`` of the time (the
continuous tail, ``baseline.poisson_cdf``), and
short by at least ``MIN_SHORTFALL``, is an incident (both counts divided by the source's
``dispersion`` at this store, over every hour of the same weekday of those 4 weeks, first: a
quasi-Poisson test, a Wi-Fi box counts groups): ``critical`` when nothing came (the source
is dark), ``warning`` when some did (a collapse). The sources:

- ``orders``: the POS's tickets (``orders``), against hourly ``orders``: a till down, or customers
  who stop buying (conversion collapse); and, needing no history, sales tapped 成交 on the guide
  screen with no till ticket after them (``cloud.health.till_silence``): a till down is then an
  alert within minutes of its third unrecorded sale, whatever the hour's normal;
- ``arrivals``: the door's visits (``visits``), against hourly ``arrivals``;
- ``footfall``: the Wi-Fi box's visits started (``footfall``), against hourly ``footfall``;
- ``claims``: assistants claiming arrivals' cards on the guide screen (``feedback`` ``claimed``),
  against hourly ``claimed_share x arrivals``: a frozen screen, staff not there.

And, needing no history either, the stock on the shelves: a store whose stock system sends intraday
movements, with a third or more of its usually-selling SKUs at zero now (``cloud.health.stock_out``;
metric ``shelves_empty``, ``critical`` at half): a delivery that never came, told as the store sells out.
And from the roster: assistants on shift not signed in on the guide screen (a store whose screens are used
to sign in), or who never showed on it while the others handled the floor's arrivals
(``cloud.health.staff_absent``; metric ``staff_absent``, the alert's ``detail`` names them).

One alert (kind ``source``, metric ``<source>_low``, ``ts`` the local minute the short window
began) per store and source while it lasts; it clears itself as soon as no window is short. The
same Poisson test marks the dark hours of a complete day for its score (``dark_hours``, used by
``cloud.health.scoring``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from cloud import clock
from cloud.db import Database
from cloud.health import alerts
from cloud.health.alerts import Alert
from cloud.health.baseline import poisson_cdf
from cloud.health.opening_hours import OpeningHours
from cloud.health.staff_absent import absent_now
from cloud.health.stock_out import empty_shelves
from cloud.health.till_silence import silent_since
from protocol.messages import new_id

#: a count this unlikely under the normal rate is not chance: a store-source is tested every few minutes
#: over overlapping windows, so the single-test textbook 1e-3 would be a false alert every few weeks
ALPHA = 1e-4
#: ... and it must be this many rows short: a quiet hour's 0 of 2 is not news
MIN_SHORTFALL = 5.0
WINDOWS_MIN = (20, 40, 60, 120, 240)
MAX_DISPERSION = 4.0
HISTORY_WEEKS = 4


@dataclass(frozen=True)
class Source:
    name: str
    label: str
    #: (store, UTC start, UTC end) -> rows observed in [start, end)
    count: Callable[[Database, str, datetime, datetime], float]
    #: hourly metric values (metric -> value) -> the hour's expected rows
    expected: Callable[[dict[str, float]], float]
    metrics: tuple[str, ...]

    @property
    def metric(self) -> str:
        return f"{self.name}_low"


def _orders(db: Database, store: str, start: datetime, end: datetime) -> float:
    return float(db.scalar("SELECT COUNT(*) FROM orders WHERE store = ? AND ts >= ? AND ts < ?",
                           (store, int(start.timestamp()), int(end.timestamp()))))


def _visits(db: Database, store: str, start: datetime, end: datetime) -> float:
    return float(db.scalar("SELECT COUNT(*) FROM visits WHERE store = ? AND ts >= ? AND ts < ?",
                           (store, clock.iso_utc(start), clock.iso_utc(end))))


def _footfall(db: Database, store: str, start: datetime, end: datetime) -> float:
    return float(db.scalar("SELECT COALESCE(SUM(visits_started), 0) FROM footfall WHERE store = ? AND minute >= ? "
                           "AND minute < ?", (store, clock.iso_utc(start), clock.iso_utc(end))))


def _claims(db: Database, store: str, start: datetime, end: datetime) -> float:
    return float(db.scalar("SELECT COUNT(*) FROM feedback WHERE store = ? AND ts >= ? AND ts < ? "
                           "AND action = 'claimed'", (store, clock.iso_utc(start), clock.iso_utc(end))))


SOURCES: tuple[Source, ...] = (
    Source("orders", "收银订单", _orders, lambda v: v.get("orders", 0.0), ("orders",)),
    Source("arrivals", "进店识别", _visits, lambda v: v.get("arrivals", 0.0), ("arrivals",)),
    Source("footfall", "客流计数", _footfall, lambda v: v.get("footfall", 0.0), ("footfall",)),
    Source("claims", "导购接待", _claims, lambda v: v.get("claimed_share", 0.0) * v.get("arrivals", 0.0),
           ("claimed_share", "arrivals")),
)
METRICS = {s.metric: s for s in SOURCES}
#: the stock rule's alert (``cloud.health.stock_out``): usually-selling SKUs at zero, from the movements
SHELVES_METRIC = "shelves_empty"
#: the roster rule's alert (``cloud.health.staff_absent``): rostered assistants not on the guide screen
STAFF_METRIC = "staff_absent"


def is_short(observed: float, expected: float) -> bool:
    """Whether ``observed`` rows are too few to be chance when ``expected`` were due (within 2.5 standard
    deviations a Poisson count is never that rare: the sum is skipped)."""
    if expected - observed < max(MIN_SHORTFALL, 2.5 * math.sqrt(expected)):
        return False
    return poisson_cdf(observed, expected) < ALPHA


@dataclass(frozen=True)
class Finding:
    store: str
    brand: str
    metric: str
    since: datetime  # local start of the short window
    observed: float
    expected: float
    severity: str
    detail: str | None = None


def _shortfall(store: dict, source: Source, since: datetime, observed: float, expected: float) -> Finding:
    """A source short in a window: ``critical`` when nothing came (dark), ``warning`` when some did."""
    return Finding(store["id"], store["brand"], source.metric, since, observed, expected,
                   "critical" if observed == 0 else "warning")


def _history(db: Database, store: str, hours: list[datetime], metrics: set[str]) -> dict[datetime, list[dict]]:
    """local hour start -> the metrics of that hour on each same weekday of the 4 weeks before that the store
    has a rollup for (an hour without a row there: nothing happened, 0); hours with fewer than 2 such
    days are left out (too little history to know the store's normal)."""
    keys = {h: [(h - timedelta(weeks=k)).strftime("%Y-%m-%dT%H:00") for k in range(1, HISTORY_WEEKS + 1)]
            for h in hours}
    wanted = sorted({k for ks in keys.values() for k in ks})
    days = sorted({k[:10] for k in wanted})
    rolled = {d for (d,) in db.rows(
        f"SELECT DISTINCT ts FROM store_metrics WHERE store = ? AND grain = 'day' AND ts IN "
        f"({', '.join('?' for _ in days)})", (store, *days))}
    names = sorted(metrics)
    values: dict[str, dict[str, float]] = {}
    for ts, metric, value in db.rows(
            f"SELECT ts, metric, value FROM store_metrics WHERE store = ? AND grain = 'hour' AND ts IN "
            f"({', '.join('?' for _ in wanted)}) AND metric IN ({', '.join('?' for _ in names)})",
            (store, *wanted, *names)):
        values.setdefault(ts, {})[metric] = float(value)
    history = {h: [values.get(k, {}) for k in ks if k[:10] in rolled] for h, ks in keys.items()}
    return {h: past for h, past in history.items() if len(past) >= 2}


def dispersion(samples: list[list[float]]) -> float:
    """How much more the source's hourly counts vary than a Poisson count would (variance / mean, pooled
    over the hours' same-weekday values, at least 1, at most ``MAX_DISPERSION``): a Wi-Fi box counts
    groups, a till's tickets come in rushes. The test then runs on counts divided by it."""
    spread = sum(sum((x - sum(xs) / len(xs)) ** 2 for x in xs) for xs in samples)
    mean = sum((len(xs) - 1) * sum(xs) / len(xs) for xs in samples)
    return min(MAX_DISPERSION, max(1.0, spread / mean)) if mean > 0 else 1.0


def judge(db: Database, now: datetime) -> list[Finding]:
    """Every source of every open store that is short now."""
    found: list[Finding] = []
    metrics = {m for s in SOURCES for m in s.metrics}
    for store in db.query("SELECT id, brand, timezone, opening_hours FROM stores ORDER BY id"):
        tz = clock.zone(store["timezone"])
        local = now.astimezone(tz).replace(tzinfo=None)
        opening = OpeningHours.parse(store["opening_hours"])
        if not opening.is_open(local):
            continue
        opened = opening.opened(local)
        longest = max(opened, local - timedelta(minutes=max(WINDOWS_MIN)))
        first_hour = longest.replace(minute=0, second=0, microsecond=0)
        hours = [first_hour + timedelta(hours=k) for k in range(int((local - first_hour).total_seconds() // 3600) + 1)]
        # the whole day's hours too: the dispersion wants more than the window's few hours of 4 weeks
        day = [local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=k) for k in range(24)]
        till = silent_since(db, store["id"], opened.replace(tzinfo=tz), now)
        if till is not None:
            since, taps = till
            found.append(_shortfall(store, METRICS["orders_low"], since.astimezone(tz).replace(tzinfo=None), 0.0,
                                    float(taps)))
        shelves = empty_shelves(db, store["id"], store["timezone"], now)
        if shelves is not None:
            found.append(Finding(store["id"], store["brand"], SHELVES_METRIC,
                                 shelves.since.astimezone(tz).replace(tzinfo=None),
                                 float(shelves.usual - shelves.empty), float(shelves.usual), shelves.severity))
        absence = absent_now(db, store["id"], store["timezone"], now)
        if absence is not None:
            found.append(Finding(store["id"], store["brand"], STAFF_METRIC,
                                 absence.since.astimezone(tz).replace(tzinfo=None),
                                 float(absence.rostered - len(absence.absent)), float(absence.rostered),
                                 absence.severity, absence.named))
        history = _history(db, store["id"], sorted(set(hours) | set(day)), metrics)
        if any(h not in history for h in hours):
            continue
        for source in SOURCES:
            if till is not None and source.name == "orders":
                continue  # already found silent, and sooner than the count alone would tell
            past = {h: [source.expected(v) for v in values] for h, values in history.items()}
            normal = {h: median(past[h]) for h in hours}
            phi = dispersion(list(past.values()))
            for minutes in WINDOWS_MIN:
                start = max(opened, local - timedelta(minutes=minutes))
                expected = sum(normal[h] * _overlap_h(h, start, local) for h in hours)
                if expected >= MIN_SHORTFALL:
                    observed = source.count(db, store["id"], start.replace(tzinfo=tz), now)
                    if is_short(observed / phi, expected / phi):
                        found.append(_shortfall(store, source, start, observed, round(expected, 1)))
                        break
                if start == opened:
                    break  # longer windows would start at the opening too
    return found


def _overlap_h(hour: datetime, start: datetime, end: datetime) -> float:
    """The share of ``hour`` (a local hour's start) inside [start, end)."""
    return max(0.0, (min(end, hour + timedelta(hours=1)) - max(start, hour)).total_seconds()) / 3600.0


def scan(db: Database, now: datetime) -> tuple[list[Alert], list[str]]:
    """Raise an alert for each store-source newly short and clear those no longer short: (raised, cleared ids)."""
    findings = {(f.store, f.metric): f for f in judge(db, now)}
    fresh = []
    for (store, metric), f in findings.items():
        existing = alerts.open_alert(db, "source", store, "", metric)
        if existing is None:
            fresh.append(Alert(
                id=new_id(), brand=f.brand, store=f.store, metric=f.metric, grain="hour",
                ts=f.since.strftime("%Y-%m-%dT%H:%M"), value=f.observed, baseline=f.expected, mad=0.0,
                z=round(-(f.expected - f.observed) / math.sqrt(f.expected), 3), direction="low", severity=f.severity,
                status="open", created=now, kind="source", detail=f.detail))
        elif existing.detail != f.detail:
            alerts.describe(db, existing.id, f.detail, f.observed)
    raised = alerts.record(db, fresh)
    cleared = [row["id"] for row in db.query(
        "SELECT id, store, metric FROM alerts WHERE kind = 'source' AND cleared_at IS NULL")
        if (row["store"], row["metric"]) not in findings and alerts.clear(db, row["id"], now)]
    return raised, cleared


def dark_hours(observed: dict[str, float], expected: dict[str, float], phi: float = 1.0) -> set[str]:
    """The hours (keys that sort in time) of the run of consecutive hours least likely to be chance,
    among those too short to be: where a source was dark or collapsed during a complete day.
    ``expected`` holds the hours the store normally has rows in; ``phi`` the source's ``dispersion``."""
    observed = {k: v / phi for k, v in observed.items()}
    expected = {k: v / phi for k, v in expected.items()}
    hours = sorted(expected)
    best: list[str] = []
    least = ALPHA
    for i in range(len(hours)):
        seen = due = 0.0
        for j in range(i, len(hours)):
            seen += observed.get(hours[j], 0.0)
            due += expected[hours[j]]
            if is_short(seen, due) and (p := poisson_cdf(seen, due)) < least:
                best, least = hours[i:j + 1], p
    return set(best)
