"""The brand's real-time sales big-screen: one local day of every channel, read from the raw orders
(not the hourly rollup), so the numbers move with each order (shape of /v1/brand/live)."""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import date

from cloud import clock
from cloud.db import Database
from cloud.health.dashboard import hot_products_of, hot_products_read

MEMBER_DEALS = 8


def brand_live(db: Database, day: date | None) -> dict:
    """The day's figures. Its seven reads do not depend on each other: one transaction and, on
    PostgreSQL, one pipeline (``Tx.reads``), where seven one-statement transactions each took a pool
    checkout, BEGIN and COMMIT; a big screen polls this every few seconds, the order stream bench's
    lag probe every 20 ms."""
    tz = clock.DEFAULT_TZ  # the brand's screen runs on head-office time
    day = day or clock.now_local(tz).date()
    start, end = clock.utc_range(day, day, tz)
    s0, s1 = int(start.timestamp()), int(end.timestamp())
    with db.transaction() as tx:
        sold, month_targets, day_rows, stores, visits, deals, hot = tx.reads(
            ("SELECT channel, store, ts / 3600 AS hour, COUNT(*) AS n, SUM(paid) AS paid, "
             "SUM(CASE WHEN member_id IS NULL THEN 0 ELSE paid END) AS member_paid "
             "FROM orders WHERE ts >= ? AND ts < ? GROUP BY channel, store, ts / 3600", (s0, s1)),
            ("SELECT store, sales_target FROM store_targets WHERE month = ?", (day.isoformat()[:7],)),
            ("SELECT store, sales, traffic, conversion FROM store_day_targets WHERE day = ?", (day.isoformat(),)),
            ("SELECT id, name FROM stores", ()),
            ("SELECT store, COUNT(*) AS n FROM visits WHERE store IN (SELECT id FROM stores) "  # the (store, ts) index
             "AND ts >= ? AND ts < ? GROUP BY store", (clock.iso_utc(start), clock.iso_utc(end))),
            ("SELECT sku, name, price, member_price FROM products WHERE member_price IS NOT NULL "
             "ORDER BY popularity DESC, sku LIMIT ?", (MEMBER_DEALS,)),
            hot_products_read(s0, s1))
    by_channel: dict[str, float] = defaultdict(float)
    by_hour: dict[int, float] = defaultdict(float)
    by_store: dict[str, float] = defaultdict(float)
    total = member = 0.0
    orders = 0
    for r in sold:
        paid = float(r["paid"] or 0)
        by_channel[r["channel"]] += paid
        by_hour[int(clock.local_hour_of_epoch_hour(int(r["hour"]), tz)[11:13])] += paid
        if r["store"] is not None:
            by_store[r["store"]] += paid
        total += paid
        member += float(r["member_paid"] or 0)
        orders += int(r["n"])
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    targets = {r["store"]: float(r["sales_target"]) / days_in_month for r in month_targets}
    # a store's own targets for the day (imported day targets): its sales target wins over its
    # month's even share; traffic and conversion targets exist only there
    day_targets: dict[str, tuple[int | None, float | None]] = {}
    for r in day_rows:
        if r["sales"] is not None:
            targets[r["store"]] = float(r["sales"])
        day_targets[r["store"]] = (None if r["traffic"] is None else int(r["traffic"]),
                                   None if r["conversion"] is None else float(r["conversion"]))
    names = {r["id"]: r["name"] for r in stores}
    arrivals = {r["store"]: r["n"] for r in visits}
    traffic = [t for t, _ in day_targets.values() if t is not None]
    return {
        "day": day.isoformat(), "sales": round(total, 2), "target": round(sum(targets.values()), 2), "orders": orders,
        "member_sales_share": round(member / total, 4) if total else None,
        "by_channel": [{"channel": c, "sales": round(v, 2)} for c, v in sorted(by_channel.items(), key=lambda kv: -kv[1])],
        "by_hour": [{"hour": h, "sales": round(by_hour.get(h, 0.0), 2)} for h in range(24)],
        "hot_products": hot_products_of(hot),
        "member_deals": [{"sku": r["sku"], "name": r["name"], "price": r["price"], "member_price": r["member_price"]}
                         for r in deals],
        "stores": [{"store": s, "name": names.get(s, s), "sales": round(by_store.get(s, 0.0), 2),
                    "target": round(targets[s], 2) if s in targets else None, "arrivals": int(arrivals.get(s, 0)),
                    "traffic_target": day_targets.get(s, (None, None))[0],
                    "conversion_target": day_targets.get(s, (None, None))[1]}
                   for s in sorted(names, key=lambda s: -by_store.get(s, 0.0))],
        "arrivals": sum(int(n) for n in arrivals.values()),
        "traffic_target": sum(traffic) if traffic else None,
    }

