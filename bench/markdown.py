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
- ``all``: linear, weekday and noisy together;
- ``pos_real``: a real till's sales (``cloud.synthetic.pos_demand``): each product follows one item
  of a restaurant's POS order-line export (2016-08) day by day and period by period from a random
  day on, scaled so that the seven days before it average the planner's sales rate, with a
  response shape drawn from the three above. Read at run time from ``--pos-detail`` (default:
  ``$INSTORE_MODELS/../exports/pos/meal_order_detail.csv``); skipped, and said so, without it.

Each product meets the same shoppers (same seed) under three policies: the planner's markdown,
fixed list prices, and the rule "30% off on the last day". Per scenario and policy: revenue and
waste (units binned, as a share of stock), and value = revenue − the planner's waste penalty (20%
of list per unit binned) as the one figure the planner optimises. The planner doubts its
elasticity by ``--elasticity-doubt`` (``Perishable.elasticity_doubt``; 0 is the planner that
trusts its constant-elasticity curve). Last stdout line is JSON.

    python bench/markdown.py [--products 300] [--seed 7] [--elasticity 0.5 1.2] [--pos-detail FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cloud.pricing.markdown_planner import ELASTICITY_DOUBT, MarkdownPolicy, Perishable, plan
from cloud.synthetic.markdown_demand import GROCERY_WEEK, Demand, LastDayDiscount, Pricing, Shape, simulate
from cloud.synthetic.pos_demand import ItemSales, item_sales

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
SHAPES: tuple[Shape, ...] = ("constant_elasticity", "linear", "from_20pct")
REPO = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("INSTORE_MODELS") or REPO.parent / "shared" / "data" / "models")


class RealSales:
    """The ``pos_real`` scenario: a product's shoppers buy like one real item on real days, with its
    own random stream so that adding it leaves the other scenarios' draws as they were."""

    def __init__(self, items: list[ItemSales], seed: int) -> None:
        self.items = items
        self.rng = np.random.default_rng([seed, 1])
        self._windows: dict[int, list[tuple[float, ...]]] = {}

    def demand(self, product: Perishable, truth: Demand) -> Demand:
        days = product.days_to_expiry
        if days not in self._windows:  # every (item, first day) with a week of history before it
            self._windows[days] = [p for item in self.items for start in range(len(item.units))
                                   if (p := item.pattern(start, days)) is not None]
        windows = self._windows[days]
        periods = windows[int(self.rng.integers(len(windows)))]
        shape = SHAPES[int(self.rng.integers(len(SHAPES)))]
        # the planner's rate is the item's last week: its error is the real one, no extra ±30%
        return Demand(product.sales_rate, truth.elasticity, shape=shape, periods=periods)


def real_sales(path: Path, periods_per_day: int, seed: int) -> RealSales | str:
    """The scenario, or why it is skipped."""
    if not path.is_file():
        return f"no POS line export at {path} (--pos-detail): pos_real skipped"
    items = item_sales(path, periods_per_day)
    if not items:
        return f"{path} has no item selling 3 units a day: pos_real skipped"
    return RealSales(items, seed)


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
    parser.add_argument("--pos-detail", type=Path, default=MODELS.parent / "exports" / "pos" / "meal_order_detail.csv",
                        help="a POS order-line export (meal_order_detail layout) for the pos_real scenario")
    args = parser.parse_args()

    real = real_sales(args.pos_detail, max(1, args.changes_per_day), args.seed)
    if isinstance(real, str):
        print(real, file=sys.stderr)

    rng = np.random.default_rng(args.seed)
    # per scenario and policy: revenue, units binned, stock, waste penalty
    names = [*SCENARIOS, *(["pos_real"] if isinstance(real, RealSales) else [])]
    totals = {s: {p: np.zeros(4) for p in POLICIES} for s in names}
    plan_ms, max_changes = [], 0
    started_all = time.process_time()
    for index in range(args.products):
        product = random_product(rng, index, args.changes_per_day, tuple(args.elasticity), args.elasticity_doubt)
        truth = Demand(rate=product.sales_rate * float(rng.uniform(0.7, 1.3)),
                       elasticity=product.elasticity * float(rng.uniform(0.7, 1.3)))
        started = time.perf_counter()
        policy = plan(product)
        plan_ms.append((time.perf_counter() - started) * 1000)
        demands = [(scenario, make(truth, rng), int(rng.integers(2**32))) for scenario, make in SCENARIOS.items()]
        if isinstance(real, RealSales):
            demands.append(("pos_real", real.demand(product, truth), int(real.rng.integers(2**32))))
        for scenario, demand, seed in demands:
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
        "elasticity_doubt": args.elasticity_doubt,
        "max_changes_in_a_day": max_changes,
        "pos_real": ({"items": len(real.items), "days": len(real.items[0].units)} if isinstance(real, RealSales)
                     else {"skipped": real}),
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
