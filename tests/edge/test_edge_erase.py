"""A member erased in the cloud is forgotten by the box: its cached faces go, and the box says so."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np

from edge.state import StateFile
from edge.visits import VisitRegistry
from protocol import topics, transport
from protocol.codec import decode
from protocol.commands import ERASE, CommandAck, EraseCommand
from protocol.device import VisitSettings
from protocol.messages import new_id


def test_forget_removes_only_the_named_arrivals(tmp_path):
    registry = VisitRegistry(StateFile(tmp_path / "state.db"), VisitSettings(), 0.47)
    now = datetime.now(UTC)
    faces = {name: np.eye(128, dtype=np.float32)[i] for i, name in enumerate(("member", "other"))}
    for name, vector in faces.items():
        registry.record(f"event-{name}", vector, now)
    assert registry.forget(["event-member", "event-unknown"]) == 1
    assert registry.same_visit(faces["member"], now) is None, "the erased member's face is no longer known"
    assert registry.same_visit(faces["other"], now) == "event-other"
    assert registry.forget([]) == 0


def _erase(store: str, device: str, event_ids: list[str]) -> EraseCommand:
    return EraseCommand(command_id=new_id(), brand="demo", store=store, device=device, member_ids=["member0001"],
                        arrival_event_ids=event_ids, reason="erasure", ts=datetime.now(UTC))


def test_box_acknowledges_erase_commands(mosquitto, models_dir, tmp_path, recorder, edge_process):
    ack_topic = topics.device_command_ack("demo", "s1", "edge6", ERASE)
    rec = recorder(mosquitto.url, ack_topic, "edge-test-erase")
    edge = edge_process("--store", "s1", "--device", "edge6", "--source", "rtsp://127.0.0.1:1/door",
                        "--broker", mosquitto.url, "--state", str(tmp_path / "s.db"))
    url = transport.BrokerUrl.parse(mosquitto.url)
    cloud = transport.make_client(url, "edge-test-erase-cloud")
    transport.start(cloud, url)
    try:
        deadline = time.monotonic() + 60
        command = _erase("s1", "edge6", ["eventaaaa0001"])
        while not rec.of("/ack") and time.monotonic() < deadline:  # until the box has subscribed
            transport.publish(cloud, topics.device_command("demo", "s1", "edge6", ERASE), command).wait_for_publish(5)
            time.sleep(1)
        acks = [decode(p, CommandAck) for p in rec.of("/ack")]
        assert acks and acks[0].command_id == command.command_id and acks[0].ok
        assert "forgot 0 cached faces of 1 arrivals" in acks[0].detail

        cloud.publish(topics.device_command("demo", "s1", "edge6", ERASE), b'{"v": 1, "type": "erase"}', qos=1)
        time.sleep(1)
        assert edge.proc.poll() is None, "a malformed command does not stop the box"
    finally:
        transport.stop(cloud)
