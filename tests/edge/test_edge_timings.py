"""Issue 19 on the edge: stage timings on every arrival, the group-committed outbox, /metrics."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from edge import metrics
from edge.outbox import Outbox
from edge.pipeline import FacePipeline, Placement
from edge.sources import Frame
from edge.state import StateFile
from edge.visits import VisitRegistry
from protocol.codec import decode
from protocol.device import RemoteSettings
from protocol.facepack.engine import FaceEngine
from protocol.messages import Arrival, DeviceState, StageTimes
from protocol.metrics import serve
from tests.netutil import free_port

TS = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def observed(name: str, stage: str) -> float:
    return REGISTRY.get_sample_value(f"{name}_count", {"stage": stage}) or 0.0


def test_an_arrival_carries_where_its_time_went(models_dir, kit, tmp_path):
    engine = FaceEngine.load()
    settings = RemoteSettings(cameras=[{"id": "cam1", "source": "x"}], tracking={"faces_for_arrival": 2})
    state = StateFile(tmp_path / "state.db")
    pipeline = FacePipeline(engine, Placement("demo", "s1", "edge1"), settings,
                            VisitRegistry(state, settings.visits, engine.pack.match_threshold), "cam1")
    before = observed("instore_edge_frame_seconds", "detect"), observed("instore_edge_arrival_stage_seconds", "embedded")
    frames = kit.walk_in(kit.people[0], frames=4)
    events = []
    for index, image in enumerate(frames):
        ts = datetime.now(UTC)
        got = pipeline.process(Frame("cam1", index, ts, image, f"#{index}", "door"))
        events += [(ts, e) for e in got]
    assert len(events) == 1, "two good faces make the arrival"
    captured, event = events[0]
    timings = event.arrival.timings
    assert timings.capture == captured, "the frame that completed the arrival"
    assert 0 <= timings.detected_ms <= timings.embedded_ms and timings.queued_ms is None
    assert observed("instore_edge_frame_seconds", "detect") == before[0] + len(frames)
    assert observed("instore_edge_arrival_stage_seconds", "embedded") == before[1] + 1

    outbox = Outbox(state)
    seq = outbox.put("t/arrival", event.arrival)
    sent = decode(outbox.pending(seq - 1, 1)[0].payload, Arrival)
    assert sent.timings.queued_ms >= timings.embedded_ms, "the outbox stamps the hand-over"
    assert sent.timings.model_copy(update={"queued_ms": None}) == timings
    assert outbox.sync()
    outbox.ack([seq])
    assert observed("instore_edge_arrival_stage_seconds", "published") >= 1
    state.close()


def test_the_outbox_commits_without_waiting_for_the_disk_and_syncs_in_groups(tmp_path):
    state = StateFile(tmp_path / "s.db")
    outbox = Outbox(state)
    assert state.db.execute("PRAGMA synchronous").fetchone()[0] == 1, "NORMAL: the committer thread fsyncs the WAL"
    commits = REGISTRY.get_sample_value("instore_edge_outbox_commits_total")
    seqs = [outbox.put(f"t/{n}", DeviceState(brand="demo", store="s1", device=f"e{n}", role="edge", state="online", ts=TS))
            for n in range(50)]
    assert [r.seq for r in outbox.pending(0, 100)] == seqs, "visible to the publisher at once"
    assert outbox.sync(10)
    fsyncs = REGISTRY.get_sample_value("instore_edge_outbox_commits_total") - commits
    assert 1 <= fsyncs <= 50
    outbox.close()
    state.close()
    again = Outbox(StateFile(tmp_path / "s.db"))
    assert [r.seq for r in again.pending(0, 100)] == seqs


def test_the_timings_field_is_optional_for_every_producer(tmp_path):
    outbox = Outbox(StateFile(tmp_path / "s.db"))
    seq = outbox.put("t", DeviceState(brand="demo", store="s1", device="e1", role="edge", state="online", ts=TS))
    assert b"timings" not in outbox.pending(seq - 1, 1)[0].payload
    assert StageTimes(capture=TS).at(TS) == 0


def test_metrics_are_served_only_when_a_port_is_given():
    assert serve(None) is False and serve(0) is False
    port = free_port()
    assert serve(port, "127.0.0.1")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "instore_edge_frame_seconds" in body and "instore_edge_arrival_stage_seconds" in body


@pytest.mark.parametrize("value, port", [("", None), ("9108", 9108)])
def test_the_port_may_come_from_the_environment(monkeypatch, value, port):
    monkeypatch.setenv("INSTORE_METRICS_PORT", value)
    assert metrics.port_from_env() == port


def test_a_confident_first_face_makes_the_arrival_alone_a_weak_one_waits(models_dir, kit, tmp_path):
    engine = FaceEngine.load()
    frames = kit.walk_in(kit.people[0], frames=6)

    def frames_until_arrival(confident_quality):
        settings = RemoteSettings(cameras=[{"id": "cam1", "source": "x"}],
                                  tracking={"faces_for_arrival": 2, "confident_quality": confident_quality})
        state = StateFile(tmp_path / f"{confident_quality}.db")
        pipeline = FacePipeline(engine, Placement("demo", "s1", "edge1"), settings,
                                VisitRegistry(state, settings.visits, engine.pack.match_threshold), "cam1")
        for index, image in enumerate(frames):
            if pipeline.process(Frame("cam1", index, datetime.now(UTC), image, f"#{index}", "door")):
                return index + 1
        return None

    waited = frames_until_arrival(None)  # off by default: faces_for_arrival (2) decides
    assert waited is not None and waited >= 2
    assert frames_until_arrival(0.05) == waited - 1, "a good first face is enough"
    assert frames_until_arrival(1.0) == waited, "no face is that good: the track waits for its second"


def test_detection_sized_to_the_smallest_face_the_gates_take(models_dir, kit, tmp_path):
    engine = FaceEngine.load("yunet-mbf")
    arrivals = {}
    for sized in (False, True):
        settings = RemoteSettings(cameras=[{"id": "cam1", "source": "x"}],
                                  gates={"detect_for_min_face": sized, "min_face_px": 48})
        state = StateFile(tmp_path / f"{sized}.db")
        pipeline = FacePipeline(engine, Placement("demo", "s1", "edge1"), settings,
                                VisitRegistry(state, settings.visits, engine.pack.match_threshold), "cam1")
        assert pipeline.detect_scale == (18 / 48 if sized else 1.0)
        events = [e for i, image in enumerate(kit.walk_in(kit.people[0], frames=8))
                  for e in pipeline.process(Frame("cam1", i, datetime.now(UTC), image, f"#{i}", "door"))]
        assert len(events) == 1
        arrivals[sized] = events[0].arrival
    same, small = arrivals[False], arrivals[True]
    assert float(same.embedding.to_vector() @ small.embedding.to_vector()) > 0.9, "the same face, found at 3/8 size"
    assert abs(same.quality.bbox[0] - small.quality.bbox[0]) < 10, "boxes are in the frame's own pixels"
