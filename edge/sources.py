"""Camera sources: an image folder or file, a video file, an RTSP stream or a USB camera.

All yield the same ``Frame``; the capture timestamp is taken when the frame is read, because the
door-to-screen latency the product promises starts at that moment. A frame's ``scene`` says which
frames show one continuous view: every file of an image folder is a scene of its own (two
portraits at the same spot are not one person walking), a video or one connection to a stream is
one scene.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
    scene: str  # frames of one scene may continue each other's tracks


def _now() -> datetime:
    return datetime.now(UTC)


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
        yield Frame(camera, index, _now(), image, str(path), str(path))


def _capture(camera: str, target: str | int, fps: float | None, live: bool) -> Iterator[Frame]:
    """A live camera is rate-limited by dropping frames (never by queueing them); a replayed video
    file is paced by waiting, so that it plays like the camera it was recorded with."""
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        raise SourceError(f"camera {camera}: cannot open {target!r}")
    interval = 1.0 / fps if fps else 0.0
    index, next_due, scene = 0, time.monotonic(), f"{target}@{time.time():.3f}"
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                return
            wait = next_due - time.monotonic()
            if interval and wait > 0:
                if live:
                    continue
                time.sleep(wait)
            next_due = max(next_due + interval, time.monotonic()) if not live else time.monotonic() + interval
            yield Frame(camera, index, _now(), image, f"{target}#{index}", scene)
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
        """Files end for good; a stream or a USB camera that ends is reconnected."""
        return self._kind in ("folder", "image", "video")

    def frames(self) -> Iterator[Frame]:
        if self._kind == "folder":
            return _images(self.camera, _image_files(Path(self.spec)), self.skipped, self.fps)
        if self._kind == "image":
            return _images(self.camera, [Path(self.spec)], self.skipped, self.fps)
        target: str | int = int(self.spec) if self._kind == "usb" else self.spec
        return _capture(self.camera, target, self.fps, live=not self.finite)
