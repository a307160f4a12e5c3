"""Embeddings of the real photos, computed once with the product's FaceEngine and cached.

A scale run cannot afford face detection for 80 cameras on two cores, so the simulated boxes send
the embedding the real pack makes of each photo (the same vector a camera would send for that
face). The cache lives in the system temp folder, never in the repository: it is derived from
photos of people.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces"


@dataclass(frozen=True)
class Person:
    label: str  # the photo folder's name: the ground truth
    photos: tuple[Path, ...]  # photos in which the pack found a face, sorted
    vectors: np.ndarray  # one L2-normalised embedding per photo, same order


def _cache_file(pack: str, folder: Path) -> Path:
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"instore-fleet-{pack}-{digest}.npz"


def _compute(pack: str, folder: Path) -> dict[str, np.ndarray]:
    import cv2

    from protocol.facepack.engine import FaceEngine

    engine = FaceEngine.load(pack)
    arrays: dict[str, np.ndarray] = {}
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for photo in sorted(person.iterdir()):
            image = cv2.imread(str(photo))
            faces = engine.detect(image) if image is not None else []
            if faces:
                arrays[f"{person.name}/{photo.name}"] = engine.embed(image, faces[0])
    return arrays


def load_people(pack: str, folder: Path = FACES) -> list[Person]:
    """Every person with at least one usable photo; embeddings from the cache when present."""
    if not folder.is_dir():
        raise SystemExit(f"photo folder {folder} is missing (../shared/data/faces next to the repository)")
    cache = _cache_file(pack, folder)
    if cache.exists():
        with np.load(cache) as data:
            arrays = {key: data[key] for key in data.files}
    else:
        arrays = _compute(pack, folder)
        np.savez(cache, **arrays)
    people: dict[str, list[tuple[Path, np.ndarray]]] = {}
    for key in sorted(arrays):
        label, name = key.split("/", 1)
        people.setdefault(label, []).append((folder / label / name, arrays[key]))
    return [Person(label, tuple(p for p, _ in rows), np.stack([v for _, v in rows])) for label, rows in people.items()]
