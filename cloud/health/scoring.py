"""Each metric of a store-day scored 0..100 against the store's own history and its peers.

own baseline: the mean of the same weekday in the 4 weeks before (at least 2 of them), so a
Saturday is held against Saturdays. peer median: the median of that day's values of the store's
peer group (at least 2 peers). Each comparison gives ``50 + 50 * clamp(r / TOLERANCE, -1, 1)``
where ``r`` is the relative change ``(value - baseline) / max(|baseline|, min_scale)``, negated
when lower is better: level with the baseline is 50, ``TOLERANCE`` (50 %) better or more is 100.
The metric's score is the mean of the comparisons it has; with neither it has no score. Scores do
not depend on the configurable weights, so they are stored (``store_scores``) and weights apply
when read (``cloud.health.model``).

Direction: ``band`` metrics (sell-through) are best at their normal: ``50 - 50 * clamp(|r| / TOLERANCE)``,
so shelves sold empty (0.996 against a normal 0.35) score 0, not 100.

Data expectation: a metric that ``expects`` a source (the door camera's arrivals, the POS's orders,
footfall, the stock export) and has no value, or whose source gave less than ``DARK_SHARE`` of its
own normal, on a day the store was open (any of arrivals, orders or footfall above 0) while that
source normally reports (``MIN_EXPECTED`` a day on the same weekdays) is an incident: it scores 0
with the baselines it would have had, and ``value`` 0 when it had none (the detail view marks it).

Incident hours: a source dark (or collapsed) for part of an open day is weighed by the hours it
was: per source (the door's arrivals, the POS's orders, footfall, and the guide screen's claims),
the hourly rollup's counts of the day against their normal (the median of the same weekday-hour
over the 4 weeks before) give the run of hours least likely to be chance among those too short to
be (``cloud.health.shortfall.dark_hours``, the test the live rule uses, with the source's
dispersion over those 4 weeks), and ``f``, the share of the day's expected volume that fell in
it. Every metric expecting that source (``weighed_by``) scores ``(1 - f)`` of its score: a till
down from 16:00 takes the evening's share of the day from its ticket metrics, and a source dark
all day (``f`` 1) scores 0 like the whole-day rule above.

Only complete days are scored: the store's local today is left to the "today so far" view, which
holds it against the same hours of its baselines (``cloud.health.views.today_so_far``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from statistics import median

from cloud import clock
from cloud.db import Database
from cloud.health.metrics import SCORED, Metric
from cloud.health.peers import MIN_PEERS, PeerGroup, load_peer_groups
from cloud.health.shortfall import dark_hours, dispersion

TOLERANCE = 0.5
HISTORY_WEEKS = 4
MIN_HISTORY = 2
CHUNK_DAYS = 31
#: a source that normally gives at least this much a day is expected to report
MIN_EXPECTED = {"arrivals": 20.0, "orders": 5.0, "footfall": 20.0, "stock": 1.0}
#: a source below this share of its own normal on an open day is dark (a dead camera, a POS down)
DARK_SHARE = 0.25
#: the day metrics that tell whether a source reported (stock: a stock export row gives stock_outs)
VOLUME = {"arrivals": "arrivals", "orders": "orders", "footfall": "footfall", "stock": "stock_outs"}
_ACTIVITY = ("arrivals", "orders", "footfall")


def relative_score(value: float, baseline: float, metric: Metric) -> float:
    r = (value - baseline) / max(abs(baseline), metric.min_scale)
    if metric.direction == "band":
        return 50.0 - 50.0 * min(1.0, abs(r) / TOLERANCE)
    if not metric.higher_is_better:
        r = -r
    return 50.0 + 50.0 * max(-1.0, min(1.0, r / TOLERANCE))


def own_baseline(history: list[float]) -> float | None:
    return sum(history) / len(history) if len(history) >= MIN_HISTORY else None


def peer_median(values: list[float]) -> float | None:
    return median(values) if len(values) >= MIN_PEERS else None


def metric_score(value: float, own: float | None, peer: float | None, metric: Metric) -> float | None:
    parts = [relative_score(value, b, metric) for b in (own, peer) if b is not None]
    return sum(parts) / len(parts) if parts else None


Values = dict[tuple[str, str, str], float]  # (store, day, metric) -> value


def score_day(values: Values, day: date, groups: dict[str, PeerGroup],
              today: dict[str, str] | None = None, hours: Values | None = None) -> list[tuple]:
    """The ``store_scores`` rows of one day, from day metric values covering the 4 weeks before it
    (stores whose local ``today`` is this day or earlier are not scored: their day is not over);
    ``hours``: the hourly values of the sources (``HOURLY``, keyed by the hour) over the same span,
    for the incident hours."""
    key = day.isoformat()
    history_days = [(day - timedelta(weeks=k)).isoformat() for k in range(1, HISTORY_WEEKS + 1)]
    rows: list[tuple] = []
    for store, group in groups.items():
        if today is not None and key >= today.get(store, "9999"):
            continue
        dark = dark_sources(values, store, key, history_days)
        share = incident_shares(hours, store, key, history_days) if hours else {}
        for metric in SCORED:
            value = values.get((store, key, metric.name))
            if value is None and metric.expects not in dark:
                continue
            own = own_baseline([v for d in history_days if (v := values.get((store, d, metric.name))) is not None])
            peer = peer_median([v for s in group.stores if (v := values.get((s, key, metric.name))) is not None])
            if metric.expects in dark:
                rows.append((store, key, metric.name, value or 0.0, own, peer, 0.0))
                continue
            if value is None:
                continue
            score = metric_score(value, own, peer, metric)
            if score is not None:
                score *= 1.0 - max((share.get(source, 0.0) for source in weighed_by(metric)), default=0.0)
                rows.append((store, key, metric.name, value, own, peer, round(score, 2)))
    return rows


#: the sources whose hours are weighed: the hourly rollup's count of each (``claims``: cards the assistants
#: claimed on the guide screen, the feedback every greeting and serving metric is made of)
HOURLY: dict[str, Callable[[Callable[[str], float]], float]] = {
    "arrivals": lambda v: v("arrivals"), "orders": lambda v: v("orders"), "footfall": lambda v: v("footfall"),
    "claims": lambda v: v("claimed_share") * v("arrivals"),
}
HOURLY_METRICS = ("arrivals", "orders", "footfall", "claimed_share")


def weighed_by(metric: Metric) -> list[str]:
    """The sources whose incident hours take from this metric's score: the one it expects, and the guide
    screen's claims for the metrics made of its feedback."""
    return [s for s in (metric.expects, "claims" if "feedback" in metric.source else None) if s in HOURLY]


def incident_shares(hours: Values, store: str, key: str, history_days: list[str]) -> dict[str, float]:
    """source -> the share of the day's expected volume that fell in its dark (or collapsed) hours."""
    shares = {}
    def at(hour: str) -> Callable[[str], float]:
        return lambda metric: hours.get((store, hour, metric), 0.0)

    open_days = [d for d in history_days if (store, d, "arrivals") in hours]
    for source, count in HOURLY.items():
        expected: dict[str, float] = {}
        samples = []
        for h in range(24):
            past = [count(at(f"{d}T{h:02d}:00")) for d in open_days]
            if len(past) >= MIN_HISTORY and (normal := median(past)) > 0:
                expected[f"{key}T{h:02d}:00"] = normal
                samples.append(past)
        if not expected:
            continue
        observed = {k: count(at(k)) for k in expected}
        dark = dark_hours(observed, expected, dispersion(samples))
        if dark:
            shares[source] = sum(expected[k] for k in dark) / sum(expected.values())
    return shares


def dark_sources(values: Values, store: str, key: str, history_days: list[str]) -> set[str]:
    """The sources that should have reported on an open store-day and did not (or hardly)."""
    if not any(values.get((store, key, m), 0.0) > 0 for m in _ACTIVITY):
        return set()  # closed (or not yet open): nothing was expected
    dark = set()
    for source, metric in VOLUME.items():
        past = [values.get((store, d, metric)) for d in history_days]
        if source == "stock":
            if sum(v is not None for v in past) >= MIN_HISTORY and values.get((store, key, metric)) is None:
                dark.add(source)
            continue
        normal = own_baseline([v for v in past if v is not None])
        if normal is not None and normal >= MIN_EXPECTED[source] \
                and values.get((store, key, metric), 0.0) < DARK_SHARE * normal:
            dark.add(source)
    return dark


def complete_before(db: Database, now: datetime | None) -> dict[str, str]:
    """Each store's local today (``YYYY-MM-DD``) at ``now``: its first day not complete yet."""
    now = now or clock.utcnow()
    return {s: now.astimezone(clock.zone(z)).date().isoformat() for s, z in db.rows("SELECT id, timezone FROM stores")}


def score_days(db: Database, first: date, last: date, *, now: datetime | None = None) -> int:
    """Recompute ``store_scores`` for every complete day in [first, last]; the number of days scored."""
    groups = load_peer_groups(db)
    today = complete_before(db, now)
    names = [m.name for m in SCORED] + [m for m in VOLUME.values() if m not in {s.name for s in SCORED}]
    marks = ", ".join("?" for _ in names)
    done = 0
    chunk = first
    while chunk <= last:
        chunk_last = min(last, chunk + timedelta(days=CHUNK_DAYS - 1))
        values: Values = {}
        since = (chunk - timedelta(weeks=HISTORY_WEEKS)).isoformat()
        for store, ts, metric, value in db.rows(
            f"SELECT store, ts, metric, value FROM store_metrics WHERE grain = 'day' AND ts >= ? AND ts <= ? "
            f"AND metric IN ({marks})", (since, chunk_last.isoformat(), *names)):
            values[(store, ts, metric)] = value
        # the hours, keyed (store, hour, metric), and each day the store has one, keyed (store, day, "arrivals")
        hours: Values = {}
        for store, ts, metric, value in db.rows(
            f"SELECT store, ts, metric, value FROM store_metrics WHERE grain = 'hour' AND ts >= ? AND ts < ? "
            f"AND metric IN ({', '.join('?' for _ in HOURLY_METRICS)})",
            (since, (chunk_last + timedelta(days=1)).isoformat(), *HOURLY_METRICS)):
            hours[(store, ts, metric)] = value
            hours[(store, ts[:10], "arrivals")] = 1.0  # the day has hourly rows
        with db.transaction() as tx:
            tx.execute("DELETE FROM store_scores WHERE day >= ? AND day <= ?", (chunk.isoformat(), chunk_last.isoformat()))
            day = chunk
            while day <= chunk_last:
                tx.copy("store_scores", ("store", "day", "metric", "value", "own_baseline", "peer_median", "score"),
                        score_day(values, day, groups, today, hours))
                day += timedelta(days=1)
                done += 1
        chunk = chunk_last + timedelta(days=1)
    return done

