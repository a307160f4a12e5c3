"""Malformed MQTT payloads on every topic an edge box subscribes to (``cfg/desired``, ``cmd/erase``,
``cmd/pack``), through a real Mosquitto to a real box: each is refused and counted by its reason in
the box's telemetry (``commands_refused``), the box keeps running, and a valid configuration, erase
and pack command sent afterwards are still applied and acknowledged.

The box runs in this process on the real face pack with one camera whose stream cannot be opened
(it retries with back-off), so it stays up without frames. Its brand is this test's own.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.box import EdgeBox
from edge.config import EdgeConfig
from protocol import topics
from protocol.codec import decode, encode
from protocol.commands import ERASE, PACK, CommandAck, EraseCommand, PackCommand
from protocol.device import CameraSpec, ConfigDesired, ConfigReported, QualityGates, Telemetry
from protocol.messages import Feedback, Message, new_id, now
from tests.fuzz.jsonish import dump
from tests.fuzz.mqttfuzz import FIXED, expected_rejects, junk, listener, new_brand, sender, shaped, wait_for

STORE, DEVICE = "fz-store", "fz-edge"
CAMERA = CameraSpec(id="door", source="rtsp://127.0.0.1:1/door")


@pytest.fixture
def box(mosquitto, models_dir: Path, tmp_path: Path) -> Iterator[EdgeBox]:
    config = EdgeConfig(brand=new_brand(), store=STORE, device=DEVICE, broker=mosquitto.url, models=models_dir,
                        state=tmp_path / "state.db", cameras=[CAMERA], telemetry_interval_s=0.3)
    edge = EdgeBox(config, once=False, on_arrival=lambda event: None)
    runner = threading.Thread(target=edge.run, name="fuzzed-edge-box", daemon=True)
    runner.start()
    yield edge
    edge.stop()
    runner.join(60)
    assert not runner.is_alive(), "the box did not stop"


def valid(kind: type[Message], brand: str, device: str, box: EdgeBox) -> Message:
    """A well-formed ``kind`` for ``device`` of this store (the box under test, or another)."""
    if kind is ConfigDesired:
        settings = box.config.remote().model_copy(update={"gates": QualityGates(min_sharpness=30)})
        return ConfigDesired(brand=brand, store=STORE, device=device, version=1, ts=now(), settings=settings)
    if kind is EraseCommand:
        return EraseCommand(command_id=new_id(), brand=brand, store=STORE, device=device, member_ids=[new_id()],
                            arrival_event_ids=[], reason="erasure", ts=now())
    return PackCommand(command_id=new_id(), brand=brand, store=STORE, device=device, pack_id=box.pack.id, ts=now())


def hostile(kind: type[Message], brand: str, box: EdgeBox) -> list[bytes]:
    """What a topic expecting ``kind`` gets: fixed and generated junk, schema-shaped and mutated
    ``kind`` data, a valid message of another type, and a valid one for this store's other box.
    Commands are also generated addressed to this box (erase: random arrival ids to forget; pack:
    packs that do not exist); a generated configuration is not, as it would start cameras on
    generated sources."""
    feedback = Feedback(feedback_id=new_id(), card_id=new_id(), visit_id=new_id(), brand=brand, store=STORE,
                        screen="main", action="greeted", ts=now())
    mine = [] if kind is ConfigDesired else shaped(kind, 8, brand=brand, store=STORE, device=DEVICE)
    return FIXED + junk(8) + [dump(data) for data in shaped(kind, 10) + mine] + [
        encode(feedback), encode(valid(kind, brand, "other-box", box))]


def test_malformed_commands_and_configs_are_refused_by_reason(box: EdgeBox, mosquitto) -> None:
    brand = box.config.brand
    ours = (brand, STORE, DEVICE)
    subjects = {ConfigDesired: topics.config_desired(*ours), EraseCommand: topics.device_command(*ours, ERASE),
                PackCommand: topics.device_command(*ours, PACK)}
    with listener(mosquitto.url, f"{topics.ROOT}/{brand}/{STORE}/{DEVICE}/#") as heard, sender(mosquitto.url) as send:

        def latest(suffix: str, kind: type[Message]) -> list:
            return [decode(payload, kind) for topic, payload in list(heard) if topic.endswith(suffix)]

        def refused() -> dict[str, int]:
            reports = latest("/telemetry", Telemetry)
            return reports[-1].commands_refused if reports else {}

        wait_for(lambda: latest("/cfg/reported", ConfigReported), what="the box's first report")
        expected: Counter[str] = Counter()
        acked_refusals = acked_done = 0  # a misaddressed or failed command is still acknowledged, as not done
        for kind, topic in subjects.items():
            # An empty retained cfg/desired is how the cloud clears it: ignored, not refused.
            payloads = [p for p in hostile(kind, brand, box) if p or kind is not ConfigDesired]
            reasons, accepted = expected_rejects(
                payloads, kind, lambda m: (m.brand, m.store, m.device) == ours,
                undecodable="invalid_payload", elsewhere="topic_mismatch")
            assert reasons["topic_mismatch"] >= 1 and not (accepted and kind is ConfigDesired), reasons
            if kind is PackCommand:  # no generated pack exists: each is refused, and acked as such
                reasons["pack_refused"] += len(accepted)
            else:  # an erase of generated arrival ids is done (nothing to forget) and acked
                acked_done += len(accepted)
            expected += reasons
            acked_refusals += 0 if kind is ConfigDesired else reasons["topic_mismatch"] + reasons["pack_refused"]
            send(topic, payloads)

        wait_for(lambda: refused() == expected, what=f"refusals {dict(expected)} in the box's telemetry")
        wait_for(lambda: Counter(ack.ok for ack in latest("/ack", CommandAck)) == Counter(
            {False: acked_refusals, True: acked_done}), what="the acks of misaddressed and generated commands")
        assert all(r.version == 0 for r in latest("/cfg/reported", ConfigReported)), "no junk was applied"

        commands = {kind: valid(kind, brand, DEVICE, box) for kind in subjects}
        for kind, topic in subjects.items():
            send(topic, [encode(commands[kind])])
        wait_for(lambda: any(r.version == 1 and r.error is None for r in latest("/cfg/reported", ConfigReported)),
                 what="the valid configuration")
        wanted = {commands[EraseCommand].command_id, commands[PackCommand].command_id}
        wait_for(lambda: wanted <= {ack.command_id for ack in latest("/ack", CommandAck) if ack.ok},
                 what="the valid commands' acks")
        assert box.config.gates.min_sharpness == 30
        assert refused() == expected, "a valid message was refused"
