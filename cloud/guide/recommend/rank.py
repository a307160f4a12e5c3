"""Rank recommendations for one person from the precomputed model and their purchase lines.

Pure and fast (no I/O): the sources, in the order the assistant should hear them, each capped so
one source cannot fill the card:

1. repurchase due: per category, the person's own cycle is the median gap between the days they
   bought in it; a category is due when the time since the last purchase is between 0.9 and 3
   cycles (beyond that the habit is gone, and "you usually buy every 35 days" would be untrue);
2. bought together: co-occurrence neighbours of the items in their last three orders;
3. new arrivals in their top categories and their price band;
4. best sellers in their categories, weighted by their spend share there;
5. the store's (else the brand's) best sellers.

Anything bought in the last 30 days is not offered again unless it is due. Every pick must be in
the store's catalogue (``RecoModel.available``).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cloud.cdp.tags import DAY
from cloud.guide.recommend.history import Line
from cloud.guide.recommend.model import Item, RecoModel
from cloud.guide.recommend.reasons import Kind, Lang, reason

DUE_FROM, DUE_UNTIL = 0.9, 3.0
RECENT_DAYS = 30
CAPS: dict[Kind, int] = {"repurchase": 2, "together": 2, "new": 1, "favourite": 20, "preferred": 20, "popular": 20}


@dataclass(frozen=True)
class Pick:
    sku: str
    name: str
    category: str
    price: float
    kind: Kind
    facts: dict[str, object] = field(default_factory=dict)

    def reason(self, lang: Lang = "zh") -> str:
        return reason(self.kind, self.facts, lang)


def recommend(model: RecoModel, lines: Sequence[Line], *, store: str | None, now: int, limit: int = 5,
              declared: Sequence[str] = ()) -> list[Pick]:
    """``declared`` are the categories the member told us they like: what a new member with no
    purchase history is recommended from, before the store's best sellers."""
    recent = {line.sku for line in lines if now - line.ts < RECENT_DAYS * DAY}
    chosen: dict[str, Pick] = {}
    sources: tuple[tuple[Kind, Iterable[tuple[Item, dict]]], ...] = (
        ("repurchase", _due(model, lines, now)),
        ("together", _together(model, lines)),
        ("new", _new(model, lines)),
        ("favourite", _favourites(model, lines)),
        ("preferred", _declared(model, declared)),
        ("popular", _popular(model, store)),
    )
    for kind, candidates in sources:
        taken = 0
        for item, facts in candidates:
            if len(chosen) >= limit or taken >= CAPS[kind]:
                break
            if item.sku in chosen or not model.available(store, item.sku) or (item.sku in recent and kind != "repurchase"):
                continue
            chosen[item.sku] = Pick(item.sku, item.name, item.category, item.price, kind, facts)
            taken += 1
    return list(chosen.values())


def _due(model: RecoModel, lines: Sequence[Line], now: int) -> Iterable[tuple[Item, dict]]:
    days: dict[str, set[int]] = defaultdict(set)
    last: dict[str, Line] = {}
    for line in lines:  # in time order
        days[line.category].add(line.ts // DAY)
        last[line.category] = line
    due: list[tuple[float, Line, float, float]] = []
    for category, bought in days.items():
        ordered = sorted(bought)
        if len(ordered) < 2:
            continue
        cycle = statistics.median(b - a for a, b in zip(ordered, ordered[1:]))
        since = (now - last[category].ts) / DAY
        if DUE_FROM * cycle <= since <= DUE_UNTIL * cycle:
            due.append((abs(since / cycle - 1), last[category], since, cycle))
    for _, line, since, cycle in sorted(due, key=lambda d: d[0]):
        item = model.items.get(line.sku)
        facts = {"days": int(since), "cycle": round(cycle), "bought": item.name if item else line.sku}
        for sku in ([line.sku] if item else []) + model.by_category.get(line.category, [])[:5]:
            yield model.items[sku], facts  # the same item first; a best seller of its category if it is gone


def _together(model: RecoModel, lines: Sequence[Line]) -> Iterable[tuple[Item, dict]]:
    orders = list(dict.fromkeys(line.order_id for line in reversed(lines)))[:3]
    anchors = [line.sku for line in reversed(lines) if line.order_id in orders]
    scores: dict[str, float] = {}
    anchor_of: dict[str, str] = {}
    for rank, sku in enumerate(dict.fromkeys(anchors)):
        for other, cosine in model.neighbours.get(sku, []):
            weight = cosine / (1 + rank)
            if weight > scores.get(other, 0.0):
                scores[other], anchor_of[other] = weight, sku
    for sku, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])):
        yield model.items[sku], {"anchor": model.items[anchor_of[sku]].name}


def _spend(lines: Sequence[Line]) -> dict[str, float]:
    """Amount spent per category, in the order the categories were first bought."""
    spend: dict[str, float] = defaultdict(float)
    for line in lines:
        spend[line.category] += line.price * line.qty
    return spend


def _most(spend: dict[str, float], n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` largest amounts, ties in first-bought order (as Counter.most_common)."""
    return sorted(spend.items(), key=lambda kv: -kv[1])[:n]


def _new(model: RecoModel, lines: Sequence[Line]) -> Iterable[tuple[Item, dict]]:
    units = sum(line.qty for line in lines)
    if not units:
        return
    band = model.band(sum(line.price * line.qty for line in lines) / units)
    for category, _ in _most(_spend(lines)):
        for sku in model.new_by_category.get(category, []):
            if model.band(model.items[sku].price) == band:
                yield model.items[sku], {"category": category}


def _favourites(model: RecoModel, lines: Sequence[Line]) -> Iterable[tuple[Item, dict]]:
    spend = _spend(lines)
    total = sum(spend.values()) or 1.0
    scored: list[tuple[float, str]] = []
    for category, amount in _most(spend):
        ranked = model.by_category.get(category, [])[:20]
        top = max((model.items[s].sales for s in ranked), default=0) or 1
        scored += [(amount / total * (model.items[s].sales + 1) / (top + 1), s) for s in ranked]
    for _, sku in sorted(scored, key=lambda x: (-x[0], x[1])):
        yield model.items[sku], {"category": model.items[sku].category}


def _declared(model: RecoModel, categories: Sequence[str]) -> Iterable[tuple[Item, dict]]:
    for category in categories:
        for sku in model.by_category.get(category, []):
            yield model.items[sku], {"category": category}


def _popular(model: RecoModel, store: str | None) -> Iterable[tuple[Item, dict]]:
    for sku in (model.by_store.get(store, []) if store else []) + model.best_sellers:
        yield model.items[sku], {}
