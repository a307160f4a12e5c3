"""Frame -> faces -> quality gates -> tracks -> one arrival per visit.

Only faces that pass the gates are embedded, and only while their track still needs faces (plus
one check every ``verify_every`` frames, so that a different person taking over a track's spot is
noticed). A track announces its arrival as soon as it has ``faces_for_arrival`` good faces (or its first
face alone when that face's quality reaches ``confident_quality``, if set), or when it ends with
fewer; its embedding is the mean of its best faces.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from edge import metrics
from edge.placement import Placement
from edge.quality import Assessment, Gates, quality_score
from edge.sources import Frame
from edge.tracker import Sample, Track, Tracker
from edge.visits import VisitRegistry
from protocol.device import RemoteSettings
from protocol.embedding import Embedding
from protocol.facepack.engine import Face, FaceEngine
from protocol.messages import Arrival, FaceQuality, StageTimes, new_id, now

log = logging.getLogger(__name__)

#: The smallest face (shorter box side, px) YuNet still found in every frame of the check in
#: docs/PERFORMANCE.md (24 px faces at 0.75 scale: 28 of 28; at 0.5, i.e. 12 px: 24 of 28).
YUNET_MIN_FACE_PX = 18

@dataclass
class PipelineStats:
    frames: int = 0
    faces: int = 0
    tracks: int = 0
    arrivals: int = 0
    same_visit: int = 0
    detect_ms: float = 0.0  # total
    rejected: Counter[str] = field(default_factory=Counter)
    #: origins of the latest tracks that never had a usable face (bounded: a stream runs for months)
    unusable: deque[str] = field(default_factory=lambda: deque(maxlen=1000))


@dataclass(frozen=True)
class ArrivalEvent:
    arrival: Arrival
    origin: str  # where the best face came from
    first_usable_ts: datetime
    crop: np.ndarray  # aligned 112 px best face


class FacePipeline:
    """The pipeline of one camera; ``visits`` is shared by every camera of the store."""

    def __init__(self, engine: FaceEngine, placement: Placement, settings: RemoteSettings,
                 visits: VisitRegistry, camera: str) -> None:
        self.engine = engine
        self.placement = placement
        self.camera = camera
        self.visits = visits
        self.stats = PipelineStats()
        self.tracker = Tracker(camera, settings.tracking, new_id()[:8], engine.pack.track_min_similarity)
        self._scene: str | None = None
        self._scene_origin = ""
        self._next_engine: FaceEngine | None = None
        self._trace: StageTimes | None = None  # the frame being processed: its capture, detected, embedded
        self._last_trace: StageTimes | None = None  # the last frame processed
        self.apply(settings)

    def apply(self, settings: RemoteSettings) -> None:
        """New thresholds take effect from the next frame."""
        self._remote = settings
        self.settings = settings.tracking
        self.tracker.settings = settings.tracking
        self.tracker.pack_similarity = self.engine.pack.track_min_similarity
        self.gates = Gates(settings.gates, self.engine.pack)
        self.zone = next((c.zone for c in settings.cameras if c.id == self.camera), None)

    def swap_engine(self, engine: FaceEngine) -> None:
        """Run ``engine`` (another model pack) from the next frame on; called from another thread.

        The camera thread makes the swap between two frames: open tracks end first and announce
        with the old pack's embeddings, so no track mixes vectors of two packs."""
        self._next_engine = engine

    def process(self, frame: Frame) -> list[ArrivalEvent]:
        swap, self._next_engine = self._next_engine, None
        events = self.finish() if frame.scene != self._scene or swap is not None else []
        if swap is not None:
            self.engine = swap
            self.apply(self._remote)
        self._scene, self._scene_origin = frame.scene, frame.origin
        self.stats.frames += 1
        self._trace = None
        started = time.perf_counter()
        faces = self._detect(frame.image)
        detected = time.perf_counter()
        detected_at = now()
        self.stats.detect_ms += (detected - started) * 1000
        self.stats.faces += len(faces)
        matched = self.tracker.associate(faces)
        todo = self._to_embed(faces, matched, frame)
        # every face of the frame that needs an embedding goes through the recogniser in one call
        vectors: list[np.ndarray] | np.ndarray = self.engine.embed_aligned([crop for _, crop, _ in todo]) if todo else []
        embedded = {i: (crop, a, v) for (i, crop, a), v in zip(todo, vectors)}
        done = time.perf_counter()
        metrics.FRAME.labels("detect").observe(detected - started)
        if todo:
            metrics.FRAME.labels("embed").observe(done - detected)
            metrics.FACES.inc(len(todo))
        trace = StageTimes(capture=frame.ts)
        self._trace = trace.model_copy(update={"detected_ms": trace.at(detected_at),
                                                "embedded_ms": trace.at(detected_at) + round((done - detected) * 1000, 3)})
        seen: dict[int, tuple[Track, Face]] = {}
        for i, face in enumerate(faces):
            track = matched[i]
            if i in embedded:
                crop, assessment, vector = embedded[i]
                if track is not None and not self.tracker.resembles(track, vector):
                    log.info("camera %s: a different face at track %s's place: new track", frame.camera, track.id)
                    track = None
            if track is None:
                track = self.tracker.open(face, frame.index)
                self.stats.tracks += 1
            seen[id(track)] = (track, face)
            if i in embedded:
                track.frames_since_embed = 0
                if len(track.samples) < self.settings.max_faces_per_track or not track.announced:
                    track.keep(Sample(vector, quality_score(face, assessment), face, frame.ts, frame.origin, crop),
                               self.settings.max_faces_per_track)
            else:
                track.frames_since_embed += 1
            if not track.announced and (len(track.samples) >= self.settings.faces_for_arrival or self._confident(track)):
                events += self._announce(track)
        for track in self.tracker.step(seen, frame.index):
            events += self._end(track)
        metrics.FRAME.labels("track").observe(time.perf_counter() - done)
        self._last_trace, self._trace = self._trace, None
        return events

    def _detect(self, image: np.ndarray) -> list[Face]:
        """The engine's faces in the camera's door zone (the whole frame without one), from the
        zone scaled down to ``detect_scale`` when that is below 1; boxes in frame coordinates."""
        scale = self.detect_scale
        h, w = image.shape[:2]
        left, top, right, bottom = self.zone or (0.0, 0.0, 1.0, 1.0)
        x0, y0 = round(left * w), round(top * h)
        view = image[y0 : max(y0 + 1, round(bottom * h)), x0 : max(x0 + 1, round(right * w))]
        if scale < 1.0:
            view = cv2.resize(view, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = self.engine.detect(view, frame_px=max(1, round(max(h, w) * min(scale, 1.0))))
        if scale >= 1.0 and x0 == y0 == 0:
            return faces
        return [Face((f.bbox[0] / scale + x0, f.bbox[1] / scale + y0, f.bbox[2] / scale + x0, f.bbox[3] / scale + y0),
                     f.kps / scale + np.array([x0, y0], np.float32), f.score) for f in faces]

    @property
    def detect_scale(self) -> float:
        """1, or with ``gates.detect_for_min_face`` on a YuNet pack the scale at which a face of the
        gates' ``min_face_px`` is still ``YUNET_MIN_FACE_PX`` (SCRFD scales every image to its input size)."""
        if not self._remote.gates.detect_for_min_face or self.engine.pack.detector.kind != "yunet":
            return 1.0
        return min(1.0, YUNET_MIN_FACE_PX / self.gates.min_face_px)

    def _confident(self, track: Track) -> bool:
        """The track's first face alone is good enough for its arrival (``confident_quality``)."""
        threshold = self.settings.confident_quality
        return threshold is not None and len(track.samples) == 1 and track.samples[0].score >= threshold

    def _to_embed(self, faces: list[Face], matched: list[Track | None], frame: Frame) -> list[tuple[int, np.ndarray, Assessment]]:
        """(index, aligned crop, assessment) of the faces worth an embedding now."""
        todo = []
        for i, face in enumerate(faces):
            track = matched[i]
            cheap = self.gates.cheap(face)
            if not cheap.passed:
                self.stats.rejected[cheap.reason or "gated"] += 1
                continue
            wanted = (
                track is None
                or len(track.samples) < self.settings.max_faces_per_track and not track.announced
                or track.frames_since_embed + 1 >= self.settings.verify_every
            )
            if not wanted:
                continue
            crop = self.engine.align(frame.image, face)
            assessment = self.gates.assess(face, crop)
            if not assessment.passed:
                self.stats.rejected[assessment.reason or "gated"] += 1
                continue
            todo.append((i, crop, assessment))
        return todo

    def _end(self, track: Track) -> list[ArrivalEvent]:
        if track.announced:
            return []
        if not track.samples:
            self.stats.unusable.append(self._scene_origin)
            return []
        return self._announce(track)

    def _announce(self, track: Track) -> list[ArrivalEvent]:
        track.announced = True
        vector = track.aggregate()
        if vector is None:  # _end announces only tracks with samples
            return []
        best = track.best()
        visit = self.visits.same_visit(vector, best.ts)
        if visit is not None:
            self.stats.same_visit += 1
            log.info("camera %s: track %s is visit %s again, no new arrival", track.camera, track.id, visit)
            return []
        x1, y1, x2, y2 = (int(round(v)) for v in best.face.bbox)
        arrival = Arrival(
            event_id=new_id(),
            ts=best.ts,
            brand=self.placement.brand,
            store=self.placement.store,
            device=self.placement.device,
            camera=track.camera,
            track_id=track.id,
            embedding=Embedding.from_vector(vector),
            quality=FaceQuality(det_score=min(1.0, best.face.score), face_px=best.face.size_px, bbox=(x1, y1, x2, y2)),
            model_pack=self.engine.pack.id,
            timings=(trace := self._completing(best.ts)),
        )
        if trace.detected_ms is not None and trace.embedded_ms is not None:
            metrics.ARRIVAL.labels("detected").observe(trace.detected_ms / 1000)
            metrics.ARRIVAL.labels("embedded").observe(trace.embedded_ms / 1000)
        self.visits.record(arrival.event_id, vector, best.ts)
        self.stats.arrivals += 1
        assert track.first_usable_ts is not None
        return [ArrivalEvent(arrival, best.origin, track.first_usable_ts, best.crop)]

    def _completing(self, best_ts: datetime) -> StageTimes:
        """The trace of the frame that completed an arrival: the frame being processed, or, for a
        track closed because its scene or source ended, the last frame processed (a folder of
        portraits: each file's faces are announced when the next file comes, or at the end)."""
        trace = self._trace or self._last_trace
        if trace is None or trace.capture < best_ts:
            return StageTimes(capture=best_ts)
        return trace

    def finish(self) -> list[ArrivalEvent]:
        """The scene or the source ended: every open track ends and announces what it has."""
        return [event for track in self.tracker.close_all() for event in self._end(track)]
