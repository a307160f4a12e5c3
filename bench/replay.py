"""Replay frames for the edge benchmarks: people from a photo folder "walking in" to the camera.

Each person is one photo moved towards the centre and scaled up over ``frames`` frames, the way a
face grows in an entrance camera; generated in memory, never written to the repository.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PEOPLE = [SHARED_DATA / "faces" / f"deepface_id0{n}" / name
          for n, name in ((1, "img1.jpg"), (2, "img26.jpg"), (3, "img47.jpg"))]


def walk_in(photo: Path, size: tuple[int, int], frames: int = 30) -> list[np.ndarray]:
    width, height = size
    source = cv2.imread(str(photo))
    out = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        h = int(height * (0.45 + 0.35 * t))
        portrait = cv2.resize(source, (h * source.shape[1] // source.shape[0], h), interpolation=cv2.INTER_AREA)
        canvas = np.full((height, width, 3), 90, np.uint8)
        cx, cy = int(width * (0.3 + 0.2 * t)), height // 2
        x1, y1 = max(0, cx - portrait.shape[1] // 2), max(0, cy - h // 2)
        x2, y2 = min(width, x1 + portrait.shape[1]), min(height, y1 + h)
        canvas[y1:y2, x1:x2] = portrait[: y2 - y1, : x2 - x1]
        out.append(canvas)
    return out


def people_walking(size: tuple[int, int], gap: int = 10) -> list[np.ndarray]:
    """Every person walks in, with ``gap`` empty frames between them."""
    blank = np.full((size[1], size[0], 3), 90, np.uint8)
    return [f for photo in PEOPLE for f in walk_in(photo, size) + [blank] * gap]
