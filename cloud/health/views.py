"""The health model as HQ and a store manager read it: the ranking of every store, and one store's
scores explained down to the metrics behind them (shapes of /v1/health/stores[/{store}]).

Pages open on the **last complete day** (a day over in every store's time zone): a morning is
never ranked against full days. Beside it, ``today_so_far`` holds today's closed hours against the
same hours of the same weekday last week and of the 4 weeks before (labelled as such)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from cloud import clock
from cloud.db import Database
from cloud.health.incident_hours import incidents_by_day
from cloud.health.metrics import SUB_SCORES, metrics_of
from cloud.health.model import StoreScores, Weights, combine_many, load_weights
from cloud.health.opening_hours import OpeningHours
from cloud.health.peers import PeerGroup, load_peer_groups

HISTORY_DAYS = 28
HISTORY_WEEKS = 4
_NO_GROUP = PeerGroup("none", ())


#: today's figures summed over its closed hours; conversion is recomputed from the sums
SO_FAR_COUNTS = ("arrivals", "footfall", "orders", "sales", "members_recognised")


def first_incomplete_day(db: Database, now: datetime | None = None) -> date:
    """The earliest local today over the stores at ``now``: every day before it is over everywhere."""
    now = now or clock.utcnow()
    zones = [z for (z,) in db.rows("SELECT DISTINCT timezone FROM stores")] or [None]
    return min(now.astimezone(clock.zone(z)).date() for z in zones)


def latest_day(db: Database, now: datetime | None = None) -> date | None:
    """The latest complete day with floor or till activity (a day just begun has stock rows but no
    customers yet; a day still under way is "today so far", not a day to rank)."""
    before = first_incomplete_day(db, now).isoformat()
    day = db.scalar("SELECT MAX(ts) FROM store_metrics WHERE grain = 'day' AND metric IN ('arrivals', 'orders') "
                    "AND value > 0 AND ts < ?", (before,))
    return date.fromisoformat(day) if day else None


def today_so_far(db: Database, store: str | None = None, now: datetime | None = None) -> dict:
    """Today's closed hours against the same hours of its baselines, per store: the counts of
    ``SO_FAR_COUNTS`` and conversion, for today, the same weekday last week and the mean of the same
    weekday of the 4 weeks before (each only up to today's last closed local hour)."""
    where, args = ("WHERE id = ?", (store,)) if store else ("", ())
    return _so_far(db, dict(db.rows(f"SELECT id, timezone FROM stores {where} ORDER BY id", args)), store, now)


def _so_far(db: Database, zones: dict[str, str | None], store: str | None, now: datetime | None) -> dict:
    """``today_so_far`` of the stores whose time zones the caller read (``store``: that one only)."""
    now = now or clock.utcnow()
    stores = {shop: now.astimezone(clock.zone(tz)) for shop, tz in zones.items()}
    if not stores:
        return {}
    todays = {local.date() for local in stores.values()}
    days = sorted({t - timedelta(weeks=k) for t in todays for k in range(HISTORY_WEEKS + 1)})
    marks = ", ".join("?" for _ in SO_FAR_COUNTS)
    sums: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    only, only_args = ("AND store = ?", (store,)) if store else ("", ())
    for d in days:
        for shop, ts, metric, value in db.rows(
                f"SELECT store, ts, metric, value FROM store_metrics WHERE grain = 'hour' AND ts >= ? AND ts < ? "
                f"AND metric IN ({marks}) {only}",
                (d.isoformat(), (d + timedelta(days=1)).isoformat(), *SO_FAR_COUNTS, *only_args)):
            local = stores.get(shop)
            if local is not None and ts[11:16] < f"{local.hour:02d}:00":
                sums[(shop, d.isoformat())][metric] += value

    def figures(shop: str, day: date) -> dict[str, float | None]:
        got = sums.get((shop, day.isoformat()), {})
        row: dict[str, float | None] = {m: round(got.get(m, 0.0), 2) for m in SO_FAR_COUNTS}
        row["conversion"] = round(got["orders"] / got["footfall"], 4) if got.get("footfall") else None
        return row

    out: dict[str, Any] = {}
    for shop, local in stores.items():
        today, until = local.date(), f"{local.hour:02d}:00"
        history = [figures(shop, today - timedelta(weeks=k)) for k in range(1, HISTORY_WEEKS + 1)
                   if (shop, (today - timedelta(weeks=k)).isoformat()) in sums]
        baseline: dict[str, float | None] = {}
        for m in (*SO_FAR_COUNTS, "conversion"):
            vals = [v for h in history if (v := h[m]) is not None]
            baseline[m] = round(sum(vals) / len(vals), 4) if len(vals) >= 2 else None
        out[shop] = {"day": today.isoformat(), "until": until,
                     "label": f"today so far (to {until}, against the same hours)",
                     "today": figures(shop, today), "last_week": figures(shop, today - timedelta(weeks=1)),
                     "baseline": baseline}
    return out


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
    so_far = today_so_far(db, only_store)
    if day is None:
        return {"day": None, "stores": [], "today_so_far": so_far}
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
            "overall_vs_own": _r(overall - sum(own_history[store]) / len(own_history[store]))
            if overall is not None and own_history[store] else None,
            "overall_vs_peers": _r(overall - median(peers)) if overall is not None and peers else None,
            "open_alerts": int(alerts.get(store, 0)), "sales": round(facts.get((store, "sales"), 0.0), 2),
            "footfall": int(facts.get((store, "footfall"), 0)),
        })
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["store"]))
    return {"day": key, "complete": key < first_incomplete_day(db).isoformat(), "stores": rows,
            "today_so_far": so_far}


def store_detail(db: Database, store: str, day: date | None) -> dict | None:
    """One store's scores on ``day`` explained: sub-scores, their metrics and baselines, 28 days of history."""
    info = db.one("SELECT id, name, timezone, opening_hours FROM stores WHERE id = ?", (store,))
    if info is None:
        return None
    tz = info["timezone"]
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
            # scored without a value of its own: its source (camera, POS, stock) was dark while open
            dark = m.name in scores and m.name not in values
            metrics.append({"metric": m.name, "value": None if dark else value, "unit": m.unit, "own_baseline": own,
                            "peer_median": peer, "score": score, "weight": weights[sub].get(m.name, 0.0),
                            "direction": m.direction, "expects": m.expects,
                            "incident": f"no {m.expects} while the store was open" if dark else None})
        sub_scores.append({"name": sub, "score": _r(mine.sub_scores.get(sub)) if mine else None,
                           "weight": weights["overall"][sub], "metrics": metrics})
    history = health_by_store_day(db, [day - timedelta(days=k) for k in range(HISTORY_DAYS)], weights, store)
    group = load_peer_groups(db).get(store, _NO_GROUP)
    peer_overall = _overalls(today, group.stores)
    with db.transaction() as tx:
        incidents, _ = incidents_by_day(tx, store, tz, OpeningHours.parse(info["opening_hours"]), day, day,
                                        clock.utcnow()).get(key, ([], 0.0))
    return {
        "store": store, "name": info["name"], "day": key, "overall": _r(mine.overall) if mine else None,
        "rank": ranks.get(store), "of": len(ranks), "sub_scores": sub_scores,
        "complete": key < first_incomplete_day(db).isoformat(),
        "today_so_far": _so_far(db, {store: tz}, store, None).get(store),
        "history": [{"day": d, "overall": _r(h.overall), **{sub: _r(h.sub_scores.get(sub)) for sub in SUB_SCORES}}
                    for (_, d), h in sorted(history.items(), key=lambda kv: kv[0][1])],
        "peer_group": {"key": group.key, "stores": list(group.stores),
                       "overall_median": _r(median(peer_overall)) if peer_overall else None},
        "incidents": [{**asdict(i), "minutes": round(i.minutes, 1)} for i in incidents],
    }

