"""A store's normal for one metric in one period, and how far a value is from it.

The normal is the median of the same metric in comparable earlier periods, its spread the median
absolute deviation (MAD): both ignore the few odd values a history always has (a promotion, a
closed day), where a mean and a standard deviation would be dragged along by them. Comparable
means the same weekday and hour (Saturday 15:00 is not Tuesday 15:00); when a store's history is
too short for that, the same hour on days of the same kind (weekday or weekend), then the same
hour on any day. The spread is pooled over more residuals than eight weeks give, and widened
where the residuals' tail is heavy (``baseline_of``).

The spread is floored per metric kind, because a quiet hour's history is often all zeros or all
twos: its MAD is 0 and one extra visitor would be "infinitely" abnormal. Counts are floored at
their Poisson noise (sqrt of the median), every kind at a fixed and a relative minimum and at a
share of the store's typical level; a metric whose volume is too small (a ratio of a few
customers) is not judged; and a change smaller than the metric's ``min_delta`` never alerts,
whatever its z. A count below its normal is judged as a count (``count_low_z``): a whole day of
no door arrivals is not "3.6 spreads low" but a count its own noise almost never gives.
docs/ALERTS.md has the numbers and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from statistics import median
from typing import Literal

from scipy.special import gammaincc, ndtri

from cloud.health.metrics import BY_NAME

#: MAD times this estimates the standard deviation of normal data.
MAD_TO_SIGMA = 1.4826

Kind = Literal["count", "share", "amount", "seconds", "other"]
Direction = Literal["high", "low"]
Severity = Literal["warning", "critical"]


@dataclass(frozen=True)
class MetricRule:
    """How noisy a kind of metric is at least, and the smallest change worth telling HQ."""

    kind: Kind
    abs_floor: float  # the spread never below this (metric units)
    rel_floor: float  # ... nor below this share of the baseline
    level_floor: float  # ... nor below this share of the store's mean over all hours (quiet hours)
    min_delta: float  # |value - baseline| below this never alerts


RULES: dict[Kind, MetricRule] = {
    "count": MetricRule("count", abs_floor=1.0, rel_floor=0.08, level_floor=0.2, min_delta=5.0),
    "share": MetricRule("share", abs_floor=0.04, rel_floor=0.0, level_floor=0.0, min_delta=0.1),
    # one big ticket moves an hour's sales by a fifth; a day's by far less (see rule_for)
    "amount": MetricRule("amount", abs_floor=1.0, rel_floor=0.2, level_floor=0.2, min_delta=0.0),
    "seconds": MetricRule("seconds", abs_floor=5.0, rel_floor=0.1, level_floor=0.0, min_delta=15.0),
    "other": MetricRule("other", abs_floor=0.0, rel_floor=0.1, level_floor=0.1, min_delta=0.0),
}


@dataclass(frozen=True)
class Volume:
    """The count a metric is made of, and how much of it a period needs before the metric means much."""

    metric: str
    minimum: float
    now_too: bool  # a ratio needs it in the period itself; a sum only usually (its collapse is news)


_RATIO, _SUM = 20.0, 5.0
#: A share of three customers is not a rate and an hour of two tickets is not a sales level: such
#: metrics are judged only where their volume reaches the minimum (in the baseline, and for ratios
#: in the period too). Churn, repurchase and markdown shares have no stored denominator; the day's
#: orders stand in for the store's volume.
VOLUMES: dict[str, Volume] = {
    **{m: Volume("footfall", _RATIO, True) for m in ("conversion",)},
    **{m: Volume("arrivals", _RATIO, True) for m in (
        "recognised_share", "claimed_share", "greeted_share", "served_share", "converted_share",
        "median_time_to_greet_s")},
    **{m: Volume("orders", _RATIO, True) for m in (
        "avg_ticket", "units_per_ticket", "member_sales_share", "repurchase_rate", "churn_rate",
        "markdown_waste_share")},
    **{m: Volume("orders", _SUM, False) for m in ("sales", "sales_per_assistant")},
}


_KIND_OF_UNIT: dict[str, Kind] = {
    "ratio": "share", "CNY": "amount", "s": "seconds",
    "people": "count", "visits": "count", "orders": "count", "members": "count", "SKUs": "count",
}


def kind_of(metric: str) -> Kind:
    """A metric's kind from its unit in the metric registry (cloud/health/metrics.py, docs/HEALTH.md)."""
    known = BY_NAME.get(metric)
    return _KIND_OF_UNIT.get(known.unit, "other") if known is not None else "other"


#: A day sums a dozen trading hours: relative noise about half an hour's.
_DAY_REL_SCALE = 0.5


def rule_for(metric: str, grain: str) -> MetricRule:
    rule = RULES[kind_of(metric)]
    return replace(rule, rel_floor=rule.rel_floor * _DAY_REL_SCALE) if grain == "day" else rule


@dataclass(frozen=True)
class Thresholds:
    """When a robust z becomes an alert, and how much history a baseline needs."""

    #: A modified z of 3.5 is the textbook outlier cut (Iglewicz and Hoaglin) for one test; a brand
    #: scans ~50 000 store-hour-metrics a day, so 4 (with the tail-aware spread): on the planted
    #: benchmark about one false alert per store and fortnight, and a change of five times the
    #: hour's noise is still caught.
    warning: float = 4.0
    critical: float = 7.0
    weeks: int = 8  # history looked at, in weeks before the period
    min_same_weekday: int = 4  # same weekday-hour values needed before that pool is used
    min_pooled: int = 5  # values needed by the fallback pools


@dataclass(frozen=True)
class Baseline:
    median: float
    mad: float
    n: int
    pool: str  # which comparable periods it came from: weekday_hour, daytype_hour, hour


Sample = list[tuple[datetime, float]]  # (period start, value) of the same hour on earlier days


def baseline_of(start: datetime, earlier: Sample, thresholds: Thresholds, neighbours: tuple[Sample, ...] = ()
                ) -> Baseline | None:
    """The normal of the period starting at ``start`` from the same hour on earlier days.

    With enough weeks the median comes from the same weekday; the MAD from the residuals of every
    weekday of the same kind around their own weekday's median, at this hour and the ``neighbours``
    (the hours either side): eight values give a MAD that is often far too small by chance (and
    then every ordinary hour looks abnormal), a hundred residuals give a steady one. Short
    histories fall back to days of the same kind, then to any day. None when even that is too
    little."""
    weekend = start.weekday() >= 5
    same = [v for day, v in earlier if day.weekday() == start.weekday()]
    if len(same) >= thresholds.min_same_weekday:
        residuals = [r for sample in (earlier, *neighbours) for r in _weekday_residuals(sample, weekend, thresholds)]
        return Baseline(median(same), _tail_aware_mad(residuals), len(same), "weekday_hour")
    same_kind = [v for day, v in earlier if (day.weekday() >= 5) == weekend]
    for name, values in (("daytype_hour", same_kind), ("hour", [v for _, v in earlier])):
        if len(values) >= thresholds.min_pooled:
            mid = median(values)
            return Baseline(mid, median(abs(v - mid) for v in values), len(values), name)
    return None


def _tail_aware_mad(residuals: list[float]) -> float:
    """The MAD, or more when the residuals' tail is heavier than a normal's.

    Sales are sums of a few log-normal tickets: their median deviation is modest but one hour in
    a few hundred is twice the usual, which a MAD alone calls a 5-sigma event. So the 80th
    percentile of |residual| is read too and turned into the MAD a normal distribution with that
    percentile would have (x 0.6745 / 1.2816); the larger of the two is the spread."""
    deviations = sorted(abs(r) for r in residuals)
    p80 = deviations[min(len(deviations) - 1, int(0.8 * len(deviations)))]
    return max(median(deviations), p80 * 0.6745 / 1.2816)


def _weekday_residuals(sample: Sample, weekend: bool, thresholds: Thresholds) -> list[float]:
    """Each value minus its weekday's median, for the weekdays of the kind (weekday or weekend) asked."""
    by_weekday: dict[int, list[float]] = {}
    for day, value in sample:
        if (day.weekday() >= 5) == weekend:
            by_weekday.setdefault(day.weekday(), []).append(value)
    return [v - median(values) for values in by_weekday.values() if len(values) >= thresholds.min_same_weekday
            for v in values]


def poisson_cdf(k: float, mean: float) -> float:
    """P(X <= k) for X ~ Poisson(mean), continuous in ``k``: the regularised upper incomplete gamma
    Q(k + 1, mean), which is the Poisson CDF at whole ``k`` and rises smoothly between them. The rules
    test counts divided by their dispersion (``count_low_z``, ``cloud.health.shortfall``), which are
    seldom whole: flooring 9 / 2 to 4 called a count of 9 lower than it is."""
    return 1.0 if mean <= 0 else float(gammaincc(max(k, 0.0) + 1.0, mean))


#: the smallest tail probability turned into a z (about -37): a float's own limit is not far below
_LEAST_P = 1e-300


def count_low_z(value: float, baseline: Baseline, rule: MetricRule) -> float:
    """The z of a count below its normal, from the count's own distribution rather than a normal one.

    A normal with the spread as its sigma puts a zero far too close to the median: a store whose
    Saturdays bring 30-47 door arrivals (median 37.5) and that saw none all day was "3.6 sigmas"
    low, under the warning line, yet a count with that mean and noise is zero about once in a
    million days. So the count is tested as a quasi-Poisson one, as the hourly source rule does
    (``cloud.health.shortfall``): value and median divided by the dispersion (variance over mean,
    at least 1) of the store's own noise -- the MAD's sigma under the kind's fixed, relative and
    Poisson floors, not the level floor, which is about importance (a quiet hour of a busy store),
    not noise -- and P(X <= value) (``poisson_cdf``) turned into the normal z with the same tail."""
    mean = baseline.median
    if mean <= 0:
        return 0.0
    noise = spread(baseline, rule, 0.0)
    dispersion = max(1.0, noise * noise / mean)
    tail = poisson_cdf(value / dispersion, mean / dispersion)
    return float(ndtri(min(0.5, max(tail, _LEAST_P))))


def spread(baseline: Baseline, rule: MetricRule, level: float) -> float:
    """The noise scale a deviation is measured in: the MAD as a sigma, floored per the rule.

    ``level`` is the store's mean of the metric over every hour (or day) of the history: at 22:00
    a median of 0 sales and one 300-yuan sale is not news, measured against a store that sells
    3000 an hour when open."""
    floors = [MAD_TO_SIGMA * baseline.mad, rule.abs_floor, rule.rel_floor * abs(baseline.median),
              rule.level_floor * abs(level)]
    if rule.kind == "count":
        floors.append(math.sqrt(max(baseline.median, 0.0)))
    return max(floors) or 1e-9


@dataclass(frozen=True)
class Verdict:
    z: float
    direction: Direction
    severity: Severity | None  # None: within the store's normal


def judge(value: float, baseline: Baseline, rule: MetricRule, thresholds: Thresholds, *, level: float = 0.0) -> Verdict:
    """Robust z of a value against its baseline, and whether (and how badly) it is abnormal: a count
    below its normal by its own distribution (``count_low_z``), everything else by the spread."""
    delta = value - baseline.median
    z = count_low_z(value, baseline, rule) if rule.kind == "count" and delta < 0 else delta / spread(baseline, rule, level)
    direction: Direction = "high" if delta > 0 else "low"
    if abs(delta) < rule.min_delta or abs(z) < thresholds.warning:
        return Verdict(z, direction, None)
    return Verdict(z, direction, "critical" if abs(z) >= thresholds.critical else "warning")
