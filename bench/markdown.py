"""Perishables markdown vs fixed list prices on simulated demand.

Many products (random list price, floor, stock above what sells at list price, days to expiry,
elasticity), each played once with markdown and once at the fixed list price, with seeded
Poisson demand. The planner sees an estimated sales rate and elasticity; the simulated shoppers
follow true values that differ from the estimate by up to ±30%. Last stdout line is JSON:
``waste_ratio`` and ``revenue_ratio`` are markdown over fixed (waste below 1 is better, revenue
at or above 1 means the markdowns paid for themselves).

    uv run python bench/markdown.py [--products 500] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from cloud.pricing.markdown_planner import Perishable, plan
from cloud.synthetic.markdown_demand import simulate


def random_product(
    rng: np.random.Generator, index: int, changes_per_day: int, elasticity: tuple[float, float]
) -> Perishable:
    list_price = float(rng.choice([5.9, 9.9, 12.8, 19.8, 29.9, 49.0]))
    rate = float(rng.uniform(2, 30))
    days = int(rng.integers(2, 8))
    return Perishable(
        sku=f"P{index:05d}",
        list_price=list_price,
        floor_price=round(list_price * float(rng.uniform(0.4, 0.7)), 1),
        stock=int(rate * days * rng.uniform(1.0, 2.0)),  # over-ordered: some of it would be wasted
        sales_rate=rate,
        days_to_expiry=days,
        elasticity=float(rng.uniform(*elasticity)),
        max_changes_per_day=changes_per_day,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--changes-per-day", type=int, default=2)
    parser.add_argument("--elasticity", type=float, nargs=2, default=(1.5, 3.0), metavar=("LOW", "HIGH"),
                        help="range of price elasticities; below 1, cutting prices loses revenue per unit sold")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    totals = {"markdown": np.zeros(3), "fixed": np.zeros(3)}  # revenue, wasted, stock
    plan_ms, max_changes = [], 0
    for index in range(args.products):
        product = random_product(rng, index, args.changes_per_day, tuple(args.elasticity))
        truth = dict(true_rate=product.sales_rate * float(rng.uniform(0.7, 1.3)),
                     true_elasticity=product.elasticity * float(rng.uniform(0.7, 1.3)))
        started = time.perf_counter()
        policy = plan(product)
        plan_ms.append((time.perf_counter() - started) * 1000)
        seed = int(rng.integers(2**32))
        for name, chosen in (("markdown", policy), ("fixed", None)):
            outcome = simulate(product, chosen, np.random.default_rng(seed), **truth)
            totals[name] += (outcome.revenue, outcome.wasted, product.stock)
            if chosen is not None:
                max_changes = max(max_changes, *outcome.changes_per_day)

    md, fixed = totals["markdown"], totals["fixed"]
    result = {
        "products": args.products,
        "seed": args.seed,
        "changes_per_day_allowed": args.changes_per_day,
        "elasticity": list(args.elasticity),
        "max_changes_in_a_day": max_changes,
        "waste_fixed": round(fixed[1] / fixed[2], 4),
        "waste_markdown": round(md[1] / md[2], 4),
        "waste_ratio": round(md[1] / fixed[1], 4),
        "revenue_ratio": round(md[0] / fixed[0], 4),
        "plan_ms_p50": round(float(np.percentile(plan_ms, 50)), 2),
        "plan_ms_p95": round(float(np.percentile(plan_ms, 95)), 2),
    }
    print(f"markdown vs fixed over {args.products} products: waste {result['waste_fixed']:.1%} -> "
          f"{result['waste_markdown']:.1%} of stock, revenue x{result['revenue_ratio']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
