"""A synthetic brand for demos and benchmarks: stores, members, channel accounts, orders, visits.

Shaped like the brand material describes, not uniform noise: every person has a CRM member card;
some also buy on Tmall, in the WeChat mini program or on JD under accounts that share their
phone (sometimes masked, as Tmall exports it; a few with the placeholder ``00000000000``), so
OneID has real work to do. Orders follow each person's own repurchase cycle through a year with
seasonal peaks (Chinese New Year, 618, Double 11); a person's categories are skewed towards a
favourite. Everything is drawn with numpy from one seed and written with bulk copies, in chunks,
so a million persons and ten million order lines fit in memory and in minutes.

The generator writes records and identifiers, then OneID links them into persons as they land (the
benchmark asks for the records alone, ``resolve=False``, and times the rebuild itself).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from rich.console import Console
from rich.progress import Progress

from cloud.cdp import oneid, purchases, survivorship
from cloud.clock import zone
from cloud.db import Database
from cloud.synthetic.floor import TZ, generate_floor

BRAND = "lumiere"
CATEGORIES = ("护肤", "彩妆", "香水", "面膜", "防晒", "洁面", "精华", "身体护理", "男士护理", "美发",
              "口红", "眼部护理", "卸妆", "美甲", "个护工具", "母婴护理", "礼盒", "旅行装", "配饰", "香氛蜡烛")
CITIES = ("上海", "北京", "广州", "深圳", "杭州", "成都", "南京", "武汉", "西安", "重庆")
SKUS_PER_CATEGORY = 100
CHUNK = 50_000
_PEAKS = ((20, 10.0), (168, 6.0), (314, 12.0))  # day of year, width: CNY, 618, Double 11


def _season(days: int) -> np.ndarray:
    day = np.arange(days)
    weight = np.ones(days)
    for centre, width in _PEAKS:
        weight += 3.0 * np.exp(-0.5 * ((day - centre) / width) ** 2)
    return weight / weight.sum()


def generate(db: Database, *, persons: int, stores: int = 50, seed: int = 7, end: datetime | None = None,
             progress: bool = False, floor_days: int = 0, brand: str = BRAND,
             store_ids: Sequence[str] = (), resolve: bool = True, arrivals_per_day: float = 60.0
             ) -> dict[str, int | float]:
    """The brand; with ``floor_days``, also that many days of shop floor up to ``end`` (store
    attributes, assistants, targets, arrivals, guide-screen feedback, footfall, stock:
    ``cloud.synthetic.floor``) for the store health dashboards. ``store_ids`` name the first
    stores (the others are ``st-NNNN``), so a demo's own store can be one of them. The records are
    resolved into persons as they land (``resolve``; the benchmark turns it off to time OneID);
    ``arrivals_per_day`` is an average store's door count on a weekday (60: a quiet store)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    start = end - timedelta(days=365)
    t0 = int(start.timestamp())
    counts: dict[str, int | float] = {"persons": persons, "stores": stores, "records": 0, "identifiers": 0, "orders": 0, "lines": 0,
              "visits": 0}
    store_ids = [*store_ids[:stores], *(f"st-{i:04d}" for i in range(len(store_ids), stores))]
    sku_price = np.exp(rng.normal(np.log(180), 0.7, size=len(CATEGORIES) * SKUS_PER_CATEGORY)).round(0) + 9
    season = _season(365)
    bar = Progress(console=Console(stderr=True), transient=True, disable=not progress)
    with bar:
        task = bar.add_task(f"generating {persons} persons", total=persons)
        with db.transaction() as tx:
            tx.copy("stores", ("id", "brand", "name", "city", "created"),
                    [(s, brand, f"{CITIES[i % len(CITIES)]}{i:04d}店", CITIES[i % len(CITIES)], start.isoformat())
                     for i, s in enumerate(store_ids)])
        for first in range(0, persons, CHUNK):
            n = min(CHUNK, persons - first)
            with db.transaction() as tx:
                _chunk(tx, rng, first, n, store_ids, sku_price, season, t0, start, end, counts, brand)
            bar.update(task, advance=n)
    if resolve:
        resolution = oneid.rebuild(db, actor="generate")
        counts.update(linked=resolution.links, link_conflicts=resolution.rejected)
        with db.transaction() as tx:
            survivorship.store(tx)  # the surviving attributes segments read, for every person
    if floor_days:
        floor = generate_floor(db, days=floor_days, end_day=end.astimezone(zone(TZ)).date(), seed=seed, until=end,
                               arrivals_per_day=arrivals_per_day)
        counts.update({k: v for k, v in floor.items() if k != "seconds"})
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts


def _chunk(tx, rng: np.random.Generator, first: int, n: int, store_ids: list[str], sku_price: np.ndarray,
           season: np.ndarray, t0: int, start: datetime, end: datetime, counts: dict, brand: str) -> None:
    idx = np.arange(first, first + n)
    phones = (13_000_000_000 + idx * 7919 % 8_999_999_999 + 13).astype(np.int64)
    home = rng.integers(0, len(store_ids), n)
    joined = t0 - rng.integers(0, 3 * 365, n) * 86400
    gender = rng.choice(np.array(["female", "male"]), n, p=[0.8, 0.2])
    consent = rng.random(n) < 0.2
    has = {"tmall": rng.random(n) < 0.4, "wechat": rng.random(n) < 0.3, "jd": rng.random(n) < 0.1}
    masked = rng.random(n) < 0.3
    placeholder = rng.random(n) < 0.001
    created_iso: dict[int, str] = {}
    member_rows, ident_rows = [], []
    record_of: dict[str, np.ndarray] = {}
    for source in ("members", "tmall", "wechat", "jd"):
        chosen = np.ones(n, bool) if source == "members" else has[source]
        ids = np.array([f"{source[0]}{i:011d}" for i in idx], dtype=object)
        record_of[source] = np.where(chosen, ids, np.array(None, dtype=object))
        for j in np.flatnonzero(chosen):
            i, phone = int(idx[j]), str(phones[j])
            signed_up = int(joined[j]) + (0 if source == "members" else int(rng.integers(1, 300)) * 86400)
            created = created_iso.setdefault(signed_up, datetime.fromtimestamp(signed_up, UTC).isoformat())
            if source == "members":
                key, ids_ = f"member_card:MC{i:010d}", [("member_card", f"MC{i:010d}"), ("phone", phone)]
            elif source == "tmall":
                shown = "00000000000" if placeholder[j] else phone[:3] + "****" + phone[-4:] if masked[j] else phone
                key, ids_ = f"tmall_buyer:tb{i:x}", [("tmall_buyer", f"tb{i:x}"), ("phone", shown)]
            elif source == "wechat":
                key, ids_ = f"unionid:u{i:x}", [("unionid", f"u{i:x}"), ("openid", f"o{i:x}"), ("phone", phone)]
            else:
                key, ids_ = f"jd_pin:jd{i:x}", [("jd_pin", f"jd{i:x}"), ("phone", phone)]
            record = ids[j]
            member_rows.append((record, source, key, f"会员{i}" if source == "members" else None,
                                str(gender[j]) if source == "members" else None, "普通会员", "[]", "[]",
                                int(consent[j]) if source == "members" else 0,
                                store_ids[home[j]] if source == "members" else None, created))
            for kind, value in ids_:
                reason = None
                if kind == "phone" and ("*" in value or value == "00000000000"):
                    reason = "masked" if "*" in value else "placeholder"
                ident_rows.append((record, kind, value, reason, created))
    tx.copy("members", ("id", "source", "source_key", "name", "gender", "tier", "tags", "preferences",
                        "face_consent", "home_store", "created"), member_rows)
    tx.copy("identifiers", ("member_id", "kind", "value", "blocked", "created"), ident_rows)
    counts["records"] += len(member_rows)
    counts["identifiers"] += len(ident_rows)

    # orders: each person's own cycle and favourite category
    per_person = rng.poisson(4.0, n)
    total = int(per_person.sum())
    owner = np.repeat(np.arange(n), per_person)
    day = rng.choice(365, size=total, p=season)
    second = rng.integers(9 * 3600, 22 * 3600, total)
    ts = t0 + day.astype(np.int64) * 86400 + second
    channel_pick = rng.choice(4, size=total, p=[0.55, 0.2, 0.15, 0.1])
    channel_names = np.array(["pos", "tmall", "wechat", "jd"], dtype=object)
    sources = ("members", "tmall", "wechat", "jd")
    member_id = np.empty(total, dtype=object)
    channel = np.empty(total, dtype=object)
    for c, source in enumerate(sources):
        rec = record_of[source][owner]
        use = (channel_pick == c) & (rec != None)  # noqa: E711 - numpy object comparison
        member_id[use] = rec[use]
        channel[use] = channel_names[c]
    fallback = member_id == None  # noqa: E711
    member_id[fallback] = record_of["members"][owner[fallback]]
    channel[fallback] = "pos"
    store = np.where(channel == "pos", np.array(store_ids, dtype=object)[home[owner]], np.array(None, dtype=object))
    favourite = rng.integers(0, len(CATEGORIES), n)
    n_lines = 1 + rng.poisson(1.5, total)
    line_order = np.repeat(np.arange(total), n_lines)
    n_total_lines = len(line_order)
    fav_line = rng.random(n_total_lines) < 0.6
    category = np.where(fav_line, favourite[owner[line_order]], rng.integers(0, len(CATEGORIES), n_total_lines))
    sku = category * SKUS_PER_CATEGORY + rng.integers(0, SKUS_PER_CATEGORY, n_total_lines)
    qty = 1 + (rng.random(n_total_lines) < 0.15).astype(np.int64)
    amount = sku_price[sku] * qty
    paid = np.bincount(line_order, weights=amount, minlength=total).round(2)
    order_ids = np.array([f"{channel[k]}:g{first}-{k}" for k in range(total)], dtype=object)
    tx.copy("orders", ("id", "channel", "order_no", "store", "member_id", "ts", "paid", "status"),
            zip(order_ids.tolist(), channel.tolist(), (o.split(":", 1)[1] for o in order_ids), store.tolist(),
                member_id.tolist(), ts.tolist(), paid.tolist(), ["paid"] * total))
    cat_names = np.array(CATEGORIES, dtype=object)
    sku_names = np.array([f"SKU{s:05d}" for s in range(len(sku_price))], dtype=object)
    purchases.add_lines(tx, zip(order_ids[line_order].tolist(), member_id[line_order].tolist(), channel[line_order].tolist(),
                store[line_order].tolist(), ts[line_order].tolist(), sku_names[sku].tolist(),
                cat_names[category].tolist(), qty.tolist(), sku_price[sku].tolist(), amount.round(2).tolist()))
    counts["orders"] += total
    counts["lines"] += n_total_lines

    # visits of consenting members, recognised at their home store in the last 90 days
    visitors = np.flatnonzero(consent)
    per_visitor = rng.poisson(2.0, len(visitors))
    who = np.repeat(visitors, per_visitor)
    when = int(end.timestamp()) - rng.integers(0, 90 * 86400, len(who))
    arrival_rows, visit_rows = [], []
    for k, (person, t) in enumerate(zip(who.tolist(), when.tolist())):
        event = f"gen{first}x{k}"
        iso = datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")
        shop = store_ids[home[person]]
        arrival_rows.append((event, brand, shop, "edge-01", "door-1", iso, iso))
        visit_rows.append((f"v{event}", brand, shop, record_of["members"][person], 0.8, iso, event, "edge-01", "door-1",
                           f"c{event}"))
    tx.copy("arrivals", ("event_id", "brand", "store", "device", "camera", "ts", "received"), arrival_rows)
    tx.copy("visits", ("id", "brand", "store", "member_id", "confidence", "ts", "arrival_event_id", "device", "camera",
                       "card_id"), visit_rows)
    counts["visits"] += len(visit_rows)
