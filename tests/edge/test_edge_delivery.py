"""Store-and-forward and presence, with the edge as its own process and a real Mosquitto."""

from __future__ import annotations

import functools
import http.server
import signal
import threading
import time

from protocol import topics
from protocol.codec import decode
from protocol.device import Telemetry
from protocol.messages import Arrival, DeviceState

ARRIVALS = topics.arrival("demo", "s1", "edge7")


def args(source, state, broker, *extra: str) -> list[str]:
    return ["--store", "s1", "--device", "edge7", "--source", str(source), "--state", str(state),
            "--broker", broker, *extra]


def delivered(rec) -> list[str]:
    return [decode(p, Arrival).event_id for p in rec.of("/evt/arrival")]


def wait(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_broker_down_for_the_middle_third_loses_nothing(durable_broker, edge_process, recorder, kit, tmp_path, models_dir):
    video = kit.write_video(tmp_path / "six.avi", [f for p in kit.people * 2 for f in kit.walk_in(p)])
    rec = recorder(durable_broker.url, ARRIVALS)
    edge = edge_process(*args(video, tmp_path / "state.db", durable_broker.url, "--fps", "25",
                              "--revisit-window", "0", "--once"))
    edge.wait_arrivals(2)
    try:
        durable_broker.stop()
        edge.wait_arrivals(4)
    finally:
        durable_broker.start()
    summary = edge.finish()
    assert summary["arrivals"] == 6 and summary["unacked"] == 0, edge.stderr[-2000:]
    made = [e["event_id"] for e in edge.arrivals()]
    wait(lambda: len(set(delivered(rec))) >= 6)
    assert list(dict.fromkeys(delivered(rec))) == made, "every arrival, in order"
    assert "events wait in the outbox" in edge.stderr


def test_killed_and_restarted_edge_delivers_its_outbox_once_in_order(
    durable_broker, edge_process, recorder, walk_video, tmp_path, models_dir
):
    rec = recorder(durable_broker.url, ARRIVALS)
    state = tmp_path / "state.db"
    durable_broker.stop()
    try:
        first = edge_process(*args(walk_video, state, durable_broker.url, "--fps", "25", "--once"))
        first.wait_arrivals(2)
        first.kill()  # SIGKILL: no flush, no goodbye; the Last Will says offline
    finally:
        durable_broker.start()
    second = edge_process(*args(walk_video, state, durable_broker.url, "--once"))
    summary = second.finish()
    assert summary["unacked"] == 0
    # People announced before the kill are the same visit after the restart: only the third is new.
    assert summary["same_visit"] == 2 and summary["arrivals"] == 1
    made = [e["event_id"] for e in first.arrivals()[:2] + second.arrivals()]
    wait(lambda: len(set(delivered(rec))) >= 3)
    got = delivered(rec)
    assert list(dict.fromkeys(got)) == made
    assert len(got) == len(set(got)), "nothing sent twice"


def test_a_stream_that_ends_is_reconnected_and_reported(mosquitto, edge_process, recorder, kit, tmp_path, models_dir):
    kit.write_video(tmp_path / "door.avi", kit.walk_in(kit.people[0]))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rec = recorder(mosquitto.url, "instore/v1/demo/s1/edge7/#", "edge-test-stream")
    try:
        url = f"http://127.0.0.1:{server.server_port}/door.avi"
        edge = edge_process(*args(url, tmp_path / "state.db", mosquitto.url, "--telemetry-interval", "1"))

        def reports() -> list[Telemetry]:
            return [decode(p, Telemetry) for p in rec.of("/telemetry")]

        wait(lambda: any(r.cameras[0].reconnects >= 2 for r in reports()))
        edge.proc.send_signal(signal.SIGTERM)
        summary = edge.finish(60)
    finally:
        server.shutdown()
    last = reports()[-1]
    camera = last.cameras[0]
    # The stream comes faster than the box works: old frames are dropped, not queued.
    assert camera.frames + camera.dropped_frames >= 60 and camera.dropped_frames > 0
    assert camera.last_error == "stream ended"
    assert last.model_pack and last.rss_mb > 0 and last.outbox_depth == 0
    assert summary["arrivals"] <= 1, "the same person replayed is the same visit"
    wait(lambda: any(decode(p, DeviceState).state == "offline" for p in rec.of("/state")))


def test_a_stream_that_cannot_be_opened_is_retried_with_back_off(mosquitto, edge_process, recorder, tmp_path, models_dir):
    rec = recorder(mosquitto.url, topics.telemetry("demo", "s1", "edge7"), "edge-test-fail")
    edge = edge_process(*args("rtsp://127.0.0.1:1/door", tmp_path / "state.db", mosquitto.url, "--telemetry-interval", "1"))
    wait(lambda: any(decode(p, Telemetry).cameras[0].reconnects >= 2 for p in rec.of("/telemetry")), 30)
    report = decode(rec.of("/telemetry")[-1], Telemetry)
    assert report.cameras[0].state == "reconnecting" and "cannot open" in report.cameras[0].last_error
    edge.proc.send_signal(signal.SIGTERM)
    assert edge.finish(30)["frames"] == 0
