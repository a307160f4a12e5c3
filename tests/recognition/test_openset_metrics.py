"""bench/openset.py's decision rule, rates and calibration on synthetic scores with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from bench.openset import (
    Searches,
    accepts,
    calibrate,
    curve,
    half_of,
    margin_grid,
    outcomes,
    searches_for,
    threshold_at_fpir,
    upper95,
)

NO = -np.inf


def test_the_rule_needs_the_threshold_and_the_margin():
    top = np.array([0.60, 0.60, 0.40, 0.60])
    runner = np.array([0.50, 0.58, 0.00, NO])
    assert accepts(top, runner, 0.5, 0.05).tolist() == [True, False, False, True]


def test_outcomes_count_right_wrong_missed_and_false_positives():
    mated = np.array([
        [0.90, 0.30, 0.20],  # right member, clear: correct
        [0.40, 0.30, 0.20],  # under the threshold: missed
        [0.30, 0.80, 0.10],  # someone else on top and clear: wrong member (and missed)
        [0.60, 0.62, 0.10],  # someone else on top but the true member is too close: ambiguous, missed
        [0.70, 0.68, 0.10],  # right member on top but too close to another: ambiguous, missed
        [np.nan, np.nan, np.nan],  # no face found: missed
    ])
    nonmated = np.array([[0.70, 0.20], [0.70, 0.68], [0.40, 0.10], [0.55, NO]])
    r = outcomes(Searches(mated, nonmated), threshold=0.5, margin=0.05)
    assert (r["missed"], r["wrong"], r["false_pos"]) == (5, 1, 2)
    assert r["fnir"] == pytest.approx(5 / 6) and r["wrong_member"] == pytest.approx(1 / 6)
    assert r["fpir"] == pytest.approx(2 / 4)


def test_threshold_at_fpir_lets_exactly_the_allowed_share_through():
    nonmated = np.column_stack([np.arange(1000) / 1000, np.full(1000, NO)])
    t = threshold_at_fpir(nonmated, 0.003, margin=0.0)
    assert 0.996 < t <= 0.997 + 1e-9
    assert accepts(nonmated[:, 0], nonmated[:, 1], t, 0.0).sum() == 3
    assert accepts(nonmated[:, 0], nonmated[:, 1], threshold_at_fpir(nonmated, 0.0, 0.0), 0.0).sum() == 0
    # ambiguous searches never pass, so they do not use up the allowance
    nonmated[-1, 1] = nonmated[-1, 0] - 0.01
    assert accepts(nonmated[:, 0], nonmated[:, 1], threshold_at_fpir(nonmated, 0.001, 0.05), 0.05).sum() == 1


def test_calibrate_meets_both_limits_with_the_fewest_misses():
    rng = np.random.default_rng(7)
    genuine = rng.uniform(0.55, 0.95, 2000)
    mated = np.column_stack([genuine, rng.uniform(0.0, 0.40, 2000), np.full(2000, 0.0)])
    mated[:3, 1] = 0.52  # three probes whose best other member scores 0.52 with the true one lower
    mated[:3, 0] = 0.30
    nonmated = np.column_stack([rng.uniform(0.0, 0.45, 3000), np.full(3000, NO)])
    nonmated[:2, 0] = 0.50  # two strangers at 0.50
    chosen = calibrate(Searches(mated, nonmated), max_fpir=0.001, max_wrong=0.0)
    # FPIR <= 0.1% of 3000 allows 3 false positives, but wrong-member 0 forces the threshold over 0.52
    assert 0.52 < chosen["threshold"] < 0.55
    assert chosen["wrong"] == 0 and chosen["false_pos"] == 0
    assert chosen["missed"] == 3  # only the three probes that lost to another member
    # without the wrong-member limit the threshold may drop to just over the 2nd-highest stranger band
    loose = calibrate(Searches(mated, nonmated), max_fpir=0.001, max_wrong=1.0)
    assert loose["threshold"] <= chosen["threshold"] and loose["false_pos"] <= 3


def test_curve_thresholds_rise_as_the_fpir_target_falls():
    rng = np.random.default_rng(1)
    mated = np.column_stack([rng.normal(0.7, 0.1, 500), rng.normal(0.2, 0.1, 500), np.full(500, 0.0)])
    nonmated = np.column_stack([rng.normal(0.2, 0.1, 5000), np.full(5000, NO)])
    points = curve(Searches(mated, nonmated), margin=0.0)
    thresholds = [p["threshold"] for p in points]
    assert thresholds == sorted(thresholds, reverse=True)
    assert all(p["fpir"] <= p["target_fpir"] for p in points)
    fnirs = [p["fnir"] for p in points]
    assert fnirs == sorted(fnirs, reverse=True)


def test_upper_bound_of_zero_errors_is_the_rule_of_three():
    assert upper95(0, 1000) == pytest.approx(3 / 1000, rel=0.01)
    assert upper95(1, 1000) > upper95(0, 1000)


def test_halves_are_fixed_and_balanced():
    names = [f"person_{i}" for i in range(2000)]
    halves = [half_of(n) for n in names]
    assert halves == [half_of(n) for n in names]
    assert 900 < halves.count("calibration") < 1100


def _vec(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_searches_for_builds_mated_and_withheld_searches():
    vectors = {
        "A/1": _vec(1, 0, 0), "A/2": _vec(1, 0.1, 0), "A/3": _vec(0.9, 0.2, 0),
        "B/1": _vec(0, 1, 0), "B/2": None,  # B's probe shows no face
        "S/1": _vec(0, 0, 1),
    }
    members = {"A": ["A/1", "A/2", "A/3"], "B": ["B/1", "B/2"]}
    one, info = searches_for("1", members, ["S/1"], vectors)
    assert info["gallery_members"] == 2 and info["mated_searches"] == 3 and info["probes_without_face"] == 1
    assert one.mated.shape == (3, 3) and np.isnan(one.mated[2, 0])
    # A's two probes and each enrolment photo with its member withheld, and the stranger
    assert len(one.nonmated) == 5 and info["stranger_searches"] == 1  # 2 probes + 2 enrolment photos + 1
    assert one.mated[0, 0] == pytest.approx(float(_vec(1, 0.1, 0) @ _vec(1, 0, 0)))
    two_max, info2 = searches_for("2-max", members, ["S/1"], vectors)
    assert info2["gallery_templates"] == 3 and info2["mated_searches"] == 2  # A/3, and B/2 (no face)
    assert two_max.mated[0, 0] == pytest.approx(max(float(_vec(0.9, 0.2, 0) @ vectors[p]) for p in ("A/1", "A/2")))
    two_mean, info3 = searches_for("2-mean", members, ["S/1"], vectors)
    assert info3["gallery_templates"] == 2


def _flat(genuine: float, best_other: float) -> Searches:
    mated = np.column_stack([np.full(10, genuine), np.zeros(10), np.zeros(10)])
    return Searches(mated, np.column_stack([np.full(10, best_other), np.zeros(10)]))


def test_the_margin_floor_scales_with_the_packs_score_gap():
    assert margin_grid(_flat(0.70, 0.35))[0] == pytest.approx(0.05)
    assert margin_grid(_flat(0.956, 0.921))[0] == pytest.approx(0.005)
    assert list(margin_grid(_flat(0.70, 0.35))) == sorted(margin_grid(_flat(0.70, 0.35)))


def test_the_template_mode_is_chosen_on_the_calibration_half_only():
    from bench.openset import manifest_block

    def mode(fnir_cal: float, fnir_report: float, threshold: float) -> dict:
        report = {"fnir": fnir_report, "fpir": 0.05, "wrong_member": 0.0, "fpir_upper95": 0.14,
                  "wrong_member_upper95": 0.8, "mated": 350, "nonmated": 2000}
        return {"_calibration_rank": (fnir_cal, 0.001, False), "calibrated": {"threshold": threshold, "margin": 0.05},
                "report": report, "one_photo_on_same_probes": {"fnir": 9.0},
                "curve": [{"target_fpir": 0.1, "threshold": threshold}, {"target_fpir": 1.0, "threshold": threshold - 0.04}]}

    modes = {"1": mode(0.07, 10.0, 0.49), "2-mean": mode(0.04, 6.0, 0.52), "2-max": mode(0.03, 7.0, 0.51)}
    modes["2-mean"]["_calibration_rank"] = (0.04, 0.001, False)
    modes["2-max"]["_calibration_rank"] = (0.03, 0.001, True)
    block = manifest_block(modes)
    assert block["templates"]["mode"] == "max", "fewer misses on the calibration half, although more on the report half"
    assert (block["match_threshold"], block["templates"]["threshold"]) == (0.49, 0.51)
    assert all("_calibration_rank" not in m for m in modes.values())
    assert block["templates"]["floor"] == pytest.approx(0.47), "the chosen mode's FPIR-1% threshold"
