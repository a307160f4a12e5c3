"""Face quality measures shared by the edge's gates and the cloud's enrolment check.

Head pose comes from the detector's five landmarks (no extra model): the nose's offset from the
eyes' midpoint, relative to the eye distance, grows with the tangent of the yaw; its height between
eye line and mouth line moves with the pitch. Sharpness is the variance of the Laplacian of the
aligned crop.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: The turn a member's enrolment photo may have: yaw from the five landmarks is reliable; pitch reads
#: +10..+27 deg on frontal portrait photos taken from slightly below, so its bound is looser.
ENROL_MAX_YAW_DEG = 25.0
ENROL_MAX_PITCH_DEG = 30.0

#: Nose height between the eye line (0) and the mouth line (1) of a frontal face in the ArcFace template.
_FRONTAL_NOSE = (71.7366 - 51.6963) / (92.2041 - 51.6963)


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


def frontal_enough(kps: np.ndarray, margin_deg: float = 0.0) -> bool:
    """Whether a face is turned little enough for an enrolment photo (the cloud's enrolment check);
    ``margin_deg`` tightens both bounds, for a choice made before the photo is cropped and re-detected."""
    yaw, pitch = head_pose(kps)
    return abs(yaw) <= ENROL_MAX_YAW_DEG - margin_deg and abs(pitch) <= ENROL_MAX_PITCH_DEG - margin_deg


def sharpness(aligned: np.ndarray) -> float:
    """Variance of the Laplacian on the aligned face crop (the pack's own size): same scale for every face size."""
    gray = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())
