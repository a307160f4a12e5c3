"""The health model: metric scores -> five sub-scores -> the overall score, by configurable weights.

sub-score = weighted mean of the scores its metrics have that day (a metric without a score,
e.g. no stock data, drops out and the others' weights are renormalised); overall = weighted mean
of the sub-scores that exist. Weights live in the ``settings`` table (``health.weights``) so HQ
can change them (PUT /v1/health/weights) without rescoring: scores per metric are stored, weights
apply when read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from cloud.db import Database
from cloud.errors import Invalid
from cloud.health.metrics import SUB_SCORES, metrics_of

WEIGHTS_KEY = "health.weights"

Weights = dict[str, dict[str, float]]
K = TypeVar("K")

#: the operations sub-score beside the four quarters (``bench/health_incidents.py`` chose it: docs/PERFORMANCE.md)
OPERATIONS_WEIGHT = 0.5

DEFAULT_WEIGHTS: Weights = {
    "overall": {"experience": 0.25, "customer": 0.25, "team": 0.25, "product": 0.25, "operations": OPERATIONS_WEIGHT},
    "experience": {"greeted_share": 0.3, "median_time_to_greet_s": 0.2, "served_share": 0.2, "conversion": 0.3},
    "customer": {"recognised_share": 0.15, "member_sales_share": 0.2, "new_members": 0.15, "repurchase_rate": 0.2,
                 "dormant_reactivated": 0.1, "churn_rate": 0.2},
    "team": {"claimed_share": 0.2, "converted_share": 0.3, "sales_per_assistant": 0.2, "target_attainment": 0.3},
    "product": {"avg_ticket": 0.15, "units_per_ticket": 0.15, "sell_through": 0.3, "stock_out_rate": 0.2,
                "markdown_waste_share": 0.2},
    "operations": {"incident_hours_share": 1.0},
}


class WeightsError(Invalid):
    """Weights that name an unknown group or metric, or are negative, or sum to zero."""

    code = "invalid_weights"


def validate(weights: Weights) -> Weights:
    """The full weights (groups not given keep their defaults); raises WeightsError with the reason."""
    merged = {group: dict(values) for group, values in DEFAULT_WEIGHTS.items()}
    for group, values in weights.items():
        allowed = set(SUB_SCORES) if group == "overall" else (
            {m.name for m in metrics_of(group)} if group in SUB_SCORES else None)
        if allowed is None:
            raise WeightsError(f"unknown weight group {group!r}; groups: overall, {', '.join(SUB_SCORES)}")
        for name, w in values.items():
            if name not in allowed:
                raise WeightsError(f"{name!r} is not part of {group}; one of {', '.join(sorted(allowed))}")
            if not isinstance(w, (int, float)) or w < 0:
                raise WeightsError(f"weight {group}.{name} must be a number >= 0")
        merged[group] = {name: float(values.get(name, 0.0)) for name in allowed}
        if sum(merged[group].values()) <= 0:
            raise WeightsError(f"the weights of {group} sum to 0")
    return merged


def load_weights(db: Database) -> Weights:
    raw = db.scalar("SELECT value FROM settings WHERE key = ?", (WEIGHTS_KEY,))
    return validate(json.loads(raw)) if raw else {g: dict(v) for g, v in DEFAULT_WEIGHTS.items()}


def save_weights(db: Database, weights: Weights) -> Weights:
    full = validate(weights)
    db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               (WEIGHTS_KEY, json.dumps(full)))
    return full


@dataclass(frozen=True)
class StoreScores:
    """One store-day's overall score and its five sub-scores (None: not enough data to score)."""

    overall: float | None
    sub_scores: dict[str, float | None]


def _weighted_mean(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row-wise weighted mean over the columns that have a score (NaN: none); NaN where none has."""
    present = ~np.isnan(scores)
    den = (present * weights).sum(axis=1)
    num = np.where(present, scores, 0.0) @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def combine_many(metric_scores: dict[K, dict[str, float]], weights: Weights) -> dict[K, StoreScores]:
    """Sub-scores and overall of many store-days at once (a ranking reads 200 stores x 29 days)."""
    keys = list(metric_scores)
    names = [m.name for sub in SUB_SCORES for m in metrics_of(sub)]
    column = {name: j for j, name in enumerate(names)}
    scores = np.full((len(keys), len(names)), np.nan)
    for i, key in enumerate(keys):
        for name, score in metric_scores[key].items():
            if name in column:
                scores[i, column[name]] = score
    subs = np.full((len(keys), len(SUB_SCORES)), np.nan)
    for k, sub in enumerate(SUB_SCORES):
        cols = [column[m.name] for m in metrics_of(sub)]
        subs[:, k] = _weighted_mean(scores[:, cols], np.array([weights[sub].get(names[c], 0.0) for c in cols]))
    overall = _weighted_mean(subs, np.array([weights["overall"].get(sub, 0.0) for sub in SUB_SCORES]))
    return {key: StoreScores(_num(overall[i]), {sub: _num(subs[i, k]) for k, sub in enumerate(SUB_SCORES)})
            for i, key in enumerate(keys)}


def combine(metric_scores: dict[str, float], weights: Weights) -> StoreScores:
    """Sub-scores and overall from one store-day's metric scores (metric -> 0..100)."""
    return combine_many({0: metric_scores}, weights)[0]


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
