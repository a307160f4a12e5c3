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

import cv2
import numpy as np

from protocol.device import QualityGates
from protocol.facepack import ModelPack
from protocol.facepack.engine import Face

#: Nose height between the eye line (0) and the mouth line (1) of a frontal face in the ArcFace template.
_FRONTAL_NOSE = (71.7366 - 51.6963) / (92.2041 - 51.6963)


@dataclass(frozen=True)
class Assessment:
    reason: str | None  # why the face is gated out, None if it passes
    yaw_deg: float
    pitch_deg: float
    sharpness: float

    @property
    def passed(self) -> bool:
        return self.reason is None


def head_pose(kps: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees, roll removed first; magnitudes only matter to the gates."""
    left_eye, right_eye, nose, mouth_l, mouth_r = kps.astype(np.float64)
    eye_mid, mouth_mid = (left_eye + right_eye) / 2, (mouth_l + mouth_r) / 2
    dx, dy = right_eye - left_eye
    eye_dist = math.hypot(dx, dy) or 1.0
    cos, sin = dx / eye_dist, dy / eye_dist

    def upright(p: np.ndarray) -> tuple[float, float]:
        x, y = p - eye_mid
        return x * cos + y * sin, -x * sin + y * cos

    nose_x, nose_y = upright(nose)
    _, mouth_y = upright(mouth_mid)
    # Nose tip stands about half an eye distance in front of the eyes: offset/eye_dist = tan(yaw)/2.
    yaw = math.degrees(math.atan(2 * nose_x / eye_dist))
    ratio = nose_y / mouth_y if mouth_y > 1e-6 else 0.0
    pitch = math.degrees(math.atan(2 * (ratio - _FRONTAL_NOSE)))
    return yaw, pitch


def sharpness(aligned: np.ndarray) -> float:
    """Variance of the Laplacian on the aligned 112x112 face: same scale for every face size."""
    gray = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


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
