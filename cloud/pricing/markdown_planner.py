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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocol.messages import Id


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


def demand_per_period(product: Perishable, price: float) -> float:
    return product.sales_rate / product.periods_per_day * (price / product.list_price) ** -product.elasticity


def poisson_pmf(mean: float, n: int) -> np.ndarray:
    """P(D = 0..n-1) for a Poisson mean, computed in logs so large means do not underflow to NaN."""
    d = np.arange(n)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n)))])
    return np.exp(d * math.log(mean) - mean - log_factorial) if mean > 0 else (d == 0).astype(float)


def _transition(mean: float, price: float, stock: int) -> tuple[np.ndarray, np.ndarray]:
    """For every stock level s: expected revenue this period and P(stock s -> s') as a matrix."""
    n = stock + 1
    pmf = poisson_pmf(mean, n)
    tail = 1.0 - np.concatenate([[0.0], np.cumsum(pmf)])[:n]  # P(D >= s)
    moves = np.zeros((n, n))
    for s in range(n):
        moves[s, 1 : s + 1] = pmf[:s][::-1]  # sold d < s: left s - d
        moves[s, 0] = tail[s]  # sold out
    expected_sold = np.array([(pmf[:s] * np.arange(s)).sum() + s * tail[s] for s in range(n)])
    return price * expected_sold, moves


@dataclass(frozen=True)
class MarkdownPolicy:
    """``choice[t, i, s]``: ladder index to charge in period t, coming from index i with s units left."""

    product: Perishable
    ladder: list[float]
    choice: np.ndarray
    expected_value: float

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
            stock = max(0.0, stock - demand_per_period(self.product, price))
        return points


@dataclass(frozen=True)
class PricePoint:
    day: int
    period: int
    price: float
    expected_stock: float


def plan(product: Perishable) -> MarkdownPolicy:
    """Solve the markdown programme for one product (see the module docstring)."""
    ladder = price_ladder(product)
    if product.max_changes_per_day == 0:
        ladder = ladder[:1]  # no changes allowed: the list price until expiry
    n, prices = product.stock + 1, len(ladder)
    periods = product.days_to_expiry * product.periods_per_day
    steps = [_transition(demand_per_period(product, p), p, product.stock) for p in ladder]
    value = np.tile(-product.penalty * np.arange(n, dtype=float), (prices, 1))  # at expiry
    choice = np.zeros((periods, prices, n), dtype=np.int16)
    for t in range(periods - 1, -1, -1):
        q = np.stack([revenue + moves @ value[j] for j, (revenue, moves) in enumerate(steps)])
        # From price i the label may stay or go down: best over j >= i, a running max from the cheap end.
        best = np.maximum.accumulate(q[::-1], axis=0)[::-1]
        arg = np.zeros((prices, n), dtype=np.int16)
        arg[-1] = prices - 1
        for i in range(prices - 2, -1, -1):
            arg[i] = np.where(q[i] >= best[i + 1], i, arg[i + 1])
        choice[t], value = arg, best
    return MarkdownPolicy(product=product, ladder=ladder, choice=choice, expected_value=float(value[0, product.stock]))


def markdown_badge(list_price: float, price: float) -> str | None:
    """The label's promotion badge for a markdown, in the Chinese way of saying it: 7 折 = 30% off."""
    if price >= list_price:
        return None
    tenths = math.floor(price / list_price * 100) / 10  # 0.72 -> 7.2 折, never rounded up to a smaller discount
    return f"临期{tenths:g}折"
