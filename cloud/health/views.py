"""The health model as HQ and a store manager read it: the ranking of every store, and one store's
scores explained down to the metrics behind them (shapes of /v1/health/stores[/{store}])."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from statistics import median
from typing import Any

from cloud.db import Database
from cloud.health.metrics import SUB_SCORES, metrics_of
from cloud.health.model import StoreScores, Weights, combine_many, load_weights
from cloud.health.peers import PeerGroup, load_peer_groups

HISTORY_DAYS = 28
HISTORY_WEEKS = 4
_NO_GROUP = PeerGroup("none", ())


def latest_day(db: Database) -> date | None:
    """The latest day with floor or till activity (a day just begun has stock rows but no customers yet)."""
    day = db.scalar("SELECT MAX(ts) FROM store_metrics WHERE grain = 'day' AND metric IN ('arrivals', 'orders') "
                    "AND value > 0")
    return date.fromisoformat(day) if day else None


def health_by_store_day(db: Database, days: list[date], weights: Weights,
                        store: str | None = None) -> dict[tuple[str, str], StoreScores]:
    where, args = f"day IN ({', '.join('?' for _ in days)})", [d.isoformat() for d in days]
    if store is not None:
        where, args = where + " AND store = ?", [*args, store]
    scores: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for s, day, metric, score in db.rows(f"SELECT store, day, metric, score FROM store_scores WHERE {where}", args):
        scores[(s, day)][metric] = score
    return combine_many(scores, weights)


def _ranks(day_health: dict[str, StoreScores]) -> dict[str, int]:
    ordered = sorted((h.overall, s) for s, h in day_health.items() if h.overall is not None)
    return {s: i + 1 for i, (_, s) in enumerate(reversed(ordered))}


def _open_alerts(db: Database) -> dict[str, int]:
    """Open alerts per store, once H7-anomaly's alerts table (migration 7) exists."""
    if not db.scalar("SELECT COUNT(*) FROM schema_migrations WHERE version = 7"):
        return {}
    return dict(db.rows("SELECT store, COUNT(*) FROM alerts WHERE status = 'open' GROUP BY store"))


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _overalls(scores: dict[str, StoreScores], stores: Iterable[str]) -> list[float]:
    """The overall scores of those of ``stores`` that have one."""
    return [o for o in (scores[s].overall for s in stores if s in scores) if o is not None]


def ranking(db: Database, day: date | None, only_store: str | None = None) -> dict:
    """Every store's scores on ``day`` ranked by overall; ``only_store`` keeps one row (a store manager)."""
    day = day or latest_day(db)
    if day is None:
        return {"day": None, "stores": []}
    key = day.isoformat()
    weights = load_weights(db)
    # "vs own": against the same weekday of the 4 weeks before, like every metric's own baseline
    health = health_by_store_day(db, [day - timedelta(weeks=k) for k in range(HISTORY_WEEKS + 1)], weights)
    today = {s: h for (s, d), h in health.items() if d == key}
    ranks = _ranks(today)
    own_history: dict[str, list[float]] = defaultdict(list)
    for (shop, d), h in health.items():
        if d != key and h.overall is not None:
            own_history[shop].append(h.overall)
    groups = load_peer_groups(db)
    alerts = _open_alerts(db)
    facts = {(s, m): v for s, m, v in db.rows(
        "SELECT store, metric, value FROM store_metrics WHERE grain = 'day' AND ts = ? AND metric IN ('sales', 'footfall')",
        (key,))}
    rows: list[dict[str, Any]] = []
    for s in db.query("SELECT id, name, city, region, city_tier, format FROM stores ORDER BY id"):
        store: str = s["id"]
        if only_store is not None and store != only_store:
            continue
        mine = today.get(store)
        overall = mine.overall if mine else None
        peers = _overalls(today, groups.get(store, _NO_GROUP).stores)
        rows.append({
            "store": store, "name": s["name"], "city": s["city"], "region": s["region"],
            "city_tier": s["city_tier"], "format": s["format"], "overall": _r(overall),
            **{sub: _r(mine.sub_scores.get(sub) if mine else None) for sub in SUB_SCORES},
            "rank": ranks.get(store),
            "overall_vs_own": _r(overall - sum(own_history[store]) / len(own_history[store])) if overall is not None and own_history[store] else None,
            "overall_vs_peers": _r(overall - median(peers)) if overall is not None and peers else None,
            "open_alerts": int(alerts.get(store, 0)), "sales": round(facts.get((store, "sales"), 0.0), 2),
            "footfall": int(facts.get((store, "footfall"), 0)),
        })
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["store"]))
    return {"day": key, "stores": rows}




def store_detail(db: Database, store: str, day: date | None) -> dict | None:
    """One store's scores on ``day`` explained: sub-scores, their metrics and baselines, 28 days of history."""
    info = db.one("SELECT id, name FROM stores WHERE id = ?", (store,))
    if info is None:
        return None
    day = day or latest_day(db)
    if day is None:
        return {"store": store, "name": info["name"], "day": None, "overall": None, "rank": None, "of": 0,
                "sub_scores": [], "history": [], "peer_group": {"key": "none", "stores": [], "overall_median": None}}
    key = day.isoformat()
    weights = load_weights(db)
    everyone = health_by_store_day(db, [day], weights)
    today = {s: h for (s, _), h in everyone.items()}
    ranks = _ranks(today)
    mine = today.get(store)
    scores = {m: (v, own, peer, sc) for m, v, own, peer, sc in db.rows(
        "SELECT metric, value, own_baseline, peer_median, score FROM store_scores WHERE store = ? AND day = ?",
        (store, key))}
    values = dict(db.rows("SELECT metric, value FROM store_metrics WHERE store = ? AND grain = 'day' AND ts = ?",
                          (store, key)))
    sub_scores = []
    for sub in SUB_SCORES:
        metrics = []
        for m in metrics_of(sub):
            value, own, peer, score = scores.get(m.name, (values.get(m.name), None, None, None))
            metrics.append({"metric": m.name, "value": value, "unit": m.unit, "own_baseline": own,
                            "peer_median": peer, "score": score, "weight": weights[sub].get(m.name, 0.0)})
        sub_scores.append({"name": sub, "score": _r(mine.sub_scores.get(sub)) if mine else None,
                           "weight": weights["overall"][sub], "metrics": metrics})
    history = health_by_store_day(db, [day - timedelta(days=k) for k in range(HISTORY_DAYS)], weights, store)
    group = load_peer_groups(db).get(store, _NO_GROUP)
    peer_overall = _overalls(today, group.stores)
    return {
        "store": store, "name": info["name"], "day": key, "overall": _r(mine.overall) if mine else None,
        "rank": ranks.get(store), "of": len(ranks), "sub_scores": sub_scores,
        "history": [{"day": d, "overall": _r(h.overall), **{sub: _r(h.sub_scores.get(sub)) for sub in SUB_SCORES}}
                    for (_, d), h in sorted(history.items(), key=lambda kv: kv[0][1])],
        "peer_group": {"key": group.key, "stores": list(group.stores),
                       "overall_median": _r(median(peer_overall)) if peer_overall else None},
    }

