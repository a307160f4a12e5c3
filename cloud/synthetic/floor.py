"""The synthetic brand's shop floor: store attributes, assistants, targets, and day by day the
arrivals, guide-screen feedback, Wi-Fi footfall, floor sales and stock the health model reads.

Shaped, not uniform: each store has a size and a service quality, each assistant a skill; arrivals
follow the hours of a Chinese mall day (lunch and evening peaks) and weekends are busier; about a
third of arrivals are recognised members of the store. An assistant claims a card, greets after a
lognormal delay (median ~40 s, slower in busy hours and weaker stores), serves, and sometimes sells;
a sale is a POS order at the store for the member (or a walk-in), so sales, conversion and the
assistants' league agree. A few visitors sign up as new members. Stock is a daily position per
SKU of the store's assortment, replenished weekly, with markdown write-offs.

All stores are on China time (Asia/Shanghai, UTC+8, no daylight saving): local hours are UTC+8.
Everything is drawn with numpy from one seed and written per store with bulk copies.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import numpy as np

from cloud.cdp import purchases
from cloud.db import Database
from cloud.db.database import Tx

TZ = "Asia/Shanghai"
UTC_OFFSET_S = 8 * 3600
TIER = {"上海": "tier1", "北京": "tier1", "广州": "tier1", "深圳": "tier1", "杭州": "tier2", "成都": "tier2",
        "南京": "tier2", "武汉": "tier2", "西安": "tier3", "重庆": "tier3"}
REGION = {"上海": "华东", "杭州": "华东", "南京": "华东", "北京": "华北", "广州": "华南", "深圳": "华南",
          "成都": "西南", "重庆": "西南", "武汉": "华中", "西安": "西北"}
FORMATS = ("mall", "street", "outlet")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN = ("静", "丽", "敏", "婷", "雪", "琳", "晶", "颖", "欣", "悦", "洁", "倩", "佳", "怡", "萱", "磊", "浩", "杰")
#: share of a day's arrivals in each local hour (the store is open 10:00-22:00)
_HOURS = np.array([0] * 10 + [4, 6, 9, 8, 7, 7, 8, 9, 11, 12, 10, 9] + [0, 0], float)
HOUR_SHARE = _HOURS / _HOURS.sum()
ASSORTMENT = 20


def generate_floor(db: Database, *, days: int, end_day: date, seed: int = 7, arrivals_per_day: float = 60.0,
                   stores: list[str] | None = None, until: datetime | None = None) -> dict[str, int | float]:
    """Floor data for the ``days`` local days ending with ``end_day`` (inclusive); nothing at or
    after ``until`` (a demo generated at noon has this morning's arrivals, not this evening's)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed + 101)
    first_day = end_day - timedelta(days=days - 1)
    counts: dict[str, int | float] = {"floor_days": days, "arrivals": 0, "feedback": 0, "floor_orders": 0, "new_members": 0,
              "stock_rows": 0, "footfall_rows": 0}
    with db.transaction() as tx:
        rows = tx.rows("SELECT id, city, brand FROM stores ORDER BY id")
        if stores is not None:
            rows = [r for r in rows if r[0] in stores]
        catalogue = _products(tx, rng)
        members = _members_by_store(tx)
    for i, (store, city, brand) in enumerate(rows):
        with db.transaction() as tx:
            profile = {**_store_profile(tx, rng, store, city, i, arrivals_per_day), "brand": brand}
            _store_days(tx, rng, store, profile, first_day, days, catalogue, members.get(store, []), counts,
                        int(until.timestamp()) if until else None)
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts


def _products(tx: Tx, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The catalogue the orders use, written to ``products`` (with member deals) where missing."""
    have = dict(tx.rows("SELECT sku, price FROM products"))
    sold = tx.rows("SELECT sku, MAX(category), MAX(price), COUNT(*) FROM order_lines GROUP BY sku")
    new = [(sku, f"{cat}·{sku[-3:]}", cat, float(price), int(n), 0) for sku, cat, price, n in sold if sku not in have]
    if not sold and not have:
        new = [(f"SKU{k:05d}", f"精选商品{k}", "护肤", float(round(rng.uniform(59, 899))), int(rng.integers(1, 500)), 0)
               for k in range(200)]
    if new:
        tx.copy("products", ("sku", "name", "category", "price", "popularity", "is_new"), new)
    deals = tx.rows("SELECT sku, price FROM products WHERE member_price IS NULL ORDER BY popularity DESC, sku LIMIT 12")
    for sku, price in deals[::2]:
        tx.execute("UPDATE products SET member_price = ? WHERE sku = ?", (round(price * 0.85, 0), sku))
    skus = tx.rows("SELECT sku, price, popularity FROM products ORDER BY sku")
    weight = np.array([max(1, p) for _, _, p in skus], float)
    return {"sku": np.array([s for s, _, _ in skus], dtype=object), "price": np.array([p for _, p, _ in skus]),
            "p": weight / weight.sum()}


def _members_by_store(tx: Tx) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for member, store in tx.rows("SELECT id, home_store FROM members WHERE source = 'members' AND home_store IS NOT NULL "
                                 "AND merged_into IS NULL ORDER BY id"):
        out.setdefault(store, []).append(member)
    return out


def _store_profile(tx: Tx, rng: np.random.Generator, store: str, city: str | None, index: int,
                   arrivals_per_day: float) -> dict:
    """Attributes and assistants of one store; its size and service quality."""
    fmt = FORMATS[int(rng.choice(3, p=[0.6, 0.25, 0.15]))]
    size = float(np.exp(rng.normal(0, 0.35))) * {"mall": 1.0, "street": 0.8, "outlet": 1.3}[fmt]
    quality = float(np.clip(rng.normal(1.0, 0.15), 0.6, 1.4))
    tx.execute("UPDATE stores SET region = ?, city_tier = ?, format = ?, timezone = ? WHERE id = ?",
               (REGION.get(city or "", "华东"), TIER.get(city or "", "tier2"), fmt, TZ, store))
    n_staff = int(rng.integers(4, 9))
    staff = [f"{store}-a{k + 1}" for k in range(n_staff)]
    tx.execute("DELETE FROM assistants WHERE store = ?", (store,))
    tx.copy("assistants", ("id", "store", "name", "active"),
            [(a, store, SURNAMES[(index * 7 + k) % len(SURNAMES)] + GIVEN[(index + k * 5) % len(GIVEN)], 1)
             for k, a in enumerate(staff)])
    return {"size": size, "quality": quality, "staff": staff, "skill": np.clip(rng.normal(1.0, 0.2, n_staff), 0.5, 1.6),
            "arrivals": arrivals_per_day * size}


def _iso(seconds: np.ndarray) -> list[str]:
    """UTC ISO text with microseconds, as cloud.store.iso writes it."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]").astype("datetime64[us]"), unit="us")
    return [t + "+00:00" for t in text.tolist()]


def _store_days(tx: Tx, rng: np.random.Generator, store: str, profile: dict, first_day: date, days: int,
                catalogue: dict[str, np.ndarray], members: list[str], counts: dict, until_s: int | None) -> None:
    day0 = int(datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp()) - UTC_OFFSET_S
    weekday = np.array([(first_day + timedelta(days=d)).weekday() for d in range(days)])
    per_day = rng.poisson(profile["arrivals"] * np.where(weekday >= 5, 1.4, 1.0))
    n = int(per_day.sum())
    day = np.repeat(np.arange(days), per_day)
    hour = rng.choice(24, size=n, p=HOUR_SHARE)
    ts = day0 + day * 86400 + hour * 3600 + rng.integers(0, 3600, n)
    order = np.argsort(ts, kind="stable")
    if until_s is not None:
        order = order[ts[order] < until_s]
    ts, hour = ts[order], hour[order]
    n = len(ts)
    is_member = (rng.random(n) < 0.35) & (len(members) > 0)
    member = np.full(n, None, dtype=object)
    if members:
        member[is_member] = np.array(members, dtype=object)[rng.integers(0, len(members), int(is_member.sum()))]
    iso_ts = _iso(ts)
    ids = [f"hf{store}-{k}" for k in range(n)]
    tx.copy("arrivals", ("event_id", "brand", "store", "device", "camera", "ts", "received"),
            [(f"a{i}", profile["brand"], store, "edge-01", "door-1", t, t) for i, t in zip(ids, iso_ts)])
    tx.copy("visits", ("id", "brand", "store", "member_id", "confidence", "ts", "arrival_event_id", "device", "camera",
                       "card_id", "signals"),
            [(f"v{i}", profile["brand"], store, m, 0.82 if m else 0.0, t, f"a{i}", "edge-01", "door-1", f"c{i}", "face")
             for i, m, t in zip(ids, member.tolist(), iso_ts)])
    counts["arrivals"] += n

    # the floor: claim -> greet (delay) -> serve -> sell, by one assistant per arrival
    busy = HOUR_SHARE[hour] / HOUR_SHARE.max()
    staff = profile["staff"]
    who = rng.integers(0, len(staff), n)
    skill = profile["skill"][who] * profile["quality"]
    claimed = rng.random(n) < np.clip(0.75 * skill, 0, 0.97)
    greeted = claimed & (rng.random(n) < np.clip(0.85 * skill, 0, 0.98))
    delay = np.exp(rng.normal(np.log(40.0), 0.5, n)) * (1 + busy) / 2 / skill
    served = greeted & (rng.random(n) < 0.6)
    sold = served & (rng.random(n) < np.clip(0.33 * skill * np.where(is_member, 1.3, 1.0), 0, 0.9))
    amount = np.round(np.exp(rng.normal(np.log(380), 0.5, n)), 0)
    fb: list[tuple] = []
    for action, mask, after in (("claimed", claimed, 5.0), ("greeted", greeted, 5.0 + delay),
                                ("served", served, 60.0 + delay), ("sold", sold, 600.0 + delay)):
        chosen = np.flatnonzero(mask)
        when = _iso((ts[chosen] + np.broadcast_to(after, (n,))[chosen]).astype(np.int64))
        fb.extend((f"f{action[:2]}{ids[k]}", profile["brand"], store, "screen-1", f"c{ids[k]}", f"v{ids[k]}", member[k],
                   0.82 if member[k] else 0.0, action, staff[who[k]], float(amount[k]) if action == "sold" else None,
                   t, t) for k, t in zip(chosen.tolist(), when))
    tx.copy("feedback", ("feedback_id", "brand", "store", "screen", "card_id", "visit_id", "member_id", "confidence",
                         "action", "assistant", "amount", "ts", "received"), fb)
    counts["feedback"] += len(fb)
    _floor_orders(tx, rng, store, ids, member, ts, sold, amount, catalogue, counts)
    _new_members(tx, rng, store, ids, member, ts, counts)
    _footfall(tx, rng, profile["brand"], store, ts, counts)
    _stock(tx, rng, store, profile, first_day, days, catalogue, counts)
    _targets(tx, rng, store, first_day, days)


def _targets(tx: Tx, rng: np.random.Generator, store: str, first_day: date, days: int) -> None:
    """Monthly sales targets set from the store's own run rate, 5-15 % above or below it."""
    start = int(datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp()) - UTC_OFFSET_S
    sales = float(tx.scalar("SELECT COALESCE(SUM(paid), 0) FROM orders WHERE store = ? AND ts >= ? AND ts < ?",
                            (store, start, start + days * 86400)))
    months = sorted({(first_day + timedelta(days=d)).isoformat()[:7] for d in range(days)})
    tx.execute("DELETE FROM store_targets WHERE store = ?", (store,))
    tx.copy("store_targets", ("store", "month", "sales_target"),
            [(store, m, round(sales / days * 30 * float(rng.uniform(0.9, 1.15)), -2)) for m in months])


def _floor_orders(tx: Tx, rng: np.random.Generator, store: str, ids: list[str], member: np.ndarray, ts: np.ndarray,
                  sold: np.ndarray, amount: np.ndarray, catalogue: dict[str, np.ndarray], counts: dict) -> None:
    """Each sale on the floor is a POS order at the store: 1-3 lines whose amounts add up to it."""
    orders, lines = [], []
    for k in np.flatnonzero(sold).tolist():
        paid_at, oid = int(ts[k]) + 900, f"pos:h{ids[k]}"
        n_lines = 1 + int(rng.poisson(0.6))
        picks = rng.choice(len(catalogue["sku"]), size=n_lines, p=catalogue["p"])
        qty = 1 + (rng.random(n_lines) < 0.2).astype(int)
        share = rng.dirichlet(np.ones(n_lines)) * float(amount[k])
        orders.append((oid, "pos", oid[4:], store, member[k], paid_at, float(amount[k]), "paid"))
        for j in range(n_lines):
            sku = catalogue["sku"][picks[j]]
            lines.append((oid, member[k], "pos", store, paid_at, sku, "门店", int(qty[j]),
                          round(float(share[j]) / int(qty[j]), 2), round(float(share[j]), 2)))
    tx.copy("orders", ("id", "channel", "order_no", "store", "member_id", "ts", "paid", "status"), orders)
    purchases.add_lines(tx, lines)
    counts["floor_orders"] += len(orders)


def _new_members(tx: Tx, rng: np.random.Generator, store: str, ids: list[str], member: np.ndarray, ts: np.ndarray,
                 counts: dict) -> None:
    """About 4 % of visitors sign up at the counter: a member card with this home store."""
    joiners = [k for k in np.flatnonzero(rng.random(len(ids)) < 0.04).tolist() if member[k] is None]
    when = _iso(ts[joiners] + 1200) if joiners else []
    tx.copy("members", ("id", "source", "source_key", "name", "gender", "tier", "tags", "preferences", "face_consent",
                        "home_store", "created"),
            [(f"m{ids[k]}", "members", f"member_card:MC{ids[k]}", f"新会员{ids[k][-4:]}", "female", "普通会员", "[]",
              "[]", 0, store, t) for k, t in zip(joiners, when)])
    tx.copy("identifiers", ("member_id", "kind", "value", "blocked", "created"),
            [(f"m{ids[k]}", "member_card", f"MC{ids[k]}", None, t) for k, t in zip(joiners, when)])
    counts["new_members"] += len(joiners)


def _footfall(tx: Tx, rng: np.random.Generator, brand: str, store: str, ts: np.ndarray, counts: dict) -> None:
    """The Wi-Fi box's count, one row a minute as a box reports it (``protocol.wifi``): everyone the
    door camera saw plus some it missed (drawn per hour, spread over the hour's busy minutes)."""
    hours, per_hour = np.unique(ts // 3600, return_counts=True)
    started = per_hour + rng.poisson(0.25 * per_hour)
    minutes, per_minute = np.unique(ts // 60, return_counts=True)
    per_minute = per_minute.copy()
    first = np.searchsorted(minutes // 60, hours)
    last = np.searchsorted(minutes // 60, hours, side="right")
    for a, b, extra in zip(first.tolist(), last.tolist(), (started - per_hour).tolist()):
        per_minute[a:b] += np.diff(np.arange(b - a + 1) * extra // (b - a))  # evenly over the hour
    stamps = _iso(minutes * 60)
    tx.copy("footfall", ("brand", "store", "device", "minute", "people", "passing", "visits_started", "distinct_macs",
                         "background", "probes", "event_id", "received"),
            [(brand, store, "wifi-01", t, int(s * 0.4), int(s * 3), int(s), int(s * 1.1), 2, int(s * 5),
              f"ff{store}-{m}", t) for t, s, m in zip(stamps, per_minute.tolist(), minutes.tolist())])
    counts["footfall_rows"] += len(stamps)


def _stock(tx: Tx, rng: np.random.Generator, store: str, profile: dict, first_day: date, days: int,
           catalogue: dict[str, np.ndarray], counts: dict) -> None:
    """Daily stock per SKU of the store's assortment: weekly deliveries up to par, sales, write-offs."""
    picks = rng.choice(len(catalogue["sku"]), size=min(ASSORTMENT, len(catalogue["sku"])), replace=False)
    rate = rng.uniform(0.5, 4.0, len(picks)) * profile["size"]
    par = np.ceil(rate * 9 * rng.uniform(0.7, 1.3, len(picks))).astype(int)
    on_hand = par.copy()
    delivery_day = int(rng.integers(0, 7))
    rows = []
    for d in range(days):
        day = (first_day + timedelta(days=d)).isoformat()
        received = np.where(d % 7 == delivery_day, np.maximum(par - on_hand, 0), 0)
        available = on_hand + received
        sold = np.minimum(rng.poisson(rate), available)
        wasted = np.minimum(rng.binomial(available - sold, 0.01 / profile["quality"]), available - sold)
        loss = wasted * catalogue["price"][picks] * 0.6
        for j, p in enumerate(picks.tolist()):
            rows.append((store, day, catalogue["sku"][p], int(on_hand[j]), int(received[j]), int(sold[j]),
                         int(wasted[j]), round(float(loss[j]), 2)))
        on_hand = available - sold - wasted
    tx.copy("stock_days", ("store", "day", "sku", "opening", "received", "sold", "wasted", "markdown_loss"), rows)
    counts["stock_rows"] += len(rows)
