"""Wi-Fi fusion by likelihood ratio on a simulated store with known truth (issue 18).

    python bench/wifi_fusion.py [--pack scrfd500m-mbf] [--visits 40000] [--phone-rate 0.3] \
        [--present-genuine 0.6] [--present-impostor 0.03] [--label-rate 0.5] [--seed 7]

Face scores are drawn from normal curves fitted to the pack's measured figures, not invented: a
member's probe scores N(mu_g, sd_g) against their template, with mu_g the median top-impostor score
plus the pack's genuine-impostor gap (``cloud.faces.calibration.SCORE_GAP``) and sd_g such that
the report half's FNIR at the threshold is met (``--fnir``, 10.3% for scrfd500m-mbf on the dev
set, docs/RECOGNITION.md); a stranger's best score against the gallery is N(mu_i, sd_i) with 0.1%
above the threshold and 1% above the uncertain floor (how both were calibrated). Half the visits
are members, half strangers. A member with a registered phone (``--phone-rate``) has it present at
the face with probability ``--present-genuine``; a stranger's best candidate has theirs present
by coincidence with ``--present-impostor`` (a companion carrying it, the member nearby).

Phase 1 (the labelled history): the face alone decides, the visits in the band are asked
(uncertain) and member cards shown; ``--label-rate`` of them get an answer (是/不是, 已接待, 不是本人).
The model is estimated from those labels exactly as the cloud does (``cloud.arrivals.fusion``).
Phase 2 (the measurement, fresh visits): how many borderline members the phone rescued (uncertain
-> member) and how many strangers it wrongly promoted, with the learned model and with the priors
alone. The old noisy-OR, applied only after the face already matched, rescued none by construction.
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cloud.arrivals.fusion import Model, decide, estimate, prior_slope
from cloud.cdp.members import Member
from cloud.faces.calibration import score_gap
from cloud.faces.matching import Match, uncertain_floor
from protocol.facepack import get_pack

CANDIDATE = Member(id="m", name="王芳", phone=None, gender="female", tier="会员", tags=[], categories=[],
                   face_consent=True, created=datetime(2026, 1, 1, tzinfo=UTC))


def curves(pack_id: str, fnir: float) -> tuple[float, float, float, float, float, float]:
    """(threshold, floor, mu_g, sd_g, mu_i, sd_i) for the pack."""
    pack = get_pack(pack_id)
    threshold, floor = pack.match_threshold, uncertain_floor(pack)
    z = NormalDist()
    sd_i = (threshold - floor) / (z.inv_cdf(0.999) - z.inv_cdf(0.99))
    mu_i = floor - z.inv_cdf(0.99) * sd_i
    mu_g = mu_i + score_gap(pack)
    sd_g = (mu_g - threshold) / -z.inv_cdf(fnir)
    return threshold, floor, mu_g, sd_g, mu_i, sd_i


def simulate(rng: np.random.Generator, n: int, curve: tuple[float, ...], args: argparse.Namespace) -> list[dict]:
    """n visits, half members and half strangers, with their score, truth and phone state."""
    _, _, mu_g, sd_g, mu_i, sd_i = curve
    genuine = rng.random(n) < 0.5
    scores = np.where(genuine, rng.normal(mu_g, sd_g, n), rng.normal(mu_i, sd_i, n))
    has_phone = rng.random(n) < args.phone_rate
    present = rng.random(n) < np.where(genuine, args.present_genuine, args.present_impostor)
    return [{"score": float(s), "genuine": bool(g), "phone": ("present" if p else "absent") if h else None}
            for s, g, h, p in zip(scores, genuine, has_phone, present, strict=True)]


def face_decision(score: float, threshold: float, floor: float) -> str:
    return "member" if score >= threshold else "uncertain" if score >= floor else "visitor"


def measure(model: Model, visits: list[dict], threshold: float, floor: float) -> dict:
    in_band = [v for v in visits if face_decision(v["score"], threshold, floor) == "uncertain"]
    rescued = promoted = 0
    for v in in_band:
        match = Match(None, v["score"], "uncertain", candidate=CANDIDATE, threshold=threshold, floor=floor)
        if decide(model, match, v["phone"]).match.reason == "wifi":
            rescued += v["genuine"]
            promoted += not v["genuine"]
    members_in_band = sum(v["genuine"] for v in in_band)
    strangers = sum(not v["genuine"] for v in visits)
    members = len(visits) - strangers
    with_phone = sum(v["genuine"] and v["phone"] is not None for v in in_band)
    return {
        "members": members, "strangers": strangers,
        "members_in_band": members_in_band, "members_in_band_with_phone": with_phone,
        "members_rescued": rescued,
        "rescued_of_band_pct": round(100 * rescued / max(members_in_band, 1), 1),
        "member_fnir_face_pct": round(100 * sum(v["genuine"] and v["score"] < threshold for v in visits)
                                      / max(members, 1), 2),
        "member_fnir_fused_pct": round(100 * (sum(v["genuine"] and v["score"] < threshold for v in visits) - rescued)
                                       / max(members, 1), 2),
        "strangers_in_band": sum(not v["genuine"] for v in in_band),
        "strangers_promoted": promoted,
        "fpir_added_pct": round(100 * promoted / max(strangers, 1), 3),
        "bar_with_phone": round(threshold - model.log_lr("present") / model.slope, 4) if model.slope else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pack", default="scrfd500m-mbf")
    parser.add_argument("--fnir", type=float, default=0.103, help="the pack's FNIR at its threshold (dev set)")
    parser.add_argument("--visits", type=int, default=40_000, help="per phase")
    parser.add_argument("--phone-rate", type=float, default=0.3, help="members with a registered phone")
    parser.add_argument("--present-genuine", type=float, default=0.6)
    parser.add_argument("--present-impostor", type=float, default=0.03)
    parser.add_argument("--label-rate", type=float, default=0.5, help="shown or asked cards that get an answer")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.process_time()
    rng = np.random.default_rng(args.seed)
    curve = curves(args.pack, args.fnir)
    threshold, floor = curve[0], curve[1]

    history = simulate(rng, args.visits, curve, args)
    labelled = [v for v in history if face_decision(v["score"], threshold, floor) != "visitor"
                and rng.random() < args.label_rate]
    rows = [(v["score"] - threshold, v["genuine"], v["phone"]) for v in labelled]
    b0 = prior_slope(threshold, floor)
    learned, prior = estimate(rows, b0), estimate([], b0)
    fresh = simulate(rng, args.visits, curve, args)
    true_lr = args.present_genuine / args.present_impostor
    result = {
        "bench": "wifi_fusion", "pack": args.pack, "threshold": threshold, "floor": floor,
        "curves": {"genuine": [round(curve[2], 4), round(curve[3], 4)], "impostor": [round(curve[4], 4),
                                                                                  round(curve[5], 4)]},
        "phone_rate": args.phone_rate, "present_genuine": args.present_genuine,
        "present_impostor": args.present_impostor, "true_lr_present": round(true_lr, 2),
        "labels": len(rows), "labels_with_phone": learned.phone_labels,
        "learned": {"lr_present": round(math.exp(learned.log_lr("present")), 2), "slope": round(learned.slope, 1),
                    "intercept": round(learned.intercept, 2), **measure(learned, fresh, threshold, floor)},
        "priors_only": {"lr_present": round(math.exp(prior.log_lr("present")), 2), "slope": round(prior.slope, 1),
                        **measure(prior, fresh, threshold, floor)},
        "noisy_or_rescued": 0,
        "cpu_s": round(time.process_time() - started, 2),
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
