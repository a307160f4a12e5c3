"""Plays a pricing policy against simulated shoppers, to compare markdown with fixed prices.

The true demand may differ from what the planner assumed (``true_rate``, ``true_elasticity``):
a planner is only as good as its estimate of how fast a product sells, and the benchmark should
show what happens when that estimate is off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cloud.pricing.markdown_planner import MarkdownPolicy, Perishable


@dataclass(frozen=True)
class Outcome:
    revenue: float
    sold: int
    wasted: int
    prices: list[float]  # the price in force in each period
    changes_per_day: list[int]


def simulate(
    product: Perishable,
    policy: MarkdownPolicy | None,
    rng: np.random.Generator,
    *,
    true_rate: float | None = None,
    true_elasticity: float | None = None,
) -> Outcome:
    """One product's life from now to expiry; ``policy=None`` keeps the list price throughout."""
    rate = product.sales_rate if true_rate is None else true_rate
    elasticity = product.elasticity if true_elasticity is None else true_elasticity
    per_day = product.periods_per_day
    stock, revenue, prices = product.stock, 0.0, []
    price = product.list_price
    for period in range(product.days_to_expiry * per_day):
        if policy is not None:
            price = policy.price(period, price, stock)
        prices.append(price)
        demand = rng.poisson(rate / per_day * (price / product.list_price) ** -elasticity)
        sold = min(stock, int(demand))
        stock -= sold
        revenue += sold * price
    previous = [product.list_price, *prices[:-1]]
    changed = [a != b for a, b in zip(previous, prices)]
    changes = [sum(changed[d * per_day : (d + 1) * per_day]) for d in range(product.days_to_expiry)]
    return Outcome(revenue=revenue, sold=product.stock - stock, wasted=stock, prices=prices, changes_per_day=changes)
