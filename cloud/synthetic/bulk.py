"""The synthetic brand loaded with bulk copies: ONLY for the benchmarks at a million persons.

``bench/cdp_scale.py`` and ``bench/health_api.py`` need 1M persons and 10M order lines (and a year
of shop floor at 200 stores) in minutes, and ``cdp_scale`` times OneID's rebuild on records that
are not yet resolved. Through the importers a million persons take far longer (every batch
resolves OneID and refreshes tags as it lands; docs/PERFORMANCE.md), and could not leave the records
unresolved. So this loader writes the same drawing (``cloud.synthetic.brand.draw_chunk``, the same
floor) straight into the tables. Everything else -- ``instore cloud generate``, the demo, the
tests' seeds -- goes through the entry points (``cloud.synthetic.brand.generate``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np
from rich.console import Console
from rich.progress import Progress

from cloud.cdp import oneid, purchases, survivorship
from cloud.cdp.imports.canonical import order_id
from cloud.clock import zone
from cloud.db import Database
from cloud.masterdata.importer import write_day_targets
from cloud.synthetic.brand import (
    BRAND,
    CATEGORIES,
    CHANNEL_OF,
    CHUNK,
    CITIES,
    SKUS_PER_CATEGORY,
    SOURCES,
    _season,
    draw_chunk,
    draw_prices,
    first_midnight,
    name_stores,
    write_recognised_visits,
)
from cloud.synthetic.drawn import Chunk, account, card, sku_name
from cloud.synthetic.floor import TZ, draw_store_profiles, generate_floor


def load_for_benchmark(db: Database, *, persons: int, stores: int = 50, seed: int = 7, end: datetime | None = None,
                       progress: bool = False, floor_days: int = 0, brand: str = BRAND,
                       store_ids: Sequence[str] = (), resolve: bool = True, arrivals_per_day: float = 60.0
                       ) -> dict[str, object]:
    """The brand of ``cloud.synthetic.brand.generate`` in bulk; ``resolve=False`` leaves the records
    unlinked (the benchmark times the rebuild itself)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    start = end - timedelta(days=365)
    shops = name_stores(stores, store_ids)
    sku_price = draw_prices(rng)
    season = _season(365)
    profiles = draw_store_profiles(seed, [(s, CITIES[i % len(CITIES)]) for i, s in enumerate(shops)],
                                   arrivals_per_day) if floor_days else {}
    counts: dict[str, object] = {"persons": persons, "stores": stores, "records": 0, "identifiers": 0, "orders": 0,
                                 "lines": 0, "visits": 0}
    with db.transaction() as tx:
        tx.copy("stores", ("id", "brand", "name", "city", "region", "city_tier", "format", "timezone", "created"),
                [(s, brand, f"{CITIES[i % len(CITIES)]}{i:04d}店", CITIES[i % len(CITIES)],
                  *((profiles[s]["region"], profiles[s]["tier"], profiles[s]["format"]) if s in profiles
                    else (None,) * 3), TZ, start.isoformat()) for i, s in enumerate(shops)])
        tx.copy("assistants", ("id", "store", "name", "active"),
                [(a, s, name, 1) for s, p in profiles.items() for a, name in zip(p["staff"], p["names"])])
    sold = np.zeros(len(sku_price), np.int64)
    blocklist = oneid.Blocklist.load(db)
    bar = Progress(console=Console(stderr=True), transient=True, disable=not progress)
    with bar:
        task = bar.add_task(f"loading {persons} persons", total=persons)
        for first in range(0, persons, CHUNK):
            chunk = draw_chunk(rng, first, min(CHUNK, persons - first), len(shops), sku_price, season,
                               first_midnight(end), end)
            np.add.at(sold, chunk.sku, chunk.qty)
            with db.transaction() as tx:
                _write_chunk(tx, chunk, shops, brand, counts, blocklist)
            bar.update(task, advance=chunk.idx.size)
    _write_products(db, sku_price, sold)
    if resolve:
        resolution = oneid.rebuild(db, actor="generate")
        counts.update(linked=resolution.links, link_conflicts=resolution.rejected)
        with db.transaction() as tx:
            survivorship.store(tx)  # the surviving attributes segments read, for every person
    if floor_days:
        floor = generate_floor(db, Direct(db), days=floor_days, profiles=profiles, seed=seed,
                               end_day=end.astimezone(zone(TZ)).date(), until=end)
        counts.update({k: v for k, v in floor.items() if k != "seconds"})
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts


def _record(source: str, i: int) -> str:
    return f"{source[0]}{i:011d}"


def _write_chunk(tx, chunk: Chunk, shops: list[str], brand: str, counts: dict, blocklist: oneid.Blocklist) -> None:
    """The chunk's records and identifiers, each identifier flagged by the brand's own blocklist as an import
    flags it (a hand-written copy of two of its rules let 195k invalid phones link at 1M persons)."""
    member_rows, ident_rows = [], []
    for source in SOURCES:
        for j in np.flatnonzero(chunk.has[source]).tolist():
            i, phone = int(chunk.idx[j]), str(chunk.phones[j])
            created = datetime.fromtimestamp(int(chunk.signed_up[source][j]), UTC).isoformat()
            if source == "members":
                key, ids = f"member_card:{card(i)}", [("member_card", card(i)), ("phone", phone)]
            elif source == "tmall":
                key, ids = f"tmall_buyer:{account(source, i)}", [("tmall_buyer", account(source, i)),
                                                                   ("phone", chunk.tmall_phone(j))]
            elif source == "wechat":
                key, ids = f"unionid:{account(source, i)}", [("unionid", account(source, i)), ("openid", f"o{i:x}"),
                                                             ("phone", phone)]
            else:
                key, ids = f"jd_pin:{account(source, i)}", [("jd_pin", account(source, i)), ("phone", phone)]
            crm = source == "members"
            member_rows.append((_record(source, i), source, key, f"会员{i}" if crm else None,
                                str(chunk.gender[j]) if crm else None, "普通会员", "[]", "[]",
                                int(chunk.consent[j]) if crm else 0, shops[chunk.home[j]] if crm else None, created))
            ident_rows += [(_record(source, i), kind, value, blocklist.reason(kind, value), created) for kind, value in ids]
    tx.copy("members", ("id", "source", "source_key", "name", "gender", "tier", "tags", "preferences",
                        "face_consent", "home_store", "created"), member_rows)
    tx.copy("identifiers", ("member_id", "kind", "value", "blocked", "created"), ident_rows)
    counts["records"] += len(member_rows)
    counts["identifiers"] += len(ident_rows)

    source_of = {channel: source for source, channel in CHANNEL_OF.items()}
    idx = chunk.idx.tolist()
    member_id = [_record(source_of[c], idx[o]) for c, o in zip(chunk.channel.tolist(), chunk.owner.tolist())]
    store = [shops[chunk.home[o]] if c == "pos" else None for c, o in zip(chunk.channel.tolist(), chunk.owner.tolist())]
    order_nos = [chunk.order_no(k) for k in range(len(store))]
    order_ids = [order_id(c, no, s) for c, no, s in zip(chunk.channel.tolist(), order_nos, store)]
    tx.copy("orders", ("id", "channel", "order_no", "store", "member_id", "ts", "paid", "status"),
            zip(order_ids, chunk.channel.tolist(), order_nos, store, member_id,
                chunk.ts.tolist(), chunk.paid.tolist(), ["paid"] * len(order_ids)))
    lo = chunk.line_order.tolist()
    cat_names = np.array(CATEGORIES, dtype=object)
    purchases.add_lines(tx, zip((order_ids[k] for k in lo), (member_id[k] for k in lo), chunk.channel[chunk.line_order].tolist(),
                (store[k] for k in lo), chunk.ts[chunk.line_order].tolist(), (sku_name(s) for s in chunk.sku.tolist()),
                cat_names[chunk.category].tolist(), chunk.qty.tolist(), chunk.price.tolist(),
                (chunk.price * chunk.qty).round(2).tolist()))
    counts["orders"] += len(order_ids)
    counts["lines"] += len(lo)
    counts["visits"] += write_recognised_visits(tx, chunk, brand, shops,
                                                {int(p): _record("members", idx[p]) for p in chunk.visitor.tolist()})


def _write_products(db: Database, sku_price: np.ndarray, sold: np.ndarray) -> None:
    deals = set(np.argsort(-sold, kind="stable")[:12:2].tolist())
    with db.transaction() as tx:
        tx.copy("products", ("sku", "name", "category", "price", "popularity", "is_new", "member_price"),
                [(sku_name(s), f"{CATEGORIES[s // SKUS_PER_CATEGORY]}·{sku_name(s)[-3:]}", CATEGORIES[s // SKUS_PER_CATEGORY],
                  float(p), int(sold[s]), 0, round(p * 0.85) if s in deals else None)
                 for s, p in enumerate(sku_price.tolist())])


class Direct:
    """The floor's till orders, sign-ups, stock and targets straight into their tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @cached_property
    def _category(self) -> dict[str, str]:
        return dict(self._db.rows("SELECT sku, category FROM products"))

    @cached_property
    def _person(self) -> dict[str, str]:
        return dict(self._db.rows("SELECT source_key, COALESCE(merged_into, id) FROM members WHERE source = 'members'"))

    def orders(self, store: str, orders: list[dict]) -> None:
        category, person = self._category, self._person
        order_rows, line_rows = [], []
        for o in orders:
            oid, ts = order_id("pos", o["order_no"], store), int(datetime.fromisoformat(o["ts"]).timestamp())
            member = person.get(f"member_card:{o['member']['card']}") if "member" in o else None
            order_rows.append((oid, "pos", o["order_no"], store, member, ts, o["paid"], "paid"))
            line_rows += [(oid, member, "pos", store, ts, line["sku"], category.get(line["sku"], "未分类"), line["qty"],
                           line["price"], round(line["qty"] * line["price"], 2)) for line in o["lines"]]
        with self._db.transaction() as tx:
            tx.copy("orders", ("id", "channel", "order_no", "store", "member_id", "ts", "paid", "status"), order_rows)
            purchases.add_lines(tx, line_rows)

    def new_members(self, rows: list[dict]) -> None:
        with self._db.transaction() as tx:
            tx.copy("members", ("id", "source", "source_key", "name", "gender", "tier", "tags", "preferences",
                                "face_consent", "home_store", "created"),
                    [(f"m{j['card']}", "members", f"member_card:{j['card']}", j["name"], "female", "普通会员", "[]", "[]", 0,
                      j["store"], j["signed_up"]) for j in rows])
            tx.copy("identifiers", ("member_id", "kind", "value", "blocked", "created"),
                    [(f"m{j['card']}", "member_card", j["card"], None, j["signed_up"]) for j in rows])

    def stock(self, rows: list[tuple]) -> None:
        with self._db.transaction() as tx:
            tx.copy("stock_days", ("store", "day", "sku", "opening", "received", "sold", "wasted", "markdown_loss"), rows)

    def movements(self, rows: list[tuple[str, str, str, str, int, str]]) -> None:
        with self._db.transaction() as tx:
            tx.copy("stock_movements", ("store", "sku", "ts", "day", "kind", "qty", "ref"),
                    [(store, sku, datetime.fromisoformat(ts).astimezone(UTC).isoformat(), ts[:10], kind, qty, ref)
                     for store, sku, ts, kind, qty, ref in rows])

    def targets(self, rows: list[tuple[str, str, float]]) -> None:
        """As the targets import writes them (day targets and their months' sums), without a file."""
        with self._db.transaction() as tx:
            write_day_targets(tx, [{"store": store, "day": day, "sales": sales, "traffic": None, "conversion": None}
                                   for store, day, sales in rows], None)

    def finish(self) -> dict[str, object]:
        return {}
