"""Plays a pricing policy against simulated shoppers, to judge markdown against simpler pricing.

A planner simulated with its own demand model confirms itself. So the shoppers here follow a
``Demand`` the planner does not know: their true rate may differ from its estimate, and their
response to a discount may have another shape than its constant elasticity (``linear``: the same
slope at list price but far less lift from deep discounts; ``from_20pct``: nobody notices less
than 20% off), their numbers may follow the day of the week (the planner sees the 7-day mean, as
``stock_days`` gives it) or a real product's sales period by period (``periods``), and each
day may carry a shock (gamma-Poisson: a rainy day, a competitor's offer) on top of the Poisson
noise the planner expects.

The baselines a store would otherwise use are pricing policies too: ``None`` keeps the list
price until expiry, ``LastDayDiscount`` is the common rule "30% off on the last day".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from cloud.pricing.markdown_planner import Perishable

Shape = Literal["constant_elasticity", "linear", "from_20pct"]
#: Shoppers by weekday (Monday first): a grocery week, quiet early, busy on Saturday; mean 1.
GROCERY_WEEK = (0.84, 0.86, 0.9, 0.95, 1.1, 1.3, 1.05)


class Pricing(Protocol):
    def price(self, period: int, current_price: float, stock: int) -> float: ...


@dataclass(frozen=True)
class LastDayDiscount:
    """List price until the last selling day, then ``off`` off (never under the floor)."""

    product: Perishable
    off: float = 0.3

    def price(self, period: int, current_price: float, stock: int) -> float:
        last_day = period // self.product.periods_per_day == self.product.days_to_expiry - 1
        if not last_day:
            return self.product.list_price
        return max(self.product.floor_price, math.ceil(self.product.list_price * (1 - self.off) * 10) / 10)


@dataclass(frozen=True)
class Demand:
    """How the simulated shoppers really buy: none of it is told to the planner."""

    rate: float  # units a day at list price, on an average day of the week
    elasticity: float  # constant_elasticity: the exponent; the others: the slope at list price
    shape: Shape = "constant_elasticity"
    week: tuple[float, ...] = (1.0,) * 7  # multipliers by weekday, Monday first
    first_weekday: int = 0  # the weekday of the first selling day
    day_shock: float | None = None  # gamma shape of a day's common shock (mean 1); None: plain Poisson
    #: multipliers by pricing period from the first, relative to the planner's rate per period (a real
    #: product's sales, ``cloud.synthetic.pos_demand``); when given, ``week`` is not used
    periods: tuple[float, ...] | None = None

    def lift(self, ratio: float) -> float:
        """Demand at ``ratio`` of the list price, relative to demand at list price."""
        if self.shape == "linear":
            return max(0.0, 1.0 + self.elasticity * (1.0 - ratio))
        if self.shape == "from_20pct" and ratio > 0.8 + 1e-9:
            return 1.0
        return ratio ** -self.elasticity


@dataclass(frozen=True)
class Outcome:
    revenue: float
    sold: int
    wasted: int
    prices: list[float]  # the price in force in each period
    changes_per_day: list[int]


def simulate(
    product: Perishable,
    policy: Pricing | None,
    rng: np.random.Generator,
    *,
    demand: Demand | None = None,
) -> Outcome:
    """One product's life from now to expiry; ``policy=None`` keeps the list price throughout;
    ``demand=None`` is the planner's own model (its rate and elasticity, plain Poisson).

    The random draws do not depend on the prices (one shock a day, one Poisson draw a period),
    so policies played with the same seed meet the same shoppers."""
    truth = demand or Demand(rate=product.sales_rate, elasticity=product.elasticity)
    per_day = product.periods_per_day
    stock, revenue, prices = product.stock, 0.0, []
    price = product.list_price
    shock = 1.0
    for period in range(product.days_to_expiry * per_day):
        day = period // per_day
        if period % per_day == 0 and truth.day_shock is not None:
            shock = float(rng.gamma(truth.day_shock, 1.0 / truth.day_shock))
        if policy is not None:
            price = policy.price(period, price, stock)
        prices.append(price)
        pattern = truth.periods[period] if truth.periods is not None else truth.week[(truth.first_weekday + day) % 7]
        mean = truth.rate / per_day * pattern * shock * truth.lift(price / product.list_price)
        sold = min(stock, int(rng.poisson(mean)))
        stock -= sold
        revenue += sold * price
    previous = [product.list_price, *prices[:-1]]
    changed = [a != b for a, b in zip(previous, prices)]
    changes = [sum(changed[d * per_day : (d + 1) * per_day]) for d in range(product.days_to_expiry)]
    return Outcome(revenue=revenue, sold=product.stock - stock, wasted=stock, prices=prices, changes_per_day=changes)
