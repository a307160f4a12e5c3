"""The person-independent part of recommending, precomputed in one batch.

What it holds: the catalogue (the ``products`` table, plus every sku sold in the window, named by
its sku when the catalogue does not know it), sales counts per sku, per category and per store,
item-to-item co-occurrence within orders, new arrivals per category, and each store's assortment.

Stock: "on this store's shelf" is the store's catalogue (the brand catalogue, ``products``, plus
every sku the store itself sold within the window) minus what the store's latest stock position
(``stock_days``, imported master data, issue 16) says is out: closing = opening + received - sold -
wasted <= 0 on the store's latest day. A store without stock data is not filtered. The positions
are read when the model is built (``service``'s periodic rebuild), so a stock-out shows within one
rebuild. ``RecoModel.available`` is the one place that decides.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError

from cloud.cdp.lifecycle import windows
from cloud.cdp.tags import DAY
from cloud.db import Database
from protocol.messages import Id

_SKU = TypeAdapter(Id)


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    category: str
    price: float
    is_new: bool
    sales: int  # orders containing it within the window
    rating: int  # the catalogue's popularity, a tie-breaker for items that never sold


@dataclass
class RecoModel:
    built_at: int  # epoch seconds the window ends at
    window_days: int
    price_bands: tuple[float, float]
    items: dict[str, Item] = field(default_factory=dict)
    by_category: dict[str, list[str]] = field(default_factory=dict)  # best sellers first
    by_store: dict[str, list[str]] = field(default_factory=dict)  # the store's best sellers first
    best_sellers: list[str] = field(default_factory=list)
    new_by_category: dict[str, list[str]] = field(default_factory=dict)
    neighbours: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # sku -> (sku, cosine)
    listed: frozenset[str] = frozenset()  # the brand catalogue: on every store's shelf
    sold_at: dict[str, frozenset[str]] = field(default_factory=dict)
    out_of_stock: dict[str, frozenset[str]] = field(default_factory=dict)  # store -> skus at 0 on its latest day
    build_s: float = 0.0

    def available(self, store: str | None, sku: str) -> bool:
        """In the store's catalogue and not out of stock there (module note); ``None`` means any store."""
        if store is None:
            return True
        return (sku in self.listed or sku in self.sold_at.get(store, ())) and sku not in self.out_of_stock.get(store, ())

    def band(self, unit_price: float) -> str:
        low, high = self.price_bands
        return "low" if unit_price < low else "mid" if unit_price < high else "high"


def _valid_sku(sku: str) -> bool:
    try:
        _SKU.validate_python(sku)
    except ValidationError:
        return False
    return True


def build_model(db: Database, *, now: int | None = None, window_days: int = 180, neighbours: int = 10,
                min_support: int = 2, exclude_orders: Collection[str] = ()) -> RecoModel:
    """Read the window's lines once and precompute; ``exclude_orders`` keeps held-out orders out (offline tests)."""
    started = time.perf_counter()
    until = int(now if now is not None else time.time())
    since = until - window_days * DAY
    low, high = windows(db).price_bands[:2]
    model = RecoModel(built_at=until, window_days=window_days, price_bands=(low, high))
    products = db.rows("SELECT sku, name, category, price, popularity, is_new FROM products")
    lines = db.rows("SELECT order_id, sku, category, store, price FROM order_lines "
                    "WHERE ts >= ? AND ts < ? AND qty > 0 AND amount > 0", (since, until))
    excluded = set(exclude_orders)
    baskets: dict[str, set[str]] = defaultdict(set)
    store_sales: dict[str, Counter] = defaultdict(Counter)
    seen: dict[str, tuple[str, float]] = {}
    invalid: set[str] = set()
    for order_id, sku, category, store, price in lines:
        if order_id in excluded or sku in invalid:
            continue
        if sku not in seen:
            if not _valid_sku(sku):  # the card's sku field is a protocol Id: such a sku cannot be shown
                invalid.add(sku)
                continue
            seen[sku] = (category, price)
        if sku not in baskets[order_id]:
            baskets[order_id].add(sku)
            if store:
                store_sales[store][sku] += 1
    sales: Counter = Counter(sku for basket in baskets.values() for sku in basket)
    items = {sku: Item(sku, sku, category, float(price), False, sales[sku], 0) for sku, (category, price) in seen.items()}
    for sku, name, category, price, rating, is_new in products:
        if _valid_sku(sku):
            items[sku] = Item(sku, name[:200], category, float(price), bool(is_new), sales[sku], int(rating))
    model.items = items
    model.listed = frozenset(sku for sku, *_ in products if sku in items)

    def rank(skus: Collection[str]) -> list[str]:
        return sorted(skus, key=lambda s: (-items[s].sales, -items[s].rating, s))

    per_category: dict[str, list[str]] = defaultdict(list)
    for sku, item in items.items():
        per_category[item.category].append(sku)
    model.by_category = {c: rank(skus) for c, skus in per_category.items()}
    model.new_by_category = {c: [s for s in skus if items[s].is_new] for c, skus in model.by_category.items()}
    model.new_by_category = {c: skus for c, skus in model.new_by_category.items() if skus}
    model.best_sellers = rank(items)[:200]
    model.by_store = {store: [s for s, _ in counts.most_common(200)] for store, counts in store_sales.items()}
    model.sold_at = {store: frozenset(counts) for store, counts in store_sales.items()}
    model.neighbours = _co_occurrence(baskets.values(), sales, neighbours, min_support)
    out: dict[str, set[str]] = defaultdict(set)
    for store, sku in db.rows(
        "SELECT s.store, s.sku FROM stock_days s WHERE s.day = (SELECT MAX(t.day) FROM stock_days t "
        "WHERE t.store = s.store) AND s.opening + s.received - s.sold - s.wasted <= 0"):
        out[store].add(sku)
    model.out_of_stock = {store: frozenset(skus) for store, skus in out.items()}
    model.build_s = round(time.perf_counter() - started, 3)
    return model


def _co_occurrence(baskets: Collection[set[str]], sales: Counter, keep: int, min_support: int) -> dict[str, list[tuple[str, float]]]:
    """Orders containing both a and b over sqrt(orders with a x orders with b), the top ``keep`` per sku."""
    pairs: Counter = Counter()
    for basket in baskets:
        if 1 < len(basket) <= 50:  # a 500-line wholesale order says nothing about taste
            ordered = sorted(basket)
            pairs.update((a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:])
    scored: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (a, b), together in pairs.items():
        if together >= min_support:
            cosine = together / math.sqrt(sales[a] * sales[b])
            scored[a].append((b, cosine))
            scored[b].append((a, cosine))
    return {sku: sorted(found, key=lambda x: (-x[1], x[0]))[:keep] for sku, found in scored.items()}
