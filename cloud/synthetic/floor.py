"""The synthetic brand's shop floor: store attributes, assistants, targets, and day by day the
arrivals, guide-screen feedback, Wi-Fi footfall, floor sales and stock the health model reads.

Shaped, not uniform: each store has a size and a service quality, each assistant a skill; arrivals
follow the hours of a Chinese mall day (lunch and evening peaks) and weekends are busier; about a
third of arrivals are recognised members of the store. An assistant claims a card, greets after a
lognormal delay (median ~40 s, slower in busy hours and weaker stores), serves, and sometimes sells;
a sale is a POS order at the store for the member (or a walk-in), so sales, conversion and the
assistants' league agree. Each assistant works a daily shift (``shift_of``: staggered starts over the
first 8 hours of the day, so the floor is covered from opening to closing), imported as master data
beside the staff file, and an arrival is taken by one of the assistants on shift at that hour. Each
assistant signs in on the guide screen (上岗) a few minutes before their shift and out (离岗) just after
it, through the statement the MQTT ingest stores a screen's ``StaffSign`` with (``cloud.arrivals.staff``). A few
visitors sign up as new members. Stock is a daily position per SKU of the store's assortment,
replenished weekly, with markdown write-offs; every other store's
stock system (the even-numbered ones) also exports the intraday movements behind it (the morning
receipt, each unit sold, the evening's write-offs), the others only the closing count.

All stores are on China time (Asia/Shanghai, UTC+8, no daylight saving): local hours are UTC+8.
Everything is drawn with numpy from one seed and written per store with bulk copies.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import numpy as np

from cloud.arrivals import staff as staff_signs
from cloud.clock import zone
from cloud.db import Database
from cloud.db.database import Tx
from protocol.messages import StaffSign

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
#: a sale is rung up at the till this long after the customer came in
PAY_DELAY_S = 900
#: local times of a store's stock movements: the delivery before opening, sales while open, write-offs at close
RECEIPT_AT = timedelta(hours=8)
SALES_FROM, SALES_TO = timedelta(hours=10), timedelta(hours=22)
#: the store's hours (``HOUR_SHARE``) and the longest shift in them
OPENS, CLOSES, SHIFT_HOURS = 10, 22, 7


def shift_of(k: int) -> tuple[int, int]:
    """The k-th assistant's shift (local start and end hours, every day): starts staggered by 3 hours over
    the first 8 of the day (10, 13, 16, 11, 14, 17, 12, 15), so a store of 4 or more has someone on the
    floor from opening to closing, and a late start is a shift of its own."""
    start = OPENS + (3 * k) % 8
    return start, min(start + SHIFT_HOURS, CLOSES)


def on_shift(staff: int, hour: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """For arrivals at these local hours, one of the ``staff`` assistants on shift then (``pick`` in [0, 1)
    chooses evenly among them; all of them where no one is)."""
    who = np.empty(len(hour), np.int64)
    for h in np.unique(hour).tolist():
        on = [k for k in range(staff) if shift_of(k)[0] <= h < shift_of(k)[1]] or list(range(staff))
        at = hour == h
        who[at] = np.array(on)[(pick[at] * len(on)).astype(np.int64)]
    return who


def draw_store_profiles(seed: int, stores: Sequence[tuple[str, str]], arrivals_per_day: float
                        ) -> dict[str, dict]:
    """Each store's attributes (region, city tier, format), size, service quality and staff with
    their skills, drawn before anything lands: the stores and staff files carry them."""
    rng = np.random.default_rng(seed + 103)
    profiles = {}
    for index, (store, city) in enumerate(stores):
        fmt = FORMATS[int(rng.choice(3, p=[0.6, 0.25, 0.15]))]
        size = float(np.exp(rng.normal(0, 0.35))) * {"mall": 1.0, "street": 0.8, "outlet": 1.3}[fmt]
        quality = float(np.clip(rng.normal(1.0, 0.15), 0.6, 1.4))
        n_staff = int(rng.integers(4, 9))
        staff = [f"{store}-a{k + 1}" for k in range(n_staff)]
        names = [SURNAMES[(index * 7 + k) % len(SURNAMES)] + GIVEN[(index + k * 5) % len(GIVEN)] for k in range(n_staff)]
        profiles[store] = {"index": index, "city": city, "region": REGION.get(city, "华东"), "tier": TIER.get(city, "tier2"),
                           "format": fmt, "size": size, "quality": quality, "staff": staff, "names": names,
                           "skill": np.clip(rng.normal(1.0, 0.2, n_staff), 0.5, 1.6), "arrivals": arrivals_per_day * size,
                           "movements": index % 2 == 0}
    return profiles


class FloorSink(Protocol):
    """Where the floor's brand-held data goes: the till's orders, sign-ups, stock and targets."""

    def orders(self, store: str, orders: list[dict]) -> None: ...
    def new_members(self, rows: list[dict]) -> None: ...
    def stock(self, rows: list[tuple]) -> None: ...
    def movements(self, rows: list[tuple[str, str, str, str, int, str]]) -> None: ...
    def targets(self, rows: list[tuple[str, str, float]]) -> None: ...
    def finish(self) -> dict[str, object]: ...


def generate_floor(db: Database, sink: FloorSink, *, days: int, profiles: dict[str, dict], end_day: date,
                   seed: int = 7, until: datetime | None = None) -> dict[str, object]:
    """Floor data for the ``days`` local days ending with ``end_day`` (inclusive) at the stores of
    ``profiles``; nothing at or after ``until`` (a demo generated at noon has this morning's
    arrivals, not this evening's). The door's arrivals, the guide screens' feedback and the Wi-Fi
    footfall are written as the ingest stores them; the rest goes to ``sink``."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed + 101)
    moves = np.random.default_rng(seed + 107)  # its own stream: the stores without movements draw as before
    first_day = end_day - timedelta(days=days - 1)
    counts: dict[str, object] = {"floor_days": days, "arrivals": 0, "feedback": 0, "floor_orders": 0,
                                 "new_members": 0, "stock_rows": 0, "footfall_rows": 0, "staff_signs": 0}
    catalogue = _catalogue(db)
    members = _members_by_store(db)
    brands = dict(db.rows("SELECT id, brand FROM stores"))
    for store, profile in profiles.items():
        with db.transaction() as tx:
            sale = _store_days(tx, rng, store, {**profile, "brand": brands[store]}, first_day, days,
                               members.get(store, []), counts, int(until.timestamp()) if until else None)
        orders = _floor_orders(rng, store, sale, catalogue)
        sink.orders(store, orders)
        counts["floor_orders"] += len(orders)  # type: ignore[operator]
        sink.new_members(_new_members(rng, store, sale, counts))
        stock = _stock(rng, store, profile, first_day, days, catalogue, counts)
        sink.stock(stock)
        if profile.get("movements"):
            sink.movements(_movements(moves, stock, until))
        sink.targets(_targets(db, rng, store, first_day, days))
    counts.update(sink.finish())
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts


def _catalogue(db: Database) -> dict[str, np.ndarray]:
    """The brand's catalogue as the floor sells it: each product weighted by how often it sold."""
    skus = db.rows("SELECT p.sku, p.price, COUNT(l.sku) FROM products p LEFT JOIN order_lines l ON l.sku = p.sku "
                   "GROUP BY p.sku, p.price ORDER BY p.sku")
    weight = np.array([1 + n for _, _, n in skus], float)
    return {"sku": np.array([s for s, _, _ in skus], dtype=object), "price": np.array([float(p) for _, p, _ in skus]),
            "p": weight / weight.sum()}


def _members_by_store(db: Database) -> dict[str, list[tuple[str, str]]]:
    """Each store's CRM members: (person, member card), the card as the till scans it."""
    out: dict[str, list[tuple[str, str]]] = {}
    for key, person, store in db.rows(
            "SELECT source_key, COALESCE(merged_into, id), home_store FROM members WHERE source = 'members' "
            "AND home_store IS NOT NULL AND source_key LIKE 'member_card:%' ORDER BY id"):
        out.setdefault(store, []).append((person, key.split(":", 1)[1]))
    return out


def _iso(seconds: np.ndarray) -> list[str]:
    """UTC ISO text with microseconds, as cloud.store.iso writes it."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]").astype("datetime64[us]"), unit="us")
    return [t + "+00:00" for t in text.tolist()]


@dataclass
class Sales:
    """One store's arrivals as drawn, with the sales the floor made of them."""

    ids: list[str]
    person: np.ndarray  # the recognised member's person id, None for a visitor
    card: np.ndarray  # their member card, as the till scans it
    ts: np.ndarray
    sold: np.ndarray
    amount: np.ndarray
    receipt: np.ndarray  # the till's receipt number of each sale, digits as typed on the 成交 keypad


def _store_days(tx: Tx, rng: np.random.Generator, store: str, profile: dict, first_day: date, days: int,
                members: list[tuple[str, str]], counts: dict, until_s: int | None) -> Sales:
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
    card = np.full(n, None, dtype=object)
    if members:
        chosen = rng.integers(0, len(members), int(is_member.sum()))
        member[is_member] = np.array([p for p, _ in members], dtype=object)[chosen]
        card[is_member] = np.array([c for _, c in members], dtype=object)[chosen]
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
    who = on_shift(len(staff), hour, rng.random(n))
    skill = profile["skill"][who] * profile["quality"]
    claimed = rng.random(n) < np.clip(0.75 * skill, 0, 0.97)
    greeted = claimed & (rng.random(n) < np.clip(0.85 * skill, 0, 0.98))
    delay = np.exp(rng.normal(np.log(40.0), 0.5, n)) * (1 + busy) / 2 / skill
    served = greeted & (rng.random(n) < 0.6)
    sold = served & (rng.random(n) < np.clip(0.33 * skill * np.where(is_member, 1.3, 1.0), 0, 0.9))
    amount = np.round(np.exp(rng.normal(np.log(380), 0.5, n)), 0)
    receipt = np.array([f"{profile['index'] + 1:04d}{k:07d}" for k in range(n)], dtype=object)
    typed = sold & (rng.random(n) < 0.6)  # the assistant typed the receipt number on 成交 (else the visit credits them)
    fb: list[tuple] = []
    for action, mask, after in (("claimed", claimed, 5.0), ("greeted", greeted, 5.0 + delay),
                                ("served", served, 60.0 + delay), ("sold", sold, 600.0 + delay)):
        chosen = np.flatnonzero(mask)
        when = _iso((ts[chosen] + np.broadcast_to(after, (n,))[chosen]).astype(np.int64))
        fb.extend((f"f{action[:2]}{ids[k]}", profile["brand"], store, "screen-1", f"c{ids[k]}", f"v{ids[k]}", member[k],
                   0.82 if member[k] else 0.0, action, staff[who[k]], float(amount[k]) if action == "sold" else None,
                   receipt[k] if action == "sold" and typed[k] else None, t, t)
                  for k, t in zip(chosen.tolist(), when))
    tx.copy("feedback", ("feedback_id", "brand", "store", "screen", "card_id", "visit_id", "member_id", "confidence",
                         "action", "assistant", "amount", "receipt", "ts", "received"), fb)
    counts["feedback"] += len(fb)
    _footfall(tx, rng, profile["brand"], store, ts, counts)
    _sign_ins(tx, profile["brand"], store, staff, day0, days, until_s, counts)
    return Sales(ids, member, card, ts, sold, amount, receipt)


def _sign_ins(tx: Tx, brand: str, store: str, staff: list[str], day0: int, days: int, until_s: int | None,
              counts: dict) -> None:
    """Each assistant's 上岗 0-10 minutes before their shift's start and 离岗 2 minutes after its end, every
    floor day, on the store's screen, as the ingest stores them (none at or after ``until_s``). The minutes
    early are fixed per assistant and day, not drawn: the floor's random streams stay as they were."""
    signs: list[StaffSign] = []
    for d in range(days):
        for k, assistant in enumerate(staff):
            start, end = shift_of(k)
            at = {"sign_in": day0 + d * 86400 + start * 3600 - 60 * ((7 * k + 3 * d) % 11),
                  "sign_out": day0 + d * 86400 + end * 3600 + 120}
            signs.extend(StaffSign(sign_id=f"sg{store}-{d}-{k}-{action}", brand=brand, store=store, screen="screen-1",
                                   assistant=assistant, action=action, ts=datetime.fromtimestamp(seconds, UTC))
                         for action, seconds in at.items() if until_s is None or seconds < until_s)
    counts["staff_signs"] += staff_signs.record_all(tx, signs)


def _targets(db: Database, rng: np.random.Generator, store: str, first_day: date, days: int
             ) -> list[tuple[str, str, float]]:
    """Daily sales targets for every day of the months the floor touches, set from the store's own
    run rate (what landed in the window), 5-15 % above or below it, one factor per month."""
    start = int(datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp()) - UTC_OFFSET_S
    sales = float(db.scalar("SELECT COALESCE(SUM(paid), 0) FROM orders WHERE store = ? AND ts >= ? AND ts < ?",
                            (store, start, start + days * 86400)))
    last = first_day + timedelta(days=days - 1)
    rows = []
    day, factor = first_day.replace(day=1), 1.0
    while day <= last or day.day != 1:
        if day.day == 1:
            factor = float(rng.uniform(0.9, 1.15))
        rows.append((store, day.isoformat(), round(sales / days * factor, 0)))
        day += timedelta(days=1)
    return rows


def _floor_orders(rng: np.random.Generator, store: str, sale: Sales, catalogue: dict[str, np.ndarray]) -> list[dict]:
    """Each sale on the floor is the till's order (``protocol.till.TillOrder``'s fields, as posted
    to ``/v1/orders``): 1-3 lines whose amounts add up to it, the member's card if they showed it."""
    orders = []
    for k in np.flatnonzero(sale.sold).tolist():
        n_lines = 1 + int(rng.poisson(0.6))
        picks = rng.choice(len(catalogue["sku"]), size=n_lines, p=catalogue["p"])
        qty = 1 + (rng.random(n_lines) < 0.2).astype(int)
        share = rng.dirichlet(np.ones(n_lines)) * float(sale.amount[k])
        lines = [{"sku": str(catalogue["sku"][picks[j]]), "qty": int(qty[j]),
                  "price": round(float(share[j]) / int(qty[j]), 2)} for j in range(n_lines)]
        paid_at = datetime.fromtimestamp(int(sale.ts[k]) + PAY_DELAY_S, zone(TZ)).isoformat()
        orders.append({"order_no": str(sale.receipt[k]), "store": store, "ts": paid_at,
                       "paid": round(float(share.sum()), 2), "lines": lines,
                       **({"member": {"card": sale.card[k]}} if sale.card[k] else {})})
    return orders


def _new_members(rng: np.random.Generator, store: str, sale: Sales, counts: dict) -> list[dict]:
    """About 4 % of visitors sign up at the counter: a member card with this home store."""
    joiners = [k for k in np.flatnonzero(rng.random(len(sale.ids)) < 0.04).tolist() if sale.person[k] is None]
    when = _iso(sale.ts[joiners] + 1200) if joiners else []
    counts["new_members"] += len(joiners)
    return [{"card": f"MC{sale.ids[k]}", "name": f"新会员{sale.ids[k][-4:]}", "store": store, "signed_up": t}
            for k, t in zip(joiners, when)]


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


def _stock(rng: np.random.Generator, store: str, profile: dict, first_day: date, days: int,
           catalogue: dict[str, np.ndarray], counts: dict) -> list[tuple]:
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
    counts["stock_rows"] += len(rows)
    return rows


def _movements(rng: np.random.Generator, stock: list[tuple], until: datetime | None
               ) -> list[tuple[str, str, str, str, int, str]]:
    """The movements behind the daily rows of ``_stock`` as the stock system exports them (store, SKU,
    local time, kind, units, movement number): the day's receipt at ``RECEIPT_AT``, each unit sold at a
    random second of opening hours, the write-offs at closing; none at or after ``until``."""
    rows = []
    tz = zone(TZ)
    for store, day, sku, _opening, received, sold, wasted, _loss in stock:
        start = datetime.fromisoformat(day).replace(tzinfo=tz)
        ref = f"{store}-{day}-{sku}"
        moved = [(start + RECEIPT_AT, "receipt", received, f"r-{ref}")] if received else []
        seconds = np.sort(rng.integers(SALES_FROM.seconds, SALES_TO.seconds, sold)).tolist()
        moved += [(start + timedelta(seconds=s), "sale", 1, f"s-{ref}-{k}") for k, s in enumerate(seconds)]
        moved += [(start + SALES_TO, "waste", wasted, f"w-{ref}")] if wasted else []
        rows += [(store, sku, t.isoformat(), kind, int(qty), number) for t, kind, qty, number in moved
                 if until is None or t < until]
    return rows
