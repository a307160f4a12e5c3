"""Tracks: one person walking in is one track, however many frames show them.

Association is greedy by box overlap (IoU), as in ByteTrack's first stage; overlap alone would
chain two different people who stand at the same spot one after the other (portraits in a folder,
a cut in a video), so an embedded face that does not resemble its track's aggregate breaks the
association and starts a new track. Tracks never outlive their scene: every file of an image
folder is a scene of its own, a video or a stream is one scene.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from protocol.device import TrackingSettings
from protocol.facepack.engine import Face


@dataclass
class Sample:
    """One embedded face of a track."""

    vector: np.ndarray
    score: float  # quality_score: higher is better
    face: Face
    ts: datetime
    origin: str
    crop: np.ndarray  # the aligned 112 px face, for the store-local crop


@dataclass(eq=False)
class Track:
    id: str
    camera: str
    bbox: tuple[float, float, float, float]
    last_frame: int
    missed: int = 0
    samples: list[Sample] = field(default_factory=list)
    first_usable_ts: datetime | None = None
    announced: bool = False  # an arrival (or a same-visit decision) was made
    frames_since_embed: int = 0

    def aggregate(self) -> np.ndarray | None:
        """Mean of the kept faces, re-normalised: steadier than any single frame."""
        if not self.samples:
            return None
        mean = np.mean([s.vector for s in self.samples], axis=0)
        return mean / (np.linalg.norm(mean) or 1.0)

    def best(self) -> Sample:
        return max(self.samples, key=lambda s: s.score)

    def keep(self, sample: Sample, limit: int) -> None:
        """Keep the ``limit`` best faces."""
        self.samples.append(sample)
        self.samples.sort(key=lambda s: s.score, reverse=True)
        del self.samples[limit:]
        if self.first_usable_ts is None:
            self.first_usable_ts = sample.ts


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class Tracker:
    """The open tracks of one camera."""

    _serial = itertools.count(1)

    def __init__(self, camera: str, settings: TrackingSettings, run_id: str, pack_similarity: float) -> None:
        """``pack_similarity``: the running pack's ``track_min_similarity``, unless the settings name one."""
        self.camera = camera
        self.settings = settings
        self.pack_similarity = pack_similarity
        self.run_id = run_id
        self.tracks: list[Track] = []

    def associate(self, faces: list[Face]) -> list[Track | None]:
        """For each face, the open track it continues by overlap (greedy, best IoU first), or None."""
        pairs = sorted(
            ((iou(t.bbox, f.bbox), ti, fi) for ti, t in enumerate(self.tracks) for fi, f in enumerate(faces)),
            reverse=True,
        )
        matched: list[Track | None] = [None] * len(faces)
        used: set[int] = set()
        for overlap, ti, fi in pairs:
            if overlap < self.settings.min_iou:
                break
            if ti in used or matched[fi] is not None:
                continue
            used.add(ti)
            matched[fi] = self.tracks[ti]
        return matched

    def resembles(self, track: Track, vector: np.ndarray) -> bool:
        aggregate = track.aggregate()
        return aggregate is None or float(aggregate @ vector) >= self.min_similarity

    @property
    def min_similarity(self) -> float:
        """The settings' value if set, else the pack's: cosines are not comparable across recognisers
        (dlib's same-person scores sit near 0.95, MobileFaceNet's near 0.7)."""
        chosen = self.settings.min_similarity
        return chosen if chosen is not None else self.pack_similarity

    def open(self, face: Face, frame_index: int) -> Track:
        track = Track(f"{self.run_id}-{next(self._serial)}", self.camera, face.bbox, frame_index)
        self.tracks.append(track)
        return track

    def step(self, seen: dict[int, tuple[Track, Face]], frame_index: int) -> list[Track]:
        """Move the seen tracks to their new boxes, age the others; return the tracks that ended."""
        for track, face in seen.values():
            track.bbox, track.last_frame, track.missed = face.bbox, frame_index, 0
        ended = []
        for track in self.tracks:
            if id(track) not in seen:
                track.missed += 1
                if track.missed > self.settings.max_missed_frames:
                    ended.append(track)
        self.tracks = [t for t in self.tracks if t not in ended]
        return ended

    def close_all(self) -> list[Track]:
        ended, self.tracks = self.tracks, []
        return ended
