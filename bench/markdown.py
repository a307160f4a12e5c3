"""Perishables markdown judged on demand the planner does not know, against simpler pricing.

Many products (random list price, floor, stock above what sells at list price, days to expiry,
elasticity). The planner sees an estimated sales rate and elasticity; the simulated shoppers
(``cloud.synthetic.markdown_demand.Demand``) follow true values up to ±30% off that estimate and,
per scenario, a demand the planner's model does not contain:

- ``own_model``: the planner's constant elasticity and plain Poisson (only the estimates are off);
- ``linear``: the same slope at list price, but deep discounts lift demand far less;
- ``from_20pct``: shoppers ignore anything under 20% off;
- ``weekday``: a grocery week (Saturday 1.3x, Monday 0.84x) starting on a random weekday;
- ``noisy``: a gamma day shock with a coefficient of variation of 50%;
- ``all``: linear, weekday and noisy together.

Each product meets the same shoppers (same seed) under three policies: the planner's markdown,
fixed list prices, and the rule "30% off on the last day". Per scenario and policy: revenue and
waste (units binned, as a share of stock), and value = revenue − the planner's waste penalty (20%
of list per unit binned) as the one figure the planner optimises. Last stdout line is JSON.

    python bench/markdown.py [--products 300] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

from cloud.pricing.markdown_planner import ELASTICITY_DOUBT, MarkdownPolicy, Perishable, plan
from cloud.synthetic.markdown_demand import GROCERY_WEEK, Demand, LastDayDiscount, Pricing, simulate

Scenario = Callable[[Demand, np.random.Generator], Demand]

SCENARIOS: dict[str, Scenario] = {
    "own_model": lambda d, rng: d,
    "linear": lambda d, rng: Demand(d.rate, d.elasticity, shape="linear"),
    "from_20pct": lambda d, rng: Demand(d.rate, d.elasticity, shape="from_20pct"),
    "weekday": lambda d, rng: Demand(d.rate, d.elasticity, week=GROCERY_WEEK, first_weekday=int(rng.integers(7))),
    "noisy": lambda d, rng: Demand(d.rate, d.elasticity, day_shock=4.0),
    "all": lambda d, rng: Demand(d.rate, d.elasticity, shape="linear", week=GROCERY_WEEK,
                                 first_weekday=int(rng.integers(7)), day_shock=4.0),
}
POLICIES = ("planner", "fixed", "last_day_30")


def random_product(
    rng: np.random.Generator, index: int, changes_per_day: int, elasticity: tuple[float, float], doubt: float
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
        elasticity_doubt=doubt,
    )


def _pricing(name: str, product: Perishable, policy: MarkdownPolicy) -> Pricing | None:
    return {"planner": policy, "fixed": None, "last_day_30": LastDayDiscount(product)}[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--changes-per-day", type=int, default=2)
    parser.add_argument("--elasticity", type=float, nargs=2, default=(1.5, 3.0), metavar=("LOW", "HIGH"),
                        help="range of price elasticities; below 1, cutting prices loses revenue per unit sold")
    parser.add_argument("--elasticity-doubt", type=float, default=ELASTICITY_DOUBT,
                        help="the planner's Perishable.elasticity_doubt; 0: the constant-elasticity planner alone")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    # per scenario and policy: revenue, units binned, stock, waste penalty
    totals = {s: {p: np.zeros(4) for p in POLICIES} for s in SCENARIOS}
    plan_ms, max_changes = [], 0
    started_all = time.process_time()
    for index in range(args.products):
        product = random_product(rng, index, args.changes_per_day, tuple(args.elasticity), args.elasticity_doubt)
        truth = Demand(rate=product.sales_rate * float(rng.uniform(0.7, 1.3)),
                       elasticity=product.elasticity * float(rng.uniform(0.7, 1.3)))
        started = time.perf_counter()
        policy = plan(product)
        plan_ms.append((time.perf_counter() - started) * 1000)
        for scenario, make in SCENARIOS.items():
            demand = make(truth, rng)
            seed = int(rng.integers(2**32))
            for name in POLICIES:
                outcome = simulate(product, _pricing(name, product, policy), np.random.default_rng(seed), demand=demand)
                totals[scenario][name] += (outcome.revenue, outcome.wasted, product.stock,
                                           outcome.wasted * product.penalty)
                if name == "planner":
                    max_changes = max(max_changes, *outcome.changes_per_day)

    scenarios = {}
    for scenario, by_policy in totals.items():
        fixed = by_policy["fixed"]
        row: dict[str, dict[str, float]] = {}
        for name, (revenue, wasted, stock, penalty) in by_policy.items():
            row[name] = {"revenue_vs_fixed": round(revenue / fixed[0], 4), "waste_share": round(wasted / stock, 4),
                         "value_vs_fixed": round((revenue - penalty) / (fixed[0] - fixed[3]), 4)}
        row["planner_vs_rule"] = {
            "revenue": round(by_policy["planner"][0] / by_policy["last_day_30"][0], 4),
            "waste": round(by_policy["planner"][1] / max(1.0, by_policy["last_day_30"][1]), 4),
            "value": round((by_policy["planner"][0] - by_policy["planner"][3])
                           / (by_policy["last_day_30"][0] - by_policy["last_day_30"][3]), 4),
        }
        scenarios[scenario] = row
        planner, rule = row["planner"], row["last_day_30"]
        print(f"{scenario:>10}: waste fixed {row['fixed']['waste_share']:.1%}, rule {rule['waste_share']:.1%}, "
              f"planner {planner['waste_share']:.1%}; revenue vs fixed rule x{rule['revenue_vs_fixed']}, "
              f"planner x{planner['revenue_vs_fixed']}; planner value vs rule x{row['planner_vs_rule']['value']}")
    result = {
        "products": args.products,
        "seed": args.seed,
        "changes_per_day_allowed": args.changes_per_day,
        "elasticity": list(args.elasticity),
        "max_changes_in_a_day": max_changes,
        "scenarios": scenarios,
        "planner_value_beats_rule_in": sorted(s for s, r in scenarios.items() if r["planner_vs_rule"]["value"] > 1),
        "planner_value_beats_fixed_in": sorted(s for s, r in scenarios.items() if r["planner"]["value_vs_fixed"] > 1),
        "plan_ms_p50": round(float(np.percentile(plan_ms, 50)), 2),
        "plan_ms_p95": round(float(np.percentile(plan_ms, 95)), 2),
        "cpu_s": round(time.process_time() - started_all, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
