"""Turning an uploaded photo into a member's gallery face, or a reason why not.

Enrolment photos are taken at a counter or uploaded by HQ, so the checks are strict: exactly one
clear face, large enough for the pack to embed reliably. A face that merely *might* be the member
would later match the wrong person at the door. Background faces much smaller than the main one
(people walking past) are ignored rather than rejected.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass
from http import HTTPStatus
from typing import ClassVar, Literal

import cv2
import numpy as np

from cloud.cdp import members
from cloud.db import Database
from cloud.errors import CodedError, TooLarge, TooManyRequests
from cloud.faces import enrolled, thumbnails
from cloud.faces.gallery import FaceIndex
from protocol.facepack.engine import FaceEngine, ImageError, decode_image
from protocol.facepack.quality import ENROL_MAX_PITCH_DEG, ENROL_MAX_YAW_DEG, frontal_enough, head_pose, sharpness

#: The largest photo (width x height) decoded by default: a 48 KB PNG can declare 20000x20000 and
#: take 2.6 GB and 20 s to decode, so the size is read from the header first.
MAX_PIXELS = 40_000_000
#: Photos decoded and searched at once; more wait, and past ``DECODE_WAIT_S`` are refused (429).
DECODE_SLOTS = 2
DECODE_WAIT_S = 20.0
#: The formats whose header is read before decoding; anything else is refused undecoded.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
_decoding = threading.BoundedSemaphore(DECODE_SLOTS)
#: A guide screen's live crop is at most 400 px square (``protocol.device.LocalCropSettings``).
MAX_CROP_PIXELS = 400 * 400

#: A face counts as a second candidate when its area is at least this share of the largest face.
CANDIDATE_AREA_RATIO = 0.25

#: Enrolment's quality check (issue 18): stricter than the door's gates, because one bad template
#: costs every later arrival of the member. Refusals name the reason (code) and say it in Chinese.
ENROL_MIN_FACE_PX = 80
#: Variance of the Laplacian of the aligned crop; MobileFaceNet's 112x112 crop of a sharp photo reads
#: 600+ on the sample faces, dlib's 150x150 chip (more cheek and hair, smoother) 90-400, so per crop size.
ENROL_MIN_SHARPNESS = {112: 100.0}
ENROL_MIN_SHARPNESS_OTHER = 50.0
#: SCRFD scores clear, large frontal faces 0.70-0.80; YuNet 0.9+: below 0.6 the detector itself doubts.
ENROL_MIN_DET_SCORE = 0.6

EnrolErrorCode = Literal[
    "unknown_member", "no_consent", "empty_file", "not_an_image", "no_face", "several_faces", "face_too_small",
    "unsupported_image", "blurred", "turned_away", "low_detector_score", "unlike_other_photos",
]


class ImageTooLarge(TooLarge):
    """The photo's header declares more pixels than the budget (413); it is never decoded."""

    code = "image_too_large"


class DecoderBusy(TooManyRequests):
    """Every decoding slot stayed busy (429): enrolment photos are decoded a few at a time."""

    code = "decoder_busy"


def check_header(photo: bytes, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """The photo's (width, height) from its header alone (Pillow reads it lazily, nothing is
    decoded); refused when it is no JPEG/PNG/WebP/BMP or declares more than ``max_pixels``."""
    from PIL import Image, UnidentifiedImageError

    if not photo:
        raise EnrolError("empty_file", "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(photo), formats=FORMATS) as header:
                width, height = header.size
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"the photo declares more than {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise EnrolError("not_an_image", f"not a JPEG, PNG, WebP or BMP photo ({exc})") from None
    if width * height > max_pixels:
        raise ImageTooLarge(f"the photo is {width}x{height} = {width * height} pixels; at most {max_pixels}")
    return width, height


class EnrolError(CodedError):
    """A photo or member that cannot be enrolled: unknown member (404), no consent (409), else 422."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    statuses: ClassVar[dict[str, int]] = {"unknown_member": HTTPStatus.NOT_FOUND, "no_consent": HTTPStatus.CONFLICT}

    def __init__(self, code: EnrolErrorCode, message: str) -> None:
        super().__init__(code, message)


@dataclass(frozen=True)
class Enrolled:
    face_id: str
    det_score: float
    face_px: int


class Enroller:
    def __init__(self, engine: FaceEngine, db: Database, index: FaceIndex) -> None:
        self._engine = engine
        self._db = db
        self._index = index
        # insightface's detector caches anchors in a plain dict; one photo at a time keeps it sane.
        self._engine_lock = threading.Lock()

    def enrol(self, member_id: str, photo: bytes, *, max_pixels: int = MAX_PIXELS) -> Enrolled:
        self._consenting(member_id)
        check_header(photo, max_pixels)
        if not _decoding.acquire(timeout=DECODE_WAIT_S):
            raise DecoderBusy("every photo decoder is busy; retry shortly")
        try:
            return self._enrol_decoded(member_id, photo)
        finally:
            _decoding.release()

    def enrol_crop(self, member_id: str, jpeg: bytes) -> str:
        """Enrol a guide screen's live crop (``cloud.arrivals.joining``): already the aligned face the
        edge's pack embedded, so only the sharpness check applies; the new face's id."""
        self._consenting(member_id)
        width, height = check_header(jpeg, MAX_CROP_PIXELS)
        if width != height:
            raise EnrolError("unsupported_image", f"a live crop is square; this one is {width}x{height}")
        try:
            aligned = decode_image(jpeg)
        except (ImageError, cv2.error) as exc:
            raise EnrolError("not_an_image", str(exc).strip()[:200]) from None
        side = self._engine.aligned_px
        if width != side:  # the store's crop size setting (LocalCropSettings.size_px) scales the same template
            aligned = cv2.resize(aligned, (side, side), interpolation=cv2.INTER_AREA if width > side else cv2.INTER_CUBIC)
        with self._engine_lock:
            self._check_sharp(aligned)
            vector = self._engine.embed_aligned([aligned])[0]
        return self._keep(member_id, aligned, vector, det_score=None).id

    def _consenting(self, member_id: str) -> None:
        member = members.member(self._db, member_id)
        if member is None:
            raise EnrolError("unknown_member", f"no member {member_id}")
        if not member.face_consent:
            raise EnrolError("no_consent", "the member has not consented to face recognition")

    @staticmethod
    def _check_sharp(aligned: np.ndarray) -> None:
        sharp, min_sharp = sharpness(aligned), ENROL_MIN_SHARPNESS.get(aligned.shape[0], ENROL_MIN_SHARPNESS_OTHER)
        if sharp < min_sharp:
            raise EnrolError("blurred", f"照片模糊，请重拍: the face's sharpness is {sharp:.0f}; at least {min_sharp:.0f}")

    def _enrol_decoded(self, member_id: str, photo: bytes) -> Enrolled:
        try:
            image = decode_image(photo)
        except (ImageError, cv2.error) as exc:
            raise EnrolError("empty_file" if not photo else "not_an_image", str(exc).strip()[:200]) from None
        pack = self._engine.pack
        with self._engine_lock:
            faces = self._engine.detect(image)
            if not faces:
                raise EnrolError("no_face", "no face found in the photo")
            largest = faces[0]
            candidates = sum(1 for f in faces if f.area >= CANDIDATE_AREA_RATIO * largest.area)
            if candidates > 1:
                raise EnrolError("several_faces", f"{candidates} faces in the photo; enrol one person per photo")
            min_px = max(pack.min_face_px, ENROL_MIN_FACE_PX)
            if largest.size_px < min_px:
                raise EnrolError(
                    "face_too_small", f"人脸太小，请靠近拍摄: the face is {largest.size_px} px; at least {min_px} px needed"
                )
            if largest.score < ENROL_MIN_DET_SCORE:
                raise EnrolError("low_detector_score", f"人脸不清楚，请重拍: the detector's score is {largest.score:.2f}; "
                                 f"at least {ENROL_MIN_DET_SCORE} needed")
            if not frontal_enough(largest.kps):
                yaw, pitch = head_pose(largest.kps)
                raise EnrolError("turned_away", f"请正对镜头: the head is turned (yaw {yaw:.0f} deg, pitch {pitch:.0f} deg; "
                                 f"at most {ENROL_MAX_YAW_DEG:.0f} and {ENROL_MAX_PITCH_DEG:.0f})")
            aligned = self._engine.align(image, largest)
            self._check_sharp(aligned)
            vector = self._engine.embed_aligned([aligned])[0]
        face = self._keep(member_id, aligned, vector, det_score=largest.score)
        return Enrolled(face_id=face.id, det_score=largest.score, face_px=largest.size_px)

    def _keep(self, member_id: str, aligned: np.ndarray, vector: np.ndarray, *, det_score: float | None) -> enrolled.StoredFace:
        """The member's new gallery face, unless it is unlike the faces they have: stored, its
        thumbnail kept for the card, and in this process's index at once."""
        pack = self._engine.pack
        mean = enrolled.mean_template(enrolled.member_vectors(self._db, member_id, pack.recogniser.embedding_space))
        if mean is not None:
            similarity = float(np.dot(mean, vector / (np.linalg.norm(vector) or 1.0)))
            if similarity < pack.match_threshold:
                raise EnrolError("unlike_other_photos", f"这张照片不像该会员已登记的照片，可能是别人: its similarity to the "
                                 f"member's enrolled photos is {similarity:.3f}, under {pack.id}'s threshold "
                                 f"{pack.match_threshold}")
        face = enrolled.add_face(
            self._db, member_id=member_id, vector=vector, embedding_space=pack.recogniser.embedding_space,
            pack_id=pack.id, det_score=det_score,
        )
        # the card's enrolled photo: the aligned face the recogniser saw, not the uploaded photo
        thumbnails.save(self._db, member_id, face.id, thumbnails.encode(aligned))
        self._index.add(face.member_id, vector, face_id=face.id, n=face.n)
        return face
