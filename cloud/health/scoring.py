"""Each metric of a store-day scored 0..100 against the store's own history and its peers.

own baseline: the mean of the same weekday in the 4 weeks before (at least 2 of them), so a
Saturday is held against Saturdays. peer median: the median of that day's values of the store's
peer group (at least 2 peers). Each comparison gives ``50 + 50 * clamp(r / TOLERANCE, -1, 1)``
where ``r`` is the relative change ``(value - baseline) / max(|baseline|, min_scale)``, negated
when lower is better: level with the baseline is 50, ``TOLERANCE`` (50 %) better or more is 100.
The metric's score is the mean of the comparisons it has; with neither it has no score. Scores do
not depend on the configurable weights, so they are stored (``store_scores``) and weights apply
when read (``cloud.health.model``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from statistics import median

from cloud.db import Database
from cloud.health.metrics import SCORED, Metric
from cloud.health.peers import MIN_PEERS, PeerGroup, load_peer_groups

TOLERANCE = 0.5
HISTORY_WEEKS = 4
MIN_HISTORY = 2
CHUNK_DAYS = 31


def relative_score(value: float, baseline: float, metric: Metric) -> float:
    r = (value - baseline) / max(abs(baseline), metric.min_scale)
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


def score_day(values: Values, day: date, groups: dict[str, PeerGroup]) -> list[tuple]:
    """The ``store_scores`` rows of one day, from day metric values covering the 4 weeks before it."""
    key = day.isoformat()
    history_days = [(day - timedelta(weeks=k)).isoformat() for k in range(1, HISTORY_WEEKS + 1)]
    rows = []
    for store, group in groups.items():
        for metric in SCORED:
            value = values.get((store, key, metric.name))
            if value is None:
                continue
            own = own_baseline([v for d in history_days if (v := values.get((store, d, metric.name))) is not None])
            peer = peer_median([v for s in group.stores if (v := values.get((s, key, metric.name))) is not None])
            score = metric_score(value, own, peer, metric)
            if score is not None:
                rows.append((store, key, metric.name, value, own, peer, round(score, 2)))
    return rows


def score_days(db: Database, first: date, last: date) -> int:
    """Recompute ``store_scores`` for every day in [first, last]; the number of days scored."""
    groups = load_peer_groups(db)
    names = [m.name for m in SCORED]
    marks = ", ".join("?" for _ in names)
    done = 0
    chunk = first
    while chunk <= last:
        chunk_last = min(last, chunk + timedelta(days=CHUNK_DAYS - 1))
        values: Values = {}
        for store, ts, metric, value in db.rows(
            f"SELECT store, ts, metric, value FROM store_metrics WHERE grain = 'day' AND ts >= ? AND ts <= ? "
            f"AND metric IN ({marks})",
            ((chunk - timedelta(weeks=HISTORY_WEEKS)).isoformat(), chunk_last.isoformat(), *names)):
            values[(store, ts, metric)] = value
        with db.transaction() as tx:
            tx.execute("DELETE FROM store_scores WHERE day >= ? AND day <= ?", (chunk.isoformat(), chunk_last.isoformat()))
            day = chunk
            while day <= chunk_last:
                tx.copy("store_scores", ("store", "day", "metric", "value", "own_baseline", "peer_median", "score"),
                        score_day(values, day, groups))
                day += timedelta(days=1)
                done += 1
        chunk = chunk_last + timedelta(days=1)
    return done

