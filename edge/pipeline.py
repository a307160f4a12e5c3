"""Frame -> faces -> arrivals.

Faces below the pack's detector score or minimum size are not embedded: an embedding of a tiny
or doubtful face is exactly what produces a confident wrong match downstream.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from protocol.embedding import Embedding
from protocol.facepack.engine import Face, FaceEngine
from protocol.messages import Arrival, FaceQuality, new_id

from edge.sources import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    brand: str
    store: str
    device: str


@dataclass
class PipelineStats:
    frames: int = 0
    faces: int = 0
    arrivals: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


class FacePipeline:
    def __init__(self, engine: FaceEngine, placement: Placement) -> None:
        self.engine = engine
        self.placement = placement
        self.stats = PipelineStats()

    def _usable(self, face: Face) -> str | None:
        """Why a face is not worth embedding, or None."""
        if face.score < self.engine.pack.detector.score_threshold:
            return "low_score"
        if face.size_px < self.engine.pack.min_face_px:
            return "too_small"
        return None

    def process(self, frame: Frame) -> list[Arrival]:
        self.stats.frames += 1
        arrivals = []
        for number, face in enumerate(self.engine.detect(frame.image)):
            self.stats.faces += 1
            reason = self._usable(face)
            if reason:
                self.stats.rejected[reason] += 1
                continue
            vector = self.engine.embed(frame.image, face)
            x1, y1, x2, y2 = (int(round(v)) for v in face.bbox)
            arrivals.append(
                Arrival(
                    event_id=new_id(),
                    ts=frame.ts,
                    brand=self.placement.brand,
                    store=self.placement.store,
                    device=self.placement.device,
                    camera=frame.camera,
                    track_id=f"f{frame.index}-{number}",
                    embedding=Embedding.from_vector(vector),
                    quality=FaceQuality(det_score=min(1.0, face.score), face_px=face.size_px, bbox=(x1, y1, x2, y2)),
                    model_pack=self.engine.pack.id,
                )
            )
        self.stats.arrivals += len(arrivals)
        log.debug("%s: %d faces, %d arrivals", frame.origin, self.stats.faces, len(arrivals))
        return arrivals
