"""Tracking, quality gates and one arrival per visit, in process on real models and replayed video."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from edge.pipeline import FacePipeline, Placement
from edge.sources import Source
from edge.state import StateFile
from edge.visits import VisitRegistry
from protocol.device import RemoteSettings, VisitSettings
from protocol.facepack.engine import FaceEngine


@pytest.fixture(scope="module")
def engine(models_dir):
    return FaceEngine.load()


def replay(engine, source: str, tmp_path, revisit_window_s: float = 600):
    settings = RemoteSettings(cameras=[{"id": "cam1", "source": source}], visits=VisitSettings(revisit_window_s=revisit_window_s))
    visits = VisitRegistry(StateFile(tmp_path / "state.db"), settings.visits, engine.pack.match_threshold)
    pipeline = FacePipeline(engine, Placement("demo", "s1", "edge1"), settings, visits, "cam1")
    events = [e for frame in Source(source, "cam1").frames() for e in pipeline.process(frame)]
    return events + pipeline.finish(), pipeline.stats


def person_of(engine, kit, vector) -> int:
    """Which of kit.people an arrival's embedding is (by the reference photo)."""
    refs = []
    for photo in kit.people:
        image = cv2.imread(str(photo))
        refs.append(engine.embed(image, engine.detect(image)[0]))
    scores = [float(ref @ vector) for ref in refs]
    assert max(scores) >= engine.pack.match_threshold, scores
    return int(np.argmax(scores))


def test_each_person_walking_in_is_exactly_one_arrival(engine, kit, walk_video, tmp_path):
    events, stats = replay(engine, str(walk_video), tmp_path)
    assert [person_of(engine, kit, e.arrival.embedding.to_vector()) for e in events] == [0, 1, 2]
    assert len({e.arrival.track_id for e in events}) == 3
    assert stats.frames == 90 and stats.tracks == 3


def test_a_different_person_at_the_same_spot_is_a_new_track(engine, kit, tmp_path):
    first, second = kit.walk_in(kit.people[0]), kit.walk_in(kit.people[1])
    video = kit.write_video(tmp_path / "swap.avi", first + [second[-1]] * 10)  # B stands exactly where A stood
    events, stats = replay(engine, str(video), tmp_path)
    assert [person_of(engine, kit, e.arrival.embedding.to_vector()) for e in events] == [0, 1]
    assert stats.tracks == 2


def test_the_same_person_again_within_the_window_is_the_same_visit(engine, kit, tmp_path):
    frames = kit.walk_in(kit.people[0]) + kit.empty(15) + kit.walk_in(kit.people[0]) + kit.empty(15) + kit.walk_in(kit.people[1])
    video = kit.write_video(tmp_path / "return.avi", frames)
    events, stats = replay(engine, str(video), tmp_path)
    assert [person_of(engine, kit, e.arrival.embedding.to_vector()) for e in events] == [0, 1]
    assert stats.tracks == 3 and stats.same_visit == 1

    events, stats = replay(engine, str(video), tmp_path / "fresh", revisit_window_s=0)
    assert [person_of(engine, kit, e.arrival.embedding.to_vector()) for e in events] == [0, 0, 1]


def test_portraits_in_a_folder_are_separate_scenes(engine, kit, tmp_path):
    """Two portraits at the same spot of consecutive files never chain into one track."""
    folder = tmp_path / "stills"
    folder.mkdir()
    for n, photo in enumerate(kit.people):
        cv2.imwrite(str(folder / f"{n}.png"), kit.walk_in(photo)[-1])
    events, stats = replay(engine, str(folder), tmp_path, revisit_window_s=0)
    assert [person_of(engine, kit, e.arrival.embedding.to_vector()) for e in events] == [0, 1, 2]
    assert [e.origin for e in events] == [str(folder / f"{n}.png") for n in range(3)]


def test_two_people_in_one_frame_are_two_tracks(engine, kit, tmp_path):
    shutil.copy(kit.shared / "scenes" / "deepface_couple.jpg", tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    source = Source(str(tmp_path), "cam1")
    settings = RemoteSettings(cameras=[{"id": "cam1", "source": str(tmp_path)}])
    visits = VisitRegistry(StateFile(tmp_path / "state.db"), settings.visits, engine.pack.match_threshold)
    pipeline = FacePipeline(engine, Placement("demo", "s1", "edge1"), settings, visits, "cam1")
    events = [e for frame in source.frames() for e in pipeline.process(frame)] + pipeline.finish()
    assert len(events) == 2 and len({e.arrival.track_id for e in events}) == 2
    assert source.skipped == [str(tmp_path / "broken.jpg")]
    vectors = [e.arrival.embedding.to_vector() for e in events]
    assert float(vectors[0] @ vectors[1]) < 0.4, "two different people"


def _still(tmp_path, name: str, image: np.ndarray) -> None:
    cv2.imwrite(str(tmp_path / name), image)


def test_blurred_tiny_and_profile_faces_are_gated_out(engine, kit, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    sharp = kit.walk_in(kit.people[0])[-1]
    _still(folder, "blurred.png", cv2.GaussianBlur(sharp, (0, 0), 6))
    portrait = cv2.imread(str(kit.people[1]))
    tiny = cv2.resize(portrait, (40, 40 * portrait.shape[0] // portrait.shape[1]))
    canvas = kit.empty(1)[0]
    canvas[100 : 100 + tiny.shape[0], 100 : 100 + tiny.shape[1]] = tiny
    _still(folder, "tiny.png", canvas)
    group = cv2.imread(str(kit.shared / "faces" / "deepface_id07" / "img59.jpg"))
    _still(folder, "profile.jpg", group[60:560, 0:450])  # the man seen from the side, left of the photo
    events, stats = replay(engine, str(folder), tmp_path, revisit_window_s=0)
    assert [e.origin for e in events] == []
    assert {"blurred", "too_small", "yaw"} <= set(stats.rejected)
    assert sorted(stats.unusable) == sorted(str(folder / n) for n in ("blurred.png", "profile.jpg", "tiny.png"))


def test_the_trackers_min_similarity_is_the_packs_unless_the_settings_name_one(engine, tmp_path):
    """Issue 18: cosines are not comparable across recognisers, so the default comes from the pack's
    manifest (bench/track_similarity.py): dlib's different-person pairs sit near 0.84 (dev set median),
    which MobileFaceNet's 0.32 would keep in one track and dlib's 0.90 splits."""
    from edge.tracker import Sample, Track, Tracker
    from protocol.device import TrackingSettings
    from protocol.facepack import get_pack

    settings = RemoteSettings(cameras=[{"id": "cam1", "source": str(tmp_path)}])
    visits = VisitRegistry(StateFile(tmp_path / "state.db"), settings.visits, engine.pack.match_threshold)
    pipeline = FacePipeline(engine, Placement("demo", "s1", "edge1"), settings, visits, "cam1")
    assert settings.tracking.min_similarity is None
    assert pipeline.tracker.min_similarity == engine.pack.track_min_similarity
    pipeline.apply(settings.model_copy(update={"tracking": TrackingSettings(min_similarity=0.5)}))
    assert pipeline.tracker.min_similarity == 0.5, "a store's explicit setting wins"

    first = np.zeros(128, np.float32)
    first[0] = 1.0
    other = np.zeros(128, np.float32)
    other[0], other[1] = 0.84, np.sqrt(1 - 0.84**2)  # cosine 0.84 to the first face
    track = Track("t", "cam1", (0, 0, 10, 10), 0)
    track.keep(Sample(first, 1.0, None, None, "", None), 5)  # type: ignore[arg-type]
    dlib = Tracker("cam1", TrackingSettings(), "r", get_pack("yunet-dlib").track_min_similarity)
    mbf = Tracker("cam1", TrackingSettings(), "r", get_pack("scrfd500m-mbf").track_min_similarity)
    assert mbf.resembles(track, other) and not dlib.resembles(track, other)
