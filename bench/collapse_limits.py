"""What a conversion collapse needs to be an alert within the hour: detection time against false alerts.

Customers who come and look but stop buying (four sales in five gone) show only in the till's
count; no device and no other source says so. This asks what the live rule's own test can do at a
store's volumes, with the statistics alone: tickets as a Poisson stream of ``--orders-per-hour``
(known exactly: the rule's estimate from 4 weeks can only be worse), open 10:00-22:00, judged
every ``--step-min`` minutes over the rule's windows (``cloud.health.shortfall.WINDOWS_MIN``, never
before the opening) with its test, a Poisson tail below ``alpha`` and at least ``min_shortfall``
short (``baseline.poisson_cdf``, as ``shortfall`` tests it; without the rule's 2.5-standard-deviation shortcut, which only
holds for its own alpha), for each alpha of ``--alphas``:

- ``false_per_store_week``: alert episodes (a short window with none open; it clears when no
  window is short) over ``--weeks`` store-weeks of normal trading;
- ``p95_detect_min`` / ``detected``: of ``--collapses`` collapses to ``1 / --kept`` of the rate from
  a random minute of 10:00-18:00, minutes to the first short window (censored at closing: a
  collapse not caught that day counts as not detected, and the p95 is then null).

The first row of each rate is the rule as it runs (``ALPHA`` 1e-4, ``MIN_SHORTFALL`` 5). JSON last: one row
per rate, alpha and test.

``test`` ``footfall`` is the footfall-conditioned variant (issue 17): the store's visitors are a
Poisson stream at ``orders-per-hour / --conversion``, each buying with probability ``--conversion``
(a ticket is a visitor who bought: the same Poisson ticket stream, thinned), and a window's expected
tickets are the visitors it saw times the store's normal conversion, judged by the binomial tail
(``P(X <= observed)``, ``X ~ Binomial(visitors, conversion)``) with the same alpha and shortfall. The
conversion is known exactly here, so this is the best such a test can do; the live rule could only
estimate it from 4 weeks of the same weekday-hour.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from cloud.health.baseline import poisson_cdf
from cloud.health.shortfall import ALPHA, MIN_SHORTFALL, WINDOWS_MIN

OPEN_MIN = 12 * 60


@cache
def _tail(observed: int, expected: float) -> float:
    return poisson_cdf(observed, expected)


@cache
def _binomial_tail(observed: int, visitors: int, p: float) -> float:
    """P(X <= observed) for X ~ Binomial(visitors, p)."""
    if observed >= visitors:
        return 1.0
    return min(1.0, sum(math.exp(math.lgamma(visitors + 1) - math.lgamma(j + 1) - math.lgamma(visitors - j + 1)
                                 + j * math.log(p) + (visitors - j) * math.log1p(-p)) for j in range(observed + 1)))


@dataclass(frozen=True)
class Day:
    """One day's visitors (minutes since opening, sorted) and which of them bought (a ticket)."""

    visitors: np.ndarray
    bought: np.ndarray

    @property
    def tickets(self) -> np.ndarray:
        return self.visitors[self.bought]


def _short(day: Day, now: float, rate_per_min: float, conversion: float, test: str, alpha: float,
           min_shortfall: float) -> bool:
    """Whether any window ending ``now`` (minutes since opening) is short: against the normal rate
    (``count``), or against the window's visitors times the normal conversion (``footfall``)."""
    tickets = day.tickets
    for minutes in WINDOWS_MIN:
        start = max(0.0, now - minutes)
        observed = int(np.searchsorted(tickets, now) - np.searchsorted(tickets, start))
        if test == "count":
            expected = round(rate_per_min * (now - start), 6)
            tail = _tail(observed, expected) if expected - observed >= min_shortfall else 1.0
        else:
            visitors = int(np.searchsorted(day.visitors, now) - np.searchsorted(day.visitors, start))
            expected = visitors * conversion
            tail = _binomial_tail(observed, visitors, conversion) if expected - observed >= min_shortfall else 1.0
        if tail < alpha:
            return True
        if start == 0.0:
            break
    return False


def _day(rng: np.random.Generator, rate_per_min: float, conversion: float, kept: int, collapse_at: float) -> Day:
    """Visitors at ``rate / conversion``; each buys with the conversion, ``1 / kept`` of it from ``collapse_at``."""
    n = rng.poisson(rate_per_min / conversion * OPEN_MIN)
    visitors = np.sort(rng.uniform(0.0, OPEN_MIN, n))
    chance = np.where(visitors < collapse_at, conversion, conversion / kept)
    return Day(visitors, rng.random(n) < chance)


def false_alerts(rng: np.random.Generator, rate: float, conversion: float, test: str, days: int, step: int,
                 alpha: float, short_by: float) -> int:
    episodes = 0
    for _ in range(days):
        day, open_alert = _day(rng, rate, conversion, 1, OPEN_MIN), False
        for now in range(step, OPEN_MIN + 1, step):
            short = _short(day, float(now), rate, conversion, test, alpha, short_by)
            episodes += short and not open_alert
            open_alert = short
    return episodes


def detection(rng: np.random.Generator, rate: float, conversion: float, test: str, kept: int, n: int, step: int,
              alpha: float, short_by: float) -> list[float | None]:
    delays: list[float | None] = []
    for _ in range(n):
        start = float(rng.uniform(0, 8 * 60))
        day = _day(rng, rate, conversion, kept, start)
        first = (int(start) // step + 1) * step
        delays.append(next((now - start for now in range(first, OPEN_MIN + 1, step)
                            if _short(day, float(now), rate, conversion, test, alpha, short_by)), None))
    return delays


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders-per-hour", type=float, nargs="+", default=[2.0, 5.0, 10.0, 20.0])
    ap.add_argument("--alphas", type=float, nargs="+", default=[1e-3, 1e-2, 5e-2], help="looser than the rule's")
    ap.add_argument("--min-shortfall", type=float, default=2.0, help="with the looser alphas")
    ap.add_argument("--kept", type=int, default=5, help="one sale in KEPT still happens (incidents.KEPT_SALE)")
    ap.add_argument("--weeks", type=int, default=20, help="store-weeks of normal trading per rate and alpha")
    ap.add_argument("--collapses", type=int, default=200)
    ap.add_argument("--step-min", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--conversion", type=float, default=0.1,
                    help="tickets per visitor (the generated brand: about 7 tickets of 75 people a day)")
    ap.add_argument("--tests", nargs="+", choices=("count", "footfall"), default=["count", "footfall"])
    args = ap.parse_args()
    rows = []
    for per_hour in args.orders_per_hour:
        rate = per_hour / 60.0
        for test in args.tests:
            for alpha, short_by in [(ALPHA, MIN_SHORTFALL)] + [(a, args.min_shortfall) for a in args.alphas]:
                rng = np.random.default_rng(args.seed)
                false = false_alerts(rng, rate, args.conversion, test, args.weeks * 7, args.step_min, alpha, short_by)
                delays = detection(rng, rate, args.conversion, test, args.kept, args.collapses, args.step_min, alpha,
                                   short_by)
                caught = sorted(d for d in delays if d is not None)
                p95 = caught[int(0.95 * len(delays))] if len(caught) > int(0.95 * len(delays)) else None
                rows.append({"orders_per_hour": per_hour, "test": test, "alpha": alpha, "min_shortfall": short_by,
                             "false_per_store_week": round(false / args.weeks, 2),
                             "detected": round(len(caught) / len(delays), 3),
                             "p95_detect_min": None if p95 is None else round(p95, 1)})
    print(json.dumps({"kept": args.kept, "step_min": args.step_min, "weeks": args.weeks,
                      "collapses": args.collapses, "conversion": args.conversion, "rows": rows}))


if __name__ == "__main__":
    main()
