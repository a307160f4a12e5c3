"""One worker per camera: read frames, run the camera's pipeline, hand arrivals on.

A live camera (RTSP, HTTP, USB) is read by its own grabber thread into a one-frame slot: when the
box is busy the older frame is overwritten and counted as dropped, so the pipeline always works
on the newest picture instead of falling behind the door. A stream that ends or fails is
reopened with exponential back-off (1 s doubling to 30 s) and the failure shows in telemetry.
Replayed files are read in step with the pipeline and never dropped: a replay is a test.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.pipeline import ArrivalEvent, FacePipeline
from edge.sources import Frame, Source, SourceError
from protocol.device import CameraSpec, CameraState, CameraTelemetry

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass
class CameraCounters:
    state: CameraState = "running"
    frames: int = 0
    dropped: int = 0
    reconnects: int = 0
    last_error: str | None = None
    # since the last telemetry report
    window_frames: int = 0
    window_detect_ms: float = 0.0
    window_started: float = 0.0


class LatestFrame:
    """A one-frame mailbox: put overwrites, take waits."""

    def __init__(self) -> None:
        self._frame: Frame | None = None
        self._closed = False
        self._cond = threading.Condition()

    def put(self, frame: Frame) -> bool:
        """Store the frame; True if an unread one was overwritten."""
        with self._cond:
            dropped = self._frame is not None
            self._frame = frame
            self._cond.notify()
            return dropped

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def take(self) -> Frame | None:
        """The newest frame, or None once the grabber is done and nothing is left."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed)
            frame, self._frame = self._frame, None
            return frame


class CameraWorker(threading.Thread):
    def __init__(self, spec: CameraSpec, pipeline: FacePipeline, sink: Callable[[list[ArrivalEvent]], None],
                 stop: threading.Event, *, once: bool) -> None:
        super().__init__(name=f"camera-{spec.id}", daemon=True)
        self.spec = spec
        self.pipeline = pipeline
        self.sink = sink
        self.stop_event = stop
        self.once = once
        self.counters = CameraCounters(window_started=time.monotonic())
        self.skipped: list[str] = []
        self.lock = threading.Lock()

    def run(self) -> None:
        backoff = 1.0
        while not self.stop_event.is_set():
            finite, processed = False, 0
            try:
                source = Source(self.spec.source, self.spec.id, self.spec.fps)
                finite, self.skipped = source.finite, source.skipped
                self._set(state="running")
                processed = self._replay(source) if finite else self._live(source)
            except SourceError as exc:
                log.warning("%s", exc)
                self._set(last_error=str(exc)[:200])
            self.sink(self.pipeline.finish())
            if self.stop_event.is_set() or (finite and self.once):
                break
            if finite:
                continue  # without --once a replayed file loops, like a camera that never stops
            if processed:
                backoff = 1.0
            with self.lock:
                self.counters.state = "reconnecting"
                self.counters.reconnects += 1
                self.counters.last_error = self.counters.last_error or "stream ended"
            log.warning("camera %s: stream ended or failed; reconnecting in %.0f s", self.spec.id, backoff)
            self.stop_event.wait(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)
        self._set(state="stopped" if self.stop_event.is_set() else "ended")

    def _set(self, **values: object) -> None:
        with self.lock:
            for name, value in values.items():
                setattr(self.counters, name, value)

    def _handle(self, frame: Frame) -> None:
        try:
            events = self.pipeline.process(frame)
        except Exception:  # one bad frame must not stop the camera
            log.exception("camera %s: frame %s failed; skipped", self.spec.id, frame.origin)
            return
        with self.lock:
            self.counters.frames += 1
            self.counters.window_frames += 1
        self.sink(events)

    def _replay(self, source: Source) -> int:
        count = 0
        for frame in source.frames():
            if self.stop_event.is_set():
                break
            self._handle(frame)
            count += 1
        return count

    def _live(self, source: Source) -> int:
        slot = LatestFrame()
        frames = source.frames()
        first = next(frames, None)  # opening errors surface here, in this thread
        if first is None:
            return 0
        slot.put(first)

        def grab() -> None:
            try:
                for frame in frames:
                    if self.stop_event.is_set():
                        break
                    if slot.put(frame):
                        with self.lock:
                            self.counters.dropped += 1
            except Exception as exc:  # OpenCV/FFmpeg failures end the stream, reported
                self._set(last_error=f"{type(exc).__name__}: {exc}"[:200])
            finally:
                slot.close()

        grabber = threading.Thread(target=grab, name=f"grab-{self.spec.id}", daemon=True)
        grabber.start()
        count = 0
        while (frame := slot.take()) is not None:
            self._handle(frame)
            count += 1
        grabber.join()
        return count

    def telemetry(self) -> CameraTelemetry:
        """This camera's report; resets the per-report window."""
        now = time.monotonic()
        detect_ms = self.pipeline.stats.detect_ms
        with self.lock:
            c = self.counters
            elapsed = max(1e-6, now - c.window_started)
            frames = c.window_frames
            report = CameraTelemetry(
                camera=self.spec.id, state=c.state, fps=round(frames / elapsed, 2),
                detect_ms=round((detect_ms - c.window_detect_ms) / frames, 2) if frames else 0.0,
                frames=c.frames, dropped_frames=c.dropped, reconnects=c.reconnects, last_error=c.last_error,
            )
            c.window_frames, c.window_detect_ms, c.window_started = 0, detect_ms, now
        return report
