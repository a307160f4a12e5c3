"""Markdown pricing for perishables: cut what goes in the bin without giving the margin away.

Model: in each pricing period demand is Poisson with mean ``sales_rate / periods_per_day ×
(price / list_price) ^ -elasticity`` (a constant-elasticity demand curve around the observed
sales rate). Prices come from a ladder (list price down in steps of ``step`` × list, never below
the floor) and only go down; the day is split into as many pricing periods as the store allows
price changes per day, so that limit holds by construction.

A finite-horizon dynamic programme over (period, stock, current price) maximises expected
revenue minus a penalty per unit still on the shelf at expiry. The result is a policy, not a
fixed list: each period the price is looked up from the stock actually left, so a day of
unexpectedly good sales stops the markdown and a slow day deepens it. Solving takes
``periods × prices`` matrix-vector products of size ``stock + 1``: milliseconds per product.

The elasticity is an estimate and the curve's shape a guess: a planner that trusts both
discounts deeper than shoppers who respond less reward, and then earns less than "30% off on
the last day" (``docs/PERFORMANCE.md``, issue 16). So ``plan`` solves for several curves between
the believed one and the least lift the doubt allows (``Perishable.least``) and keeps the
policy with the least worst-case regret over the two (``plan``'s docstring): five solves and
ten policy evaluations, tens of milliseconds per product.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocol.messages import Id

#: Default ``Perishable.elasticity_doubt``: the true elasticity may be as little as half the estimate.
ELASTICITY_DOUBT = 0.5


class Perishable(BaseModel):
    """What the planner needs to know about one product in one store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Id
    list_price: float = Field(gt=0)
    floor_price: float = Field(gt=0, description="never sold below this (cost, or brand rule)")
    stock: int = Field(ge=0, le=5000)
    sales_rate: float = Field(gt=0, description="units per day at list price, from recent sales")
    days_to_expiry: int = Field(ge=1, le=60, description="selling days left, today included")
    elasticity: float = Field(default=2.0, ge=0, le=10, description="% demand change per % price change")
    max_changes_per_day: int = Field(default=2, ge=0, le=12)
    step: float = Field(default=0.1, gt=0, lt=1, description="markdown step as a fraction of list price")
    waste_penalty: float | None = Field(
        default=None, ge=0, description="cost per unit thrown away (disposal, brand); default 20% of list price"
    )
    elasticity_doubt: float = Field(
        default=ELASTICITY_DOUBT, ge=0, lt=1,
        description="how far below the estimate the true elasticity may be, as a share of it (0: trust the "
                    "constant-elasticity curve as it is)",
    )

    @model_validator(mode="after")
    def _floor_below_list(self) -> Perishable:
        if self.floor_price > self.list_price:
            raise ValueError(f"floor_price {self.floor_price} is above list_price {self.list_price}")
        return self

    @property
    def periods_per_day(self) -> int:
        return max(1, self.max_changes_per_day)

    @property
    def penalty(self) -> float:
        return 0.2 * self.list_price if self.waste_penalty is None else self.waste_penalty

    def believed(self, ratio: float) -> float:
        """Demand at ``ratio`` of the list price relative to list price: the constant-elasticity curve."""
        return ratio**-self.elasticity

    def least(self, ratio: float) -> float:
        """The least lift a discount may bring: the tangent at list price of the least elasticity
        believed, ``elasticity × (1 − elasticity_doubt)``. Every convex demand curve lies above its
        tangent, so no curve of that slope or more promises less (the planner's worst case)."""
        return max(0.0, 1.0 + self.elasticity * (1.0 - self.elasticity_doubt) * (1.0 - ratio))


def price_ladder(product: Perishable) -> list[float]:
    """List price, then each step down rounded up to the jiao (0.1 yuan), then the floor itself."""
    ladder = [product.list_price]
    k = 1
    while True:
        price = math.ceil(round(product.list_price * (1 - k * product.step) * 10, 6)) / 10
        if price <= product.floor_price:
            break
        if price < ladder[-1]:
            ladder.append(price)
        k += 1
    if product.floor_price < ladder[-1]:
        ladder.append(product.floor_price)
    return ladder


Lift = Callable[[float], float]


def demand_per_period(product: Perishable, price: float, lift: Lift | None = None) -> float:
    """Expected sales in one pricing period at ``price`` under ``lift`` (default: the believed curve)."""
    return product.sales_rate / product.periods_per_day * (lift or product.believed)(price / product.list_price)


def poisson_pmf(mean: float, n: int) -> np.ndarray:
    """P(D = 0..n-1) for a Poisson mean, computed in logs so large means do not underflow to NaN."""
    d = np.arange(n)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n)))])
    return np.exp(d * math.log(mean) - mean - log_factorial) if mean > 0 else (d == 0).astype(float)


Steps = list[tuple[np.ndarray, np.ndarray]]


def _transition(mean: float, price: float, stock: int) -> tuple[np.ndarray, np.ndarray]:
    """For every stock level s: expected revenue this period and P(stock s -> s') as a matrix."""
    n = stock + 1
    pmf = poisson_pmf(mean, n)
    tail = 1.0 - np.concatenate([[0.0], np.cumsum(pmf)])[:n]  # P(D >= s)
    left, now = np.arange(n)[None, :], np.arange(n)[:, None]
    sold = now - left
    moves = np.where((left >= 1) & (sold >= 0), pmf[np.clip(sold, 0, n - 1)], 0.0)  # sold d < s: left s - d
    moves[:, 0] = tail  # sold out
    sold_below = np.concatenate([[0.0], np.cumsum(pmf * np.arange(n))])[:n]  # sum of d P(d) over d < s
    return price * (sold_below + np.arange(n) * tail), moves


def _steps(product: Perishable, ladder: list[float], lift: Lift) -> Steps:
    return [_transition(demand_per_period(product, p, lift), p, product.stock) for p in ladder]


def _terminal(product: Perishable, prices: int) -> np.ndarray:
    """Value at expiry by label price and stock: every unit left is binned."""
    return np.tile(-product.penalty * np.arange(product.stock + 1, dtype=float), (prices, 1))


def _q(steps: Steps, value: np.ndarray) -> np.ndarray:
    """``q[j, i, s]``: charging ladder index ``j`` this period and following ``value`` after."""
    return np.stack([revenue + moves @ value[j] for j, (revenue, moves) in enumerate(steps)])


def _solve(product: Perishable, steps: Steps, periods: int) -> tuple[np.ndarray, float]:
    """The optimal policy for one demand curve (its transitions ``steps``) and its expected value."""
    prices = len(steps)
    value = _terminal(product, prices)
    choice = np.zeros((periods, prices, product.stock + 1), dtype=np.int16)
    for t in range(periods - 1, -1, -1):
        q = _q(steps, value)
        # From price i the label may stay or go down: best over j >= i, a running max from the cheap end.
        best = np.maximum.accumulate(q[::-1], axis=0)[::-1]
        arg = np.zeros_like(choice[t])
        arg[-1] = prices - 1
        for i in range(prices - 2, -1, -1):
            arg[i] = np.where(q[i] >= best[i + 1], i, arg[i + 1])
        choice[t], value = arg, best
    return choice, float(value[0, product.stock])


def _evaluate(product: Perishable, steps: Steps, choice: np.ndarray) -> float:
    """Expected value of following ``choice`` when demand follows the curve of ``steps``."""
    prices = len(steps)
    value = _terminal(product, prices)
    stock = np.arange(product.stock + 1)
    for t in range(choice.shape[0] - 1, -1, -1):
        value = _q(steps, value)[choice[t], stock[None, :]]
    return float(value[0, product.stock])


@dataclass(frozen=True)
class MarkdownPolicy:
    """``choice[t, i, s]``: ladder index to charge in period t, coming from index i with s units left."""

    product: Perishable
    ladder: list[float]
    choice: np.ndarray
    expected_value: float  # under the believed curve
    weight: float  # the curve it was solved for: this share of the believed curve, the rest the least lift

    def lift(self, ratio: float) -> float:
        return _blend(self.product, self.weight)(ratio)

    @property
    def periods(self) -> int:
        return self.choice.shape[0]

    def price_index(self, period: int, current: int, stock: int) -> int:
        return int(self.choice[period, current, min(stock, self.product.stock)])

    def price(self, period: int, current_price: float, stock: int) -> float:
        """The price for ``period`` (0 = now) given the price on the label and the stock left."""
        current = min(range(len(self.ladder)), key=lambda i: abs(self.ladder[i] - current_price))
        return self.ladder[self.price_index(period, current, stock)]

    def expected_schedule(self) -> list[PricePoint]:
        """The most likely path (stock falling by expected sales): what the labels will probably show."""
        points, current, stock = [], 0, float(self.product.stock)
        for period in range(self.periods):
            current = self.price_index(period, current, round(stock))
            price = self.ladder[current]
            points.append(PricePoint(
                day=period // self.product.periods_per_day, period=period % self.product.periods_per_day,
                price=price, expected_stock=round(stock, 1),
            ))
            stock = max(0.0, stock - demand_per_period(self.product, price, self.lift))
        return points


@dataclass(frozen=True)
class PricePoint:
    day: int
    period: int
    price: float
    expected_stock: float


#: Candidate curves between the least and the believed one (weight of the believed curve).
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)


def plan(product: Perishable) -> MarkdownPolicy:
    """Solve the markdown programme for one product (see the module docstring).

    With ``elasticity_doubt`` > 0 the demand curve itself is unsure: somewhere between the
    believed constant-elasticity curve and the least lift (``Perishable.least``). A policy is
    solved for each curve of ``BLENDS`` between them, each is valued under both ends, and the one
    whose worst shortfall against the best policy for the curve that really holds is least
    (minimax regret) is kept: a policy that bets on deep discounts paying loses little if they
    do not, and one that never discounts loses little if they do.
    """
    ladder = price_ladder(product)
    if product.max_changes_per_day == 0:
        ladder = ladder[:1]  # no changes allowed: the list price until expiry
    periods = product.days_to_expiry * product.periods_per_day
    believed = _steps(product, ladder, product.believed)
    if product.elasticity_doubt == 0 or len(ladder) == 1:
        choice, value = _solve(product, believed, periods)
        return MarkdownPolicy(product=product, ladder=ladder, choice=choice, expected_value=value, weight=1.0)
    least = _steps(product, ladder, product.least)
    candidates = []
    for weight in BLENDS:
        steps = believed if weight == 1 else least if weight == 0 else _steps(product, ladder, _blend(product, weight))
        choice, solved = _solve(product, steps, periods)  # its value under its own curve: an end's needs no re-run
        candidates.append((weight, choice, solved if weight == 1 else _evaluate(product, believed, choice),
                           solved if weight == 0 else _evaluate(product, least, choice)))
    best_believed, best_least = max(c[2] for c in candidates), max(c[3] for c in candidates)
    weight, choice, value, _ = min(candidates, key=lambda c: max(best_believed - c[2], best_least - c[3]))
    return MarkdownPolicy(product=product, ladder=ladder, choice=choice, expected_value=value, weight=weight)


def _blend(product: Perishable, weight: float) -> Lift:
    return lambda ratio: weight * product.believed(ratio) + (1 - weight) * product.least(ratio)


def markdown_badge(list_price: float, price: float) -> str | None:
    """The label's promotion badge for a markdown, in the Chinese way of saying it: 7 折 = 30% off."""
    if price >= list_price:
        return None
    tenths = math.floor(price / list_price * 100) / 10  # 0.72 -> 7.2 折, never rounded up to a smaller discount
    return f"临期{tenths:g}折"
