"""Offline evaluation of the recommender on the synthetic brand: hold back each person's last order.

    uv run python bench/recommend.py --members 20000

Generates the brand into a temporary SQLite file (plus the sample catalogue), links records with
OneID, then for every person with at least two orders hides their last order (by time), builds
the model without the hidden orders, recommends 5 items at the person's home store from the
history before the hidden order, and checks whether the hidden order contains one of them.

Measured at sku level (``hit_rate_at_5``: any sku of the hidden order among the 5) and at category
level (``category_hit_rate_at_5``), against a popularity baseline (the brand's 5 best sellers in
the window). The model itself is built once (other persons' later orders stay in the
co-occurrence and popularity counts: a small leak both methods share). ``p50_ms``/``p95_ms`` time
one person: the history read from the database plus ranking, i.e. the per-arrival cost with the
model already in memory. The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud.cdp import oneid
from cloud.db import Database
from cloud.guide.recommend.history import person_lines
from cloud.guide.recommend.model import build_model
from cloud.guide.recommend.rank import recommend
from cloud.runtime import open_cdp
from cloud.synthetic.brand import generate

END = datetime(2025, 1, 1, tzinfo=UTC)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def held_out(db: Database) -> dict[str, tuple[str, int, str | None]]:
    """Person -> (their last order, its time, their home store), for persons with two orders or more."""
    rows = db.rows(
        "SELECT COALESCE(m.merged_into, m.id), o.id, o.ts FROM orders o JOIN members m ON m.id = o.member_id "
        "WHERE o.status = 'paid' ORDER BY o.ts, o.id")
    orders: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for person, order_id, ts in rows:
        orders[person].append((order_id, ts))
    homes = dict(db.rows("SELECT id, home_store FROM members WHERE home_store IS NOT NULL"))
    return {p: (o[-1][0], o[-1][1], homes.get(p)) for p, o in orders.items() if len(o) >= 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N persons (0 = all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = open_cdp(Path(tmp) / "brand.db")
        log(f"generating {args.members} persons ...")
        generate(db, persons=args.members, stores=args.stores, seed=args.seed, end=END)
        oneid.rebuild(db, actor="bench")
        hidden = held_out(db)
        persons = sorted(hidden)[: args.limit or None]
        started = time.perf_counter()
        model = build_model(db, now=int(END.timestamp()) + 1,
                            exclude_orders={order for order, _, _ in hidden.values()})
        log(f"model: {len(model.items)} items, {len(model.neighbours)} with neighbours, "
            f"built in {time.perf_counter() - started:.2f} s; evaluating {len(persons)} persons")
        baseline = model.best_sellers[:5]
        hits = cat_hits = base_hits = base_cat_hits = 0
        kinds: dict[str, int] = defaultdict(int)
        times: list[float] = []
        for person in persons:
            order_id, ts, home = hidden[person]
            t0 = time.perf_counter()
            lines = person_lines(db, person)
            history = [line for line in lines if line.ts < ts and line.order_id != order_id]
            picks = recommend(model, history, store=home, now=ts, limit=5)
            times.append((time.perf_counter() - t0) * 1000)
            target = [line for line in lines if line.order_id == order_id]
            skus, cats = {line.sku for line in target}, {line.category for line in target}
            hits += bool(skus & {p.sku for p in picks})
            cat_hits += bool(cats & {p.category for p in picks})
            base_hits += bool(skus & set(baseline))
            base_cat_hits += bool(cats & {model.items[s].category for s in baseline})
            for pick in picks:
                kinds[pick.kind] += 1
        db.close()
    n = len(persons) or 1
    times.sort()
    result = {
        "members": args.members, "evaluated": len(persons), "level": "sku",
        "hit_rate_at_5": round(hits / n, 4), "popularity_hit_rate_at_5": round(base_hits / n, 4),
        "category_hit_rate_at_5": round(cat_hits / n, 4),
        "popularity_category_hit_rate_at_5": round(base_cat_hits / n, 4),
        "p50_ms": round(statistics.median(times), 3) if times else None,
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3) if times else None,
        "model_build_s": model.build_s, "picks_by_source": dict(kinds),
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
