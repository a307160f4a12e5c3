"""Camera sources: an image folder or file, a video file, an RTSP stream or a USB camera.

All yield the same ``Frame``; the capture timestamp is taken when the frame is read, because the
door-to-screen latency the product promises starts at that moment.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm"})


class SourceError(RuntimeError):
    """A source that cannot be opened at all."""


@dataclass(frozen=True)
class Frame:
    camera: str
    index: int
    ts: datetime
    image: np.ndarray
    origin: str  # file name or stream position, for logs


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _images(camera: str, files: list[Path], skipped: list[str], fps: float | None) -> Iterator[Frame]:
    for index, path in enumerate(files):
        if fps and index:
            time.sleep(1.0 / fps)  # a replayed folder paces like a camera when asked to
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            log.warning("camera %s: skipping %s: not a decodable image", camera, path)
            skipped.append(str(path))
            continue
        yield Frame(camera, index, _now(), image, str(path))


def _capture(camera: str, target: str | int, fps: float | None) -> Iterator[Frame]:
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        raise SourceError(f"camera {camera}: cannot open {target!r}")
    interval = 1.0 / fps if fps else 0.0
    index, next_due = 0, time.monotonic()
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                return
            if interval and time.monotonic() < next_due:
                continue  # rate limit by dropping frames, never by queueing them
            next_due = time.monotonic() + interval
            yield Frame(camera, index, _now(), image, f"{target}#{index}")
            index += 1
    finally:
        cap.release()


class Source:
    """What ``--source`` names, opened lazily; ``skipped`` lists unreadable files with reasons."""

    def __init__(self, spec: str, camera: str, fps: float | None = None) -> None:
        self.spec, self.camera, self.fps = spec, camera, fps
        self.skipped: list[str] = []
        path = Path(spec)
        if spec.isdigit():
            self._kind = "usb"
        elif "://" in spec:
            self._kind = "stream"
        elif path.is_dir():
            self._kind = "folder"
        elif path.is_file():
            self._kind = "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"
        else:
            raise SourceError(f"camera {camera}: source {spec!r} is neither a file, a folder, a URL nor a USB index")
        if self._kind == "folder" and not _image_files(path):
            raise SourceError(f"camera {camera}: folder {spec} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    @property
    def finite(self) -> bool:
        return self._kind in ("folder", "image", "video")

    def frames(self) -> Iterator[Frame]:
        if self._kind == "folder":
            return _images(self.camera, _image_files(Path(self.spec)), self.skipped, self.fps)
        if self._kind == "image":
            return _images(self.camera, [Path(self.spec)], self.skipped, self.fps)
        target: str | int = int(self.spec) if self._kind == "usb" else self.spec
        return _capture(self.camera, target, self.fps)
