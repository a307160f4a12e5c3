"""Hourly store metrics with planted anomalies: the ground truth the anomaly scan is measured on.

Each store gets its own size, conversion and ticket, a weekly growth trend, a daily "weather"
factor shared by all its hours (so a day is busier or quieter as a whole, as real days are), and
weekday and weekend hour profiles (lunch and evening peaks on weekdays, a broad afternoon on
weekends; closed at night but for a stray visitor). Counts are drawn, not scaled: footfall is
Poisson, member arrivals and orders binomial out of footfall, sales a sum of log-normal tickets;
conversion, average ticket and greeted share follow from them, as the rollup computes them.

Anomalies are planted in trading hours (11:00-21:00) on footfall, arrivals, orders and sales:
spikes (one hour), drops (1-3 hours: a door counter or till outage) and level shifts (4-8 hours),
each moving the metric by 5-10 times its own noise at that hour (Poisson and day-to-day for
counts, compound for sales); a drop deeper than the hour's expected value cannot happen, so there
the event is a rise. Changes smaller than that are noise an hourly alert cannot tell apart, and are
not planted. Every planted (store, metric, hour) is a label. A planted change touches only its own
metric (the ratios come from the undisturbed counts), so labels stay exact; the ratios are scanned
too, so any alert on them counts against precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

PLANTED_METRICS = ("footfall", "arrivals", "orders", "sales")
METRICS = (*PLANTED_METRICS, "conversion", "avg_ticket", "greeted_share")
TRADING_HOURS = range(11, 21)
SIGMAS = (5.0, 10.0)  # a planted change, in multiples of the metric's noise at that hour
WEATHER_SIGMA = 0.08  # day-to-day log-normal factor shared by a store's hours
TICKET_SIGMA = 0.5

#: share of the peak hour's footfall, by local hour; doors open 10:00-22:00 (a stray visitor outside)
_WEEKDAY = np.array([0.0] * 9 + [0.05, 0.45, 0.7, 0.95, 0.9, 0.65, 0.6, 0.65, 0.75, 0.95, 1.0, 0.85, 0.55, 0.1, 0.0])
_WEEKEND = np.array([0.0] * 9 + [0.05, 0.55, 0.8, 0.95, 1.0, 1.0, 1.0, 0.95, 0.9, 0.9, 0.85, 0.7, 0.5, 0.1, 0.0])


@dataclass(frozen=True)
class Dataset:
    rows: list[tuple[str, str, str, str, float]]  # store_metrics: store, grain, ts, metric, value
    labels: set[tuple[str, str, str]]  # planted: store, metric, ts
    start: datetime  # local midnight of the first day
    days: int


def generate(*, seed: int, stores: int, days: int, events_per_day: float = 0.15) -> Dataset:
    """``stores`` stores x ``days`` days of hourly metrics; ``events_per_day`` planted per store and metric."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 5)  # a Monday
    rows: list[tuple[str, str, str, str, float]] = []
    labels: set[tuple[str, str, str]] = set()
    for s in range(stores):
        store = f"s{s + 1:03d}"
        shop = _Shop.draw(rng)
        expected = shop.expected(rng, days)
        shifts = _plant(rng, expected, events_per_day)
        for metric, hours in shifts.items():
            labels.update((store, metric, _hour_key(start, h)) for h in hours)
        for h, values in enumerate(shop.draw_hours(rng, expected, shifts)):
            rows.extend((store, "hour", _hour_key(start, h), metric, value) for metric, value in values.items())
    return Dataset(rows, labels, start, days)


def _hour_key(start: datetime, h: int) -> str:
    return (start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:00")


@dataclass(frozen=True)
class _Shop:
    peak: float  # footfall in the busiest weekday hour
    conversion: float
    member_share: float
    greet: float
    ticket_mu: float  # log-normal tickets, sigma TICKET_SIGMA
    weekend_lift: float
    growth: float  # per week

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Shop:
        return cls(peak=60 * rng.lognormal(0.0, 0.35), conversion=rng.uniform(0.15, 0.3),
                   member_share=rng.uniform(0.25, 0.45), greet=rng.uniform(0.7, 0.9),
                   ticket_mu=float(np.log(rng.uniform(250, 600))), weekend_lift=rng.uniform(1.3, 1.7),
                   growth=rng.normal(0.0, 0.01))

    def expected(self, rng: np.random.Generator, days: int) -> dict[str, np.ndarray]:
        """Expected footfall, arrivals, orders and sales per hour, and each one's noise (``<metric>_sd``)."""
        weather = rng.lognormal(0.0, WEATHER_SIGMA, size=days) * (1 + self.growth) ** (np.arange(days) / 7)
        weekend = (np.arange(days) % 7 >= 5)[:, None]
        profile = np.where(weekend, _WEEKEND * self.weekend_lift, _WEEKDAY)
        footfall = np.maximum(self.peak * profile * weather[:, None], 0.2).ravel()
        ticket_mean = np.exp(self.ticket_mu + TICKET_SIGMA**2 / 2)
        ticket_square = np.exp(2 * self.ticket_mu + 2 * TICKET_SIGMA**2)
        means = {"footfall": footfall, "arrivals": footfall * self.member_share, "orders": footfall * self.conversion}
        means["sales"] = means["orders"] * ticket_mean
        noise = {f"{m}_sd": np.sqrt(v + (WEATHER_SIGMA * v) ** 2) for m, v in means.items() if m != "sales"}
        noise["sales_sd"] = np.sqrt(means["orders"] * ticket_square + (WEATHER_SIGMA * means["sales"]) ** 2)
        return {**means, **noise}

    def draw_hours(self, rng: np.random.Generator, expected: dict[str, np.ndarray],
                   shifts: dict[str, dict[int, float]]) -> list[dict[str, float]]:
        hours: list[dict[str, float]] = []
        for h, mean in enumerate(expected["footfall"]):
            footfall = int(rng.poisson(mean))
            arrivals = int(rng.binomial(footfall, self.member_share))
            orders = int(rng.binomial(footfall, self.conversion))
            sales = float(rng.lognormal(self.ticket_mu, TICKET_SIGMA, size=orders).sum())
            greeted = int(rng.binomial(arrivals, self.greet))
            drawn = {"footfall": footfall, "arrivals": arrivals, "orders": orders, "sales": sales}
            values = {m: _shift(v, shifts[m].get(h, 0.0), integer=m != "sales") for m, v in drawn.items()}
            ratios = {"conversion": (orders, footfall, 4), "avg_ticket": (sales, orders, 2),
                      "greeted_share": (greeted, arrivals, 4)}
            # as the rollup writes them: a ratio with a zero denominator is absent, never 0
            hours.append({**values, **{m: round(n / d, places) for m, (n, d, places) in ratios.items() if d}})
        return hours


def _plant(rng: np.random.Generator, expected: dict[str, np.ndarray], per_day: float) -> dict[str, dict[int, float]]:
    """metric -> hour index -> the amount added to the drawn value there."""
    days = len(expected["footfall"]) // 24
    planted: dict[str, dict[int, float]] = {m: {} for m in PLANTED_METRICS}
    for metric in PLANTED_METRICS:
        for _ in range(rng.poisson(per_day * days)):
            day, hour = int(rng.integers(days)), int(rng.choice(TRADING_HOURS))
            kind = rng.choice(["spike", "drop", "shift"])
            length = {"spike": 1, "drop": int(rng.integers(1, 4)), "shift": int(rng.integers(4, 9))}[kind]
            k = rng.uniform(*SIGMAS)
            down = kind == "drop" or (kind == "shift" and rng.random() < 0.5)
            for h in range(day * 24 + hour, day * 24 + min(hour + length, TRADING_HOURS.stop)):
                change = k * expected[f"{metric}_sd"][h]
                down_here = down and change <= expected[metric][h]  # nothing falls below zero
                planted[metric][h] = -change if down_here else change
    return planted


def _shift(value: float, change: float, *, integer: bool) -> float:
    changed = max(value + change, 0.0)
    return float(round(changed)) if integer else round(changed, 2)
