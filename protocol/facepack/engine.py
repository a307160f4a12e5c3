"""Detect, align and embed faces with a verified model pack.

SCRFD runs through insightface's model zoo and YuNet through OpenCV; both give a box and five
landmarks. An ``arcface`` recogniser runs on onnxruntime directly because its preprocessing
(per-channel mean/std from the manifest) is not what insightface's ArcFace wrapper applies. A
``dlib`` recogniser aligns as dlib expects: its 5-point shape predictor inside the detector's box,
then dlib's 150x150 face chip (padding 0.25); its 128-d descriptor is L2-normalised like every other
pack's, so a score is always a cosine similarity.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from protocol.facepack.manifests import ModelPack, get_pack, models_dir, verify

# insightface's aligner calls a scikit-image API deprecated in 0.26; the result is unchanged.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"insightface\.utils\.face_align")


#: dlib's face chip: the size and padding its ResNet recogniser was trained on.
DLIB_CHIP, DLIB_PADDING = 150, 0.25
#: SCRFD's largest feature stride: its input's sides must be multiples of it.
SCRFD_STRIDE = 32
#: The ArcFace alignment template's side (insightface norm_crop).
ARCFACE_PX = 112


class ImageError(ValueError):
    """Bytes that do not decode to an image."""


@dataclass(frozen=True)
class Face:
    bbox: tuple[float, float, float, float]
    kps: np.ndarray  # (5, 2) float32: eyes, nose, mouth corners
    score: float

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.bbox
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)

    @property
    def size_px(self) -> int:
        x1, y1, x2, y2 = self.bbox
        return max(1, int(min(x2 - x1, y2 - y1)))


def decode_image(data: bytes) -> np.ndarray:
    if not data:
        raise ImageError("empty file")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError("not a decodable image (JPEG, PNG, WebP, BMP, ...)")
    return image


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class FaceEngine:
    def __init__(self, pack: ModelPack, folder: Path, *, threads: int = 2) -> None:
        # insightface's aligner module pulls in scikit-image: ~1.5 s, paid here rather than on the
        # first face, which would make a box's first arrival that much late.
        from insightface.utils import face_align

        self._norm_crop = face_align.norm_crop
        self.pack = pack
        paths = verify(pack, folder)
        det = pack.detector
        self._det_path = paths[det.file.name]
        if det.kind == "scrfd":
            from insightface.model_zoo.scrfd import SCRFD

            self._scrfd = SCRFD(model_file=str(self._det_path), session=_session(self._det_path, threads))
            self._scrfd.prepare(ctx_id=-1, input_size=(det.input_size, det.input_size), det_thresh=det.score_threshold)
        else:
            cv2.setNumThreads(threads)
            self._yunet = cv2.FaceDetectorYN.create(str(self._det_path), "", (det.input_size, det.input_size), det.score_threshold)
        rec = pack.recogniser
        if rec.kind == "dlib":
            import dlib  # the `commercial-pack` extra

            assert rec.landmarks is not None
            self._shape = dlib.shape_predictor(str(paths[rec.landmarks.name]))
            self._dlib_rec = dlib.face_recognition_model_v1(str(paths[rec.file.name]))
            self._dlib = dlib
        else:
            self._rec = _session(paths[rec.file.name], threads)
            self._rec_input = self._rec.get_inputs()[0].name
        self._mean = np.array(rec.mean, dtype=np.float32)
        self._std = np.array(rec.std, dtype=np.float32)

    @classmethod
    def load(cls, pack_id: str | None = None, folder: str | Path | None = None, *, threads: int = 2) -> FaceEngine:
        return cls(get_pack(pack_id), models_dir(folder), threads=threads)

    def detect(self, image: np.ndarray, *, frame_px: int | None = None) -> list[Face]:
        """Faces in a BGR image, largest first.

        ``frame_px``: the longer side of the whole frame ``image`` was cut from (a camera's door
        zone): the detector then works at the scale it would use for that frame, so the zone finds
        the faces the whole frame would, at a fraction of the cost. None: ``image`` is the frame."""
        frame_px = frame_px or max(image.shape[:2])
        if self.pack.detector.kind == "scrfd":
            boxes, kps = self._scrfd.detect(image, input_size=self._scrfd_input(image, frame_px))
            faces = [
                Face((float(b[0]), float(b[1]), float(b[2]), float(b[3])), k.astype(np.float32), float(b[4]))
                for b, k in zip(boxes, kps if kps is not None else [None] * len(boxes))
            ]
        else:
            faces = self._detect_yunet(image, frame_px)
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def _scrfd_input(self, image: np.ndarray, frame_px: int) -> tuple[int, int]:
        """SCRFD's input (width, height) for this image: the image scaled as before (its longer side to
        the pack's input size), each side rounded up to SCRFD's largest stride, 32, instead of the
        square it was letterboxed into. The faces are drawn at the same scale, so they are found as
        before, while the padding is no longer computed: a 640x480 camera frame is a 640x480 input,
        25 % less work than 640x640 (44 % for 16:9)."""
        h, w = image.shape[:2]
        scale = self.pack.detector.input_size / frame_px
        return -(-round(w * scale) // SCRFD_STRIDE) * SCRFD_STRIDE, -(-round(h * scale) // SCRFD_STRIDE) * SCRFD_STRIDE

    def _detect_yunet(self, image: np.ndarray, frame_px: int) -> list[Face]:
        scale = min(1.0, self.pack.detector.input_size / frame_px)
        view = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
        self._yunet.setInputSize((view.shape[1], view.shape[0]))
        _, found = self._yunet.detect(view)
        if found is None:
            return []
        faces = []
        for row in found:
            x, y, bw, bh = (row[:4] / scale).tolist()
            kps = (row[4:14].reshape(5, 2) / scale).astype(np.float32)
            faces.append(Face((x, y, x + bw, y + bh), kps, float(row[14])))
        return faces

    @property
    def aligned_px(self) -> int:
        """The side of the aligned face the recogniser takes: 112 (arcface) or 150 (dlib)."""
        return DLIB_CHIP if self.pack.recogniser.kind == "dlib" else ARCFACE_PX

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The aligned BGR face the recogniser takes, ``aligned_px`` square."""
        if self.pack.recogniser.kind == "dlib":
            return self._dlib_chip(image, face)
        return self._norm_crop(image, face.kps, image_size=ARCFACE_PX)

    def _dlib_chip(self, image: np.ndarray, face: Face) -> np.ndarray:
        # Only the face's neighbourhood is converted to RGB: the chip (padding 0.25) lies well
        # inside a region one face-size wider on every side.
        x1, y1, x2, y2 = face.bbox
        side = max(x2 - x1, y2 - y1)
        h, w = image.shape[:2]
        left, top = max(0, int(x1 - side)), max(0, int(y1 - side))
        right, bottom = min(w, int(x2 + side) + 1), min(h, int(y2 + side) + 1)
        region = np.ascontiguousarray(image[top:bottom, left:right, ::-1])
        rect = self._dlib.rectangle(int(round(x1 - left)), int(round(y1 - top)), int(round(x2 - left)), int(round(y2 - top)))
        shape = self._shape(region, rect)
        chip = self._dlib.get_face_chip(region, shape, size=DLIB_CHIP, padding=DLIB_PADDING)
        return np.ascontiguousarray(chip[..., ::-1])

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The L2-normalised embedding of one detected face."""
        return self.embed_aligned([self.align(image, face)])[0]

    def embed_aligned(self, crops: list[np.ndarray]) -> np.ndarray:
        rec = self.pack.recogniser
        if rec.kind == "dlib":
            chips = [np.ascontiguousarray(c[..., ::-1]) for c in crops]
            out = np.array(self._dlib_rec.compute_face_descriptor(chips), dtype=np.float32).reshape(len(chips), -1)
            return out / np.linalg.norm(out, axis=1, keepdims=True)
        batch = np.stack(crops).astype(np.float32)
        if rec.color == "RGB":
            batch = batch[..., ::-1]
        batch = (batch * np.float32(rec.scale) - self._mean) / self._std
        out = self._rec.run(None, {self._rec_input: np.ascontiguousarray(batch.transpose(0, 3, 1, 2))})[0]
        return out / np.linalg.norm(out, axis=1, keepdims=True)
