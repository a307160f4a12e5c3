"""A store manager's day: today against the same weekday last week, hour by hour, the assistants'
league, hot products and the live arrivals counter (the shape of /v1/stores/{store}/dashboard).

Day and hour figures come from the rollup (``store_metrics``); the assistants' league, hot
products and the live counter are read from the raw rows of that one store-day, which the
(store, ts) indexes keep small, so they are current to the second.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from statistics import median

from cloud import clock
from cloud.db import Database
from cloud.health.sources import GREETING

HOT_PRODUCTS = 10
#: summable over hours, so "last week up to this hour" is exact for these (and the ratios of them)
_ADDITIVE = ("footfall", "arrivals", "members_recognised", "sales", "orders")


def store_dashboard(db: Database, store: str, day: date | None, now: datetime | None = None) -> dict | None:
    info = db.one("SELECT id, name, timezone FROM stores WHERE id = ?", (store,))
    if info is None:
        return None
    tz = info["timezone"]
    local_now = (now.astimezone(clock.zone(tz)) if now else clock.now_local(tz))
    # by default the last complete day; today is "today so far" (closed hours only, see below)
    day = day or local_now.date() - timedelta(days=1)
    last = day - timedelta(days=7)
    hours = _hours(db, store, day)
    last_hours = _hours(db, store, last)
    until = None
    if day == local_now.date():
        # a day in progress: today and last week over exactly the same hours, those the last rollup
        # closed (never a rolled-up morning against a live count or a whole day)
        done = [h for h, v in hours.items() if v and h < local_now.hour]
        until = min(local_now.hour, max(done) + 1) if done else 0
        today = _partial(hours, until)
        last_week = _partial(last_hours, until)
    else:
        today = dict(db.rows("SELECT metric, value FROM store_metrics WHERE store = ? AND grain = 'day' AND ts = ?",
                             (store, day.isoformat())))
        last_week = dict(db.rows("SELECT metric, value FROM store_metrics WHERE store = ? AND grain = 'day' AND ts = ?",
                                 (store, last.isoformat())))
    start, end = clock.utc_range(day, day, tz)
    return {
        "store": store, "name": info["name"], "day": day.isoformat(), "today": today, "last_week": last_week,
        "complete": day < local_now.date(), "until": None if until is None else f"{until:02d}:00",
        "hourly": [{"hour": h, "footfall": hours[h].get("footfall", 0), "arrivals": hours[h].get("arrivals", 0),
                    "sales": hours[h].get("sales", 0.0), "last_week_sales": last_hours[h].get("sales", 0.0),
                    "last_week_footfall": last_hours[h].get("footfall", 0)} for h in range(24)],
        "assistants": assistants_league(db, store, start, end),
        "hot_products": hot_products(db, int(start.timestamp()), int(end.timestamp()), store),
        "live": _live(db, store, start, end),
    }


def _hours(db: Database, store: str, day: date) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for ts, metric, value in db.rows(
        "SELECT ts, metric, value FROM store_metrics WHERE store = ? AND grain = 'hour' AND ts >= ? AND ts < ?",
        (store, day.isoformat(), (day + timedelta(days=1)).isoformat())):
        out[int(ts[11:13])][metric] = value
    return out


def _partial(hours: dict[int, dict[str, float]], before_hour: int) -> dict[str, float]:
    sums = {m: sum(hours[h].get(m, 0) for h in range(before_hour)) for m in _ADDITIVE}
    if sums["arrivals"]:
        sums["recognised_share"] = sums["members_recognised"] / sums["arrivals"]
    if sums["orders"]:
        sums["avg_ticket"] = sums["sales"] / sums["orders"]
    if sums["footfall"]:
        sums["conversion"] = sums["orders"] / sums["footfall"]
    return sums


def assistants_league(db: Database, store: str, start: datetime, end: datetime) -> list[dict]:
    """Per assistant: cards claimed, greeted and served (distinct arrivals); sales as the till
    confirmed them (``order_attribution``: net paid of the store orders attributed to the assistant,
    refunds included), ``sold`` = those orders, conversion (sold / served), median time from the
    visit's arrival to the till's sale and to the greeting; the amounts typed on 成交 taps are only
    ``claimed_sales`` (an unconfirmed claim), never the league's sales."""
    acts: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    claimed: dict[str, float] = defaultdict(float)
    first_greet: dict[str, tuple[str, str, str]] = {}  # visit -> (ts, assistant, visit ts)
    for assistant, visit, action, ts, amount, visit_ts in db.rows(
        "SELECT f.assistant, f.visit_id, f.action, f.ts, f.amount, v.ts FROM feedback f JOIN visits v ON v.id = f.visit_id "
        "WHERE f.store = ? AND f.ts >= ? AND f.ts < ? AND f.assistant IS NOT NULL",
        (store, clock.iso_utc(start), clock.iso_utc(end))):
        acts[assistant][action].add(visit)
        if action == "sold":
            claimed[assistant] += amount or 0.0
        if action in GREETING and (visit not in first_greet or ts < first_greet[visit][0]):
            first_greet[visit] = (ts, assistant, visit_ts)
    delays: dict[str, list[float]] = defaultdict(list)
    for ts, assistant, visit_ts in first_greet.values():
        delays[assistant].append(max(0.0, (datetime.fromisoformat(ts) - datetime.fromisoformat(visit_ts)).total_seconds()))
    amounts: dict[str, float] = defaultdict(float)
    orders: dict[str, int] = defaultdict(int)
    to_sale: dict[str, list[float]] = defaultdict(list)
    for assistant, paid, lag, refund in db.rows(  # the till's orders, attributed (cloud.arrivals.till)
        "SELECT assistant, paid, lag_s, reason = 'refund_of' FROM order_attribution WHERE store = ? AND ts >= ? "
        "AND ts < ? AND assistant IS NOT NULL AND reason IN ('receipt_confirmed', 'till_assistant', "
        "'served_in_visit', 'refund_of')", (store, int(start.timestamp()), int(end.timestamp()))):
        amounts[assistant] += paid
        if not refund:
            orders[assistant] += 1
            if lag is not None:
                to_sale[assistant].append(lag)
        acts.setdefault(assistant, defaultdict(set))
    names = dict(db.rows("SELECT id, name FROM assistants WHERE store = ?", (store,)))
    league = []
    for assistant, by_action in acts.items():
        served = len(by_action["served"] | by_action["sold"])
        sold = orders[assistant]
        league.append({
            "assistant": assistant, "name": names.get(assistant, assistant), "claimed": len(by_action["claimed"]),
            "greeted": len(by_action["greeted"] | by_action["served"] | by_action["sold"]), "served": served,
            "sold": sold, "conversion": round(sold / served, 4) if served else None,
            "sales": round(amounts[assistant], 2), "confirmed_orders": sold,
            "claimed_sales": round(claimed[assistant], 2), "claimed_sold": len(by_action["sold"]),
            "median_time_to_sale_s": median(to_sale[assistant]) if to_sale[assistant] else None,
            "median_time_to_greet_s": median(delays[assistant]) if delays[assistant] else None,
        })
    league.sort(key=lambda a: (-a["sales"], -a["sold"], a["assistant"]))
    return league


def hot_products(db: Database, start_s: int, end_s: int, store: str | None = None) -> list[dict]:
    """The best sellers by units over [start_s, end_s): one store's, or every channel's, with the
    catalogue's member price (what a member pays for what is selling now)."""
    return hot_products_of(db.query(*hot_products_read(start_s, end_s, store)))


def hot_products_read(start_s: int, end_s: int, store: str | None = None) -> tuple[str, tuple]:
    """``hot_products``' read, for a caller that sends it with its other reads (``Tx.reads``)."""
    where, args = ("l.store = ? AND l.ts >= ? AND l.ts < ?", (store, start_s, end_s)) if store else (
        "l.ts >= ? AND l.ts < ?", (start_s, end_s))
    return (f"SELECT l.sku, MAX(p.name) AS name, SUM(l.qty) AS units, SUM(l.amount) AS sales, "
            f"MAX(p.member_price) AS member_price FROM order_lines l LEFT JOIN products p ON p.sku = l.sku "
            f"WHERE {where} GROUP BY l.sku ORDER BY SUM(l.qty) DESC, SUM(l.amount) DESC, l.sku LIMIT ?",
            (*args, HOT_PRODUCTS))


def hot_products_of(rows: list[dict]) -> list[dict]:
    """``hot_products_read``'s rows as the dashboards show them."""
    return [{"sku": r["sku"], "name": r["name"] or r["sku"], "units": int(r["units"]), "sales": round(float(r["sales"]), 2),
             "member_price": float(r["member_price"]) if r["member_price"] is not None else None} for r in rows]


def _live(db: Database, store: str, start: datetime, end: datetime) -> dict[str, int]:
    arrivals, members = db.rows(
        "SELECT COUNT(*), COUNT(member_id) FROM visits WHERE store = ? AND ts >= ? AND ts < ?",
        (store, clock.iso_utc(start), clock.iso_utc(end)))[0]
    return {"arrivals_today": int(arrivals), "members_today": int(members), "visitors_today": int(arrivals - members)}
