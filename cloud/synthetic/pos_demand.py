"""Real sales as the shape of simulated demand: a POS order-line export, read by the product's
own importer, as each product's day-by-day and period-by-period sales.

Simulated shoppers that follow a weekday table and gamma shocks are still shoppers someone
invented. A month of a real till's order lines (``../shared/data/exports/pos/meal_order_detail.csv``,
a restaurant's 2016-08 export) carries what a store's sales really do: weekends at four to five
times a weekday, a lunch and a dinner peak, weeks that do not repeat, and counts noisy at a few a day.
``bench/markdown.py`` gives each simulated product one real item's series from a random day on,
scaled so that the mean of the seven days before it is the planner's sales rate (the runner's
``RATE_DAYS`` estimate): the planner sees last week, the shoppers buy like the following days.

The file is read at run time and never stored: only these per-item counts live, in memory.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from cloud.cdp.imports import layouts, tabular
from cloud.cdp.imports.canonical import Order
from cloud.cdp.imports.cleaning import LOCAL_ZONE

#: Days of sales the planner's rate is the mean of (``markdown_runner.RATE_DAYS``).
HISTORY_DAYS = 7


@dataclass(frozen=True)
class ItemSales:
    """Units of one item sold, by store-local day (first day of the export first) and pricing period."""

    sku: str
    units: np.ndarray  # shape (days, periods_per_day)

    def pattern(self, start: int, days: int) -> tuple[float, ...] | None:
        """Multipliers by pricing period for ``days`` days from day ``start``, relative to the mean
        period of the ``HISTORY_DAYS`` days before it (None: nothing sold in those days)."""
        if start < HISTORY_DAYS or start + days > len(self.units):
            return None
        per_period = float(self.units[start - HISTORY_DAYS : start].mean())
        if per_period == 0:
            return None
        return tuple(float(u) / per_period for u in self.units[start : start + days].ravel())


def item_sales(path: Path, periods_per_day: int, *, min_per_day: float = 3.0) -> list[ItemSales]:
    """Every item of a POS line export that sold at least ``min_per_day`` units a day on average
    (below that a day's count is mostly the luck of a few orders), its units by day and by period
    (the day split into ``periods_per_day`` equal parts of the store-local clock, as
    ``markdown_runner`` splits it). Refunds and unreadable rows are left out."""
    plan = layouts.plan("pos", [tabular.read_tables(path.read_bytes())], store="pos-demand")
    sold: dict[str, dict[tuple[date, int], int]] = defaultdict(lambda: defaultdict(int))
    for _, _, parsed in plan.items:
        for order in parsed if isinstance(parsed, tuple) else ():
            if not isinstance(order, Order) or order.refund:
                continue
            local = order.ts.astimezone(LOCAL_ZONE)
            period = (local.hour * 3600 + local.minute * 60 + local.second) * periods_per_day // 86400
            for line in order.lines:
                sold[line.sku][(local.date(), period)] += line.qty
    days = sorted({day for by_slot in sold.values() for day, _ in by_slot})
    if not days:
        return []
    first, count = days[0], (days[-1] - days[0]).days + 1
    items = []
    for sku, by_slot in sorted(sold.items()):
        units = np.zeros((count, periods_per_day))
        for (day, period), qty in by_slot.items():
            units[(day - first).days, period] = qty
        if units.sum() / count >= min_per_day:
            items.append(ItemSales(sku, units))
    return items
