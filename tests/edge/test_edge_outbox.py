"""The outbox on its own: order, restart, bound; and the device messages through the codec."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from edge.outbox import Outbox
from edge.state import StateFile
from protocol.codec import DecodeError, decode, encode
from protocol.device import ConfigDesired, Telemetry
from protocol.messages import DeviceState

TS = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def state(n: int) -> DeviceState:
    return DeviceState(brand="demo", store="s1", device=f"e{n}", role="edge", state="online", ts=TS)


def test_rows_come_back_in_order_and_survive_a_reopen(tmp_path):
    box = StateFile(tmp_path / "s.db")
    outbox = Outbox(box)
    seqs = [outbox.put(f"t/{n}", state(n)) for n in range(5)]
    outbox.ack(seqs[:2])
    box.close()
    again = Outbox(StateFile(tmp_path / "s.db"))
    rows = again.pending(0, 10)
    assert [r.topic for r in rows] == ["t/2", "t/3", "t/4"]
    assert decode(rows[0].payload, DeviceState).device == "e2"
    again.ack([r.seq for r in rows])
    assert again.put("t/5", state(5)) > seqs[-1], "numbers are never reused, even when the table was emptied"


def test_a_full_outbox_drops_the_oldest_and_says_so(tmp_path, caplog):
    outbox = Outbox(StateFile(tmp_path / "s.db"), max_messages=10)
    with caplog.at_level(logging.WARNING, logger="edge.outbox"):
        for n in range(13):
            outbox.put(f"t/{n}", state(n))
    assert [r.topic for r in outbox.pending(0, 100)] == [f"t/{n}" for n in range(3, 13)]
    assert outbox.dropped == 3 and "dropped the 1 oldest" in caplog.text


def test_device_messages_round_trip_and_refuse_bad_input():
    desired = ConfigDesired(brand="demo", store="s1", device="e1", version=2, ts=TS,
                            settings={"cameras": [{"id": "door", "source": "0"}], "gates": {"max_yaw_deg": 30}})
    assert decode(encode(desired), ConfigDesired) == desired
    with pytest.raises(DecodeError) as err:
        decode(encode(desired).replace(b'"max_yaw_deg":30.0', b'"max_yaw_deg":300'), ConfigDesired)
    assert err.value.field == "settings.gates.max_yaw_deg"
    with pytest.raises(DecodeError, match="expected 'telemetry'"):
        decode(encode(desired), Telemetry)
