"""Wi-Fi fusion by likelihood ratio (issue 18): a member's registered phone in the store raises a
borderline face to that member, by as much as labelled visits say a phone is worth, never below a floor.

**Model.** For a face scored ``s`` against the matcher's candidate (the best member, clear of the
runner-up, with face consent), with ``t`` the bar the matcher applied (the pack's threshold plus
the store's offset):

    log-odds(the candidate is here | s, phone) = a + b * (s - t) + log LR(phone)

The face part is a logistic calibration of the cosine score. The phone part is the likelihood
ratio of the evidence about the candidate's registered phone at that store when the face was
seen: ``present`` (an ``enter`` within the join window and no ``leave`` since) multiplies the odds
by ``P(present | genuine) / P(present | impostor)``, ``absent`` by ``P(absent | genuine) /
P(absent | impostor)``; a candidate without a registered phone leaves them as they are.

**Estimated from labelled visits** (``match_labels`` joined with the visit's recorded phone state,
``visits.phone``): genuine = ``confirmed`` (是, or 已接待/成交 on a member card), impostor =
``rejected`` (不是) and ``not_this_person`` (不是本人). The two presence rates are Beta-Binomial
posterior means over the labelled visits whose candidate had a registered phone; ``a`` and ``b`` are
the maximum a posteriori logistic fit of the label on ``s - t`` over every labelled visit. The
priors (what a brand with no labels gets) are deliberately modest: a phone is present for half of
the genuine visits and for one impostor visit in five (LR 2.5), and the face slope is the pack's:
10x more strangers pass at the uncertain floor than at the threshold (``bench/openset.py``), so
the log-odds fall by ln 10 over that band.

**Decision.** The face alone decides whenever it can (a member stays a member; an absent phone
never demotes one). An ``uncertain`` face is promoted to the member when its fused log-odds reach
those of a face exactly at the bar: ``b * (s - t) + log LR >= 0``, i.e. ``s >= t - log LR / b``,
and never when ``s`` is under the pack's uncertain floor (1% of strangers pass there): a phone
never names someone for a face the pack would call a stranger. The fused confidence (the posterior
probability) and its reasons go on the visit (``fused_confidence``, ``fusion``) and the card
(``GuideCard.evidence``).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from cloud.arrivals.wifi import Phone, phone_state
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.faces.matching import Match
from protocol.messages import Evidence

#: Beta priors (successes, failures) of P(present | genuine) and P(present | impostor).
GENUINE_PRIOR = (1.0, 1.0)
IMPOSTOR_PRIOR = (1.0, 4.0)
#: The ratio of strangers passing at the uncertain floor and at the threshold (FPIR 1% vs 0.1%).
FLOOR_FPIR_RATIO = 10.0
#: Prior of the face calibration's intercept: P(genuine | s = t) before any label.
PRIOR_AT_BAR = 0.9
#: Prior standard deviations of the intercept and (relative to it) of the slope.
INTERCEPT_SD = 1.5
SLOPE_RELATIVE_SD = 0.5
#: Labels older than this are not read; the model is re-estimated at most this often.
WINDOW_DAYS = 180
CACHE_S = 300.0
GENUINE = ("confirmed",)
IMPOSTOR = ("rejected", "not_this_person")


@dataclass(frozen=True)
class Model:
    """The fitted parameters, and how many labelled visits they come from (for the reasons)."""

    intercept: float  # a: log-odds of a face exactly at the bar
    slope: float  # b: log-odds per unit of cosine above the bar
    present_genuine: float  # P(phone present | genuine)
    present_impostor: float  # P(phone present | impostor)
    labels: int = 0  # labelled visits behind the face calibration
    phone_labels: int = 0  # of which the candidate had a registered phone

    def log_lr(self, phone: Phone | None) -> float:
        if phone == "present":
            return math.log(self.present_genuine / self.present_impostor)
        if phone == "absent":
            return math.log((1 - self.present_genuine) / (1 - self.present_impostor))
        return 0.0

    def log_odds(self, score: float, bar: float, phone: Phone | None) -> float:
        return self.intercept + self.slope * (score - bar) + self.log_lr(phone)


def prior_slope(threshold: float, floor: float) -> float:
    """log-odds per cosine from the pack: ln(FPIR ratio) over the uncertain band; 0 without a band."""
    return math.log(FLOOR_FPIR_RATIO) / (threshold - floor) if threshold > floor else 0.0


def estimate(rows: list[tuple[float, bool, Phone | None]], prior_b: float) -> Model:
    """The model from labelled visits: (score minus the bar, genuine?, phone state) each."""
    a0 = math.log(PRIOR_AT_BAR / (1 - PRIOR_AT_BAR))
    a, b = _logistic_map(rows, a0, prior_b)
    counts = {(g, p): 0 for g in (True, False) for p in ("present", "absent")}
    for _, genuine, phone in rows:
        if phone is not None:
            counts[(genuine, phone)] += 1
    present_g = _beta_mean(counts[(True, "present")], counts[(True, "absent")], GENUINE_PRIOR)
    present_i = _beta_mean(counts[(False, "present")], counts[(False, "absent")], IMPOSTOR_PRIOR)
    return Model(a, b, present_g, present_i, labels=len(rows), phone_labels=sum(counts.values()))


def _beta_mean(successes: int, failures: int, prior: tuple[float, float]) -> float:
    return (successes + prior[0]) / (successes + failures + prior[0] + prior[1])


def _logistic_map(rows: list[tuple[float, bool, Phone | None]], a0: float, b0: float) -> tuple[float, float]:
    """Maximum a posteriori (a, b) of P(genuine) = sigmoid(a + b x) under Gaussian priors around
    (a0, b0), by Newton's method (a concave objective: it converges in a few steps)."""
    if b0 <= 0:
        return a0, 0.0
    if not rows:
        return a0, b0
    prior_mean = np.array([a0, b0])
    prior_precision = np.diag([1 / INTERCEPT_SD**2, 1 / (SLOPE_RELATIVE_SD * b0) ** 2])
    theta = prior_mean.copy()
    x = np.array([[1.0, d] for d, _, _ in rows])
    y = np.array([1.0 if genuine else 0.0 for _, genuine, _ in rows])
    for _ in range(25):
        p = 1 / (1 + np.exp(-(x @ theta)))
        gradient = x.T @ (y - p) - prior_precision @ (theta - prior_mean)
        hessian = (x.T * (p * (1 - p))) @ x + prior_precision
        step = np.linalg.solve(hessian, gradient)
        theta = theta + step
        if float(np.abs(step).max()) < 1e-9:
            break
    return float(theta[0]), max(float(theta[1]), 0.0)


@dataclass(frozen=True)
class Fused:
    """The match after fusion: promoted (``reason == "wifi"``) or as the face decided, with the
    phone state, the posterior and its reasons (None for a visitor with no candidate)."""

    match: Match
    phone: Phone | None = None
    confidence: float | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def evidence(self) -> Evidence | None:
        if self.confidence is None:
            return None
        return Evidence(fused=self.confidence, phone=self.phone, reasons=list(self.reasons))


def decide(model: Model, match: Match, phone: Phone | None) -> Fused:
    """Fuse a member or uncertain match with the phone evidence (see the module's docstring)."""
    who = match.member or match.candidate
    if who is None or match.reason not in ("member", "uncertain"):
        return Fused(match)
    log_odds = model.log_odds(match.confidence, match.threshold, phone)
    posterior = round(1 / (1 + math.exp(-log_odds)), 4)  # as the visit and the card carry it
    reasons = [f"人脸相似度 {match.confidence:.3f}（门槛 {match.threshold:.3f}）"]
    if phone is not None:
        words = "登记手机在店" if phone == "present" else "登记手机未在店"
        reasons.append(f"{words}（似然比 {math.exp(model.log_lr(phone)):.1f}，依据 {model.phone_labels} 次标注到店）")
    promoted = (match.reason == "uncertain" and phone == "present" and match.confidence >= match.floor
                and model.slope > 0  # without a face calibration (no uncertain band) a phone decides nothing
                and model.slope * (match.confidence - match.threshold) + model.log_lr(phone) >= 0)
    if promoted:
        reasons.append("手机佐证，确认为会员")
        match = replace(match, member=match.candidate, candidate=None, reason="wifi")
    return Fused(match, phone, posterior, tuple(reasons))


def labelled(db: Database, since: datetime) -> list[tuple[float, str, Phone | None]]:
    """Labelled visits: (cosine score, label, the candidate's phone state when it was decided). The
    caller measures the score from today's bar: a store offset that moved since shifts old labels a
    little, which the priors absorb."""
    return [(score, label, "present" if phone == "present" else "absent" if phone == "absent" else None)
            for score, label, phone in db.rows(
                "SELECT l.score, l.label, v.phone FROM match_labels l JOIN visits v ON v.id = l.visit_id "
                "WHERE l.ts >= ?", (iso(since),))]


class Fusion:
    """The model, re-estimated from the labels at most every ``CACHE_S``, and the fusion of one match."""

    def __init__(self, db: Database, *, cache_s: float = CACHE_S) -> None:
        self._db, self._cache_s = db, cache_s
        self._cache: dict[tuple[float, float], tuple[Model, float]] = {}
        self._lock = threading.Lock()

    def model(self, threshold: float, floor: float) -> Model:
        key = (round(threshold, 4), round(floor, 4))
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[1] < self._cache_s:
            return hit[0]
        since = utcnow() - timedelta(days=WINDOW_DAYS)
        rows: list[tuple[float, bool, Phone | None]] = [
            (score - threshold, label in GENUINE, phone) for score, label, phone in labelled(self._db, since)
            if label in GENUINE + IMPOSTOR]
        model = estimate(rows, prior_slope(threshold, floor))
        with self._lock:
            self._cache[key] = (model, now)
        return model

    def fuse(self, match: Match, store: str, at: datetime) -> Fused:
        who = match.member or match.candidate
        if who is None or match.reason not in ("member", "uncertain"):
            return Fused(match)
        phone = phone_state(self._db, who.id, store, at)
        return decide(self.model(match.threshold, match.floor), match, phone)
