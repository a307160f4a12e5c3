"""The edge tracker's ``min_similarity`` per pack, from same-person and different-person scores.

    python bench/track_similarity.py [--packs scrfd500m-mbf,yunet-mbf,yunet-dlib] [--people 150] [--threads 2]

A track continues while each new face's cosine to the track's aggregate stays at or above
``min_similarity``; under it the face opens a new track (a swap: someone else stepped into the
box). A false split only costs a second arrival of the same person (the visit de-duplication
joins it); a missed split averages two people into one aggregate. So the value is the score that
keeps 99% of same-person pairs together (``KEEP``), measured on pairs of *different photos* of the
same person on the dev set's calibration half (``bench/openset.py``'s split and embedding cache),
which is pessimistic: consecutive frames of one track are far more alike. Different-person pairs
(every photo against one photo of each other person) give the share of swaps caught at that value.
The last line is JSON; ``track_min_similarity`` in each pack's manifest is this figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.openset import DEFAULT_DATA, embed_all, half_of, read_manifest
from protocol.facepack.manifests import get_pack

#: Share of same-person pairs a track must keep together.
KEEP = 0.99


def measure(pack_id: str, data: Path, people: int, threads: int) -> dict:
    members, _ = read_manifest(data)
    chosen = [name for name in members if half_of(name) == "calibration"][:people]
    files = [f for name in chosen for f in members[name]]
    vectors = embed_all(get_pack(pack_id), data, files, threads=threads, log=lambda *_: None)["vectors"]
    by_person = {name: [v for f in members[name] if (v := vectors.get(f)) is not None] for name in chosen}
    by_person = {k: v for k, v in by_person.items() if v}
    same = [float(a @ b) for faces in by_person.values() for a, b in itertools.combinations(faces, 2)]
    firsts = np.stack([faces[0] for faces in by_person.values()])
    names = list(by_person)
    different = [float(s) for i, name in enumerate(names) for face in by_person[name]
                 for j, s in enumerate(firsts @ face) if j != i]
    value = float(np.quantile(same, 1 - KEEP))
    return {
        "pack": pack_id, "people": len(by_person), "same_pairs": len(same), "different_pairs": len(different),
        "same_median": round(float(np.median(same)), 4), "different_median": round(float(np.median(different)), 4),
        "different_p999": round(float(np.quantile(different, 0.999)), 4),
        "track_min_similarity": round(value, 2),
        "same_kept_pct": round(100 * float(np.mean(np.array(same) >= round(value, 2))), 2),
        "swaps_caught_pct": round(100 * float(np.mean(np.array(different) < round(value, 2))), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packs", default="scrfd500m-mbf,yunet-mbf,yunet-dlib")
    parser.add_argument("--people", type=int, default=150, help="calibration-half people with 2-4 photos")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    started = time.monotonic()
    results = [measure(p, args.data, args.people, args.threads) for p in args.packs.split(",")]
    print(json.dumps({"bench": "track_similarity", "keep": KEEP, "packs": results,
                      "wall_s": round(time.monotonic() - started, 1)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
