"""Quick look at a pack's score distributions on a labelled photo folder (one sub-folder per person).

The packs' thresholds are calibrated with ``bench/openset.py`` (open-set, ~1,250 people, calibrated
on one half and reported on the other); this script is a quick check on a small folder, such as a
brand's own staff photos, that the scores look like the manifest expects.

Prints the genuine and impostor score distributions, and the one-photo-enrolment case the
product actually runs (first photo enrols, every other photo probes); the last line is JSON with
``suggested_threshold``: the highest impostor score seen plus a safety margin, because a wrong
member on the guide screen costs far more than a missed one.

    uv run python bench/calibrate.py --faces ../shared/data/faces --pack scrfd500m-mbf
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import cv2
import numpy as np

from protocol.facepack.engine import FaceEngine

SAFETY_MARGIN = 0.03


def embed_folder(engine: FaceEngine, folder: Path) -> tuple[list[str], np.ndarray, int]:
    labels, vectors, undetected = [], [], 0
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for photo in sorted(person.iterdir()):
            image = cv2.imread(str(photo))
            faces = engine.detect(image) if image is not None else []
            if not faces:
                undetected += 1
                continue
            labels.append(person.name)
            vectors.append(engine.embed(image, faces[0]))
    return labels, np.stack(vectors), undetected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, required=True)
    parser.add_argument("--pack", default=None)
    args = parser.parse_args()
    engine = FaceEngine.load(args.pack)
    labels, vectors, undetected = embed_folder(engine, args.faces)
    scores = vectors @ vectors.T
    same = np.equal.outer(labels, labels)
    upper = np.triu(np.ones_like(same), k=1).astype(bool)
    genuine, impostor = scores[same & upper], scores[~same & upper]
    first = {label: labels.index(label) for label in dict.fromkeys(labels)}
    enrolled = np.array(list(first.values()))
    probes = [i for i in range(len(labels)) if i not in set(enrolled)]
    enrol_genuine = [float(scores[i, first[labels[i]]]) for i in probes]
    threshold = round(float(impostor.max()) + SAFETY_MARGIN, 2)
    result = {
        "pack": engine.pack.id,
        "photos": len(labels),
        "undetected": undetected,
        "genuine_mean": round(float(genuine.mean()), 3),
        "genuine_min": round(float(genuine.min()), 3),
        "impostor_mean": round(float(impostor.mean()), 3),
        "impostor_max": round(float(impostor.max()), 3),
        "one_photo_enrolment_genuine_min": round(min(enrol_genuine), 3),
        "suggested_threshold": threshold,
        "false_rejects_at_suggested": int(sum(s < threshold for s in enrol_genuine)),
        "probes": len(enrol_genuine),
        "current_threshold": engine.pack.match_threshold,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
