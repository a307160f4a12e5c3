"""Quality gates: which detected faces are worth an embedding.

An embedding of a tiny, blurred or turned-away face is what produces a confident wrong match
downstream, and embedding costs CPU, so a face must pass every gate first. Head pose comes from
the detector's five landmarks (no extra model): the nose's offset from the eyes' midpoint, relative
to the eye distance, grows with the tangent of the yaw; its height between eye line and mouth line
moves with the pitch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from protocol.device import QualityGates
from protocol.facepack import ModelPack
from protocol.facepack.engine import Face
from protocol.facepack.quality import head_pose, sharpness


@dataclass(frozen=True)
class Assessment:
    reason: str | None  # why the face is gated out, None if it passes
    yaw_deg: float
    pitch_deg: float
    sharpness: float

    @property
    def passed(self) -> bool:
        return self.reason is None


class Gates:
    def __init__(self, settings: QualityGates, pack: ModelPack) -> None:
        self.settings = settings
        self.min_face_px = settings.min_face_px or pack.min_face_px
        self.min_det_score = settings.min_det_score if settings.min_det_score is not None else pack.detector.score_threshold

    def cheap(self, face: Face) -> Assessment:
        """The gates that need no pixels: score, size, pose."""
        yaw, pitch = head_pose(face.kps)
        reason = None
        if face.score < self.min_det_score:
            reason = "low_score"
        elif face.size_px < self.min_face_px:
            reason = "too_small"
        elif abs(yaw) > self.settings.max_yaw_deg:
            reason = "yaw"
        elif abs(pitch) > self.settings.max_pitch_deg:
            reason = "pitch"
        return Assessment(reason, yaw, pitch, 0.0)

    def assess(self, face: Face, aligned: np.ndarray | None) -> Assessment:
        """All gates; ``aligned`` (the 112 px crop) is only looked at if the cheap gates pass."""
        first = self.cheap(face)
        if not first.passed or aligned is None:
            return first
        sharp = sharpness(aligned)
        reason = "blurred" if sharp < self.settings.min_sharpness else None
        return Assessment(reason, first.yaw_deg, first.pitch_deg, sharp)


def quality_score(face: Face, assessment: Assessment) -> float:
    """Orders a track's faces: confident, large, frontal and sharp first."""
    frontal = math.cos(math.radians(assessment.yaw_deg)) * math.cos(math.radians(assessment.pitch_deg))
    return face.score * min(1.0, face.size_px / 112) * frontal * min(1.0, assessment.sharpness / 200)
