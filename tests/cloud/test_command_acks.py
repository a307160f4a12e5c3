"""Edge commands are re-sent until the box acknowledges: a box that was offline when a member was
erased gets the erase command once it is back, acks it, and the cloud marks the command done.
Erase commands go to the member's brand's boxes only."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from cloud.cdp import members
from cloud.clock import iso, utcnow
from cloud.fleet import devices


@pytest.fixture
def db_location(tmp_path) -> str:
    """SQLite only: an edge process per test is the slow part, and the command and ack SQL also runs
    on PostgreSQL in test_rollouts.py."""
    return str(tmp_path / "cloud.db")


def _poll(fetch, done, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not done(value := fetch()):
        assert time.monotonic() < deadline, f"gave up waiting: {value}"
        time.sleep(0.3)
    return value


def test_offline_box_gets_the_erase_command_when_back_and_it_is_marked_done(
        start_cloud, mosquitto, models_dir, tmp_path):
    client, runtime = start_cloud(broker_url=mosquitto.url, command_retry_s=0.5, command_retry_max_s=1)
    db = runtime.db
    db.execute("INSERT INTO stores (id, brand, name, created) VALUES ('s1', 'demo', 'Shanghai', ?)", (iso(utcnow()),))
    devices.register_device(runtime.db, "demo", "s1", "edge-ack", "edge")
    devices.register_device(runtime.db, "other", "x1", "edge-1", "edge")  # another brand's box
    member = members.add_member(runtime.db, name="王芳", phone="13800138000", gender="female", tier="gold", tags=[],
                                      categories=[], face_consent=True, store="s1")

    erased = client.delete(f"/v1/members/{member.id}")
    assert erased.status_code == 200, erased.text
    assert erased.json()["commands"] == 1, "only the member's brand's box is told"
    commands = client.get("/v1/stores/s1/devices/edge-ack/commands").json()
    assert [(c["name"], c["state"]) for c in commands] == [("erase", "sent")] and commands[0]["attempts"] >= 1
    assert client.get("/v1/stores/x1/devices/edge-1/commands").json() == []

    time.sleep(1.5)  # the box is still offline: the command is re-sent into the void
    edge = subprocess.Popen(
        [sys.executable, "-m", "provisioning", "edge", "run", "--store", "s1", "--device", "edge-ack",
         "--source", "rtsp://127.0.0.1:1/door", "--broker", mosquitto.url, "--state", str(tmp_path / "box.db")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=dict(os.environ, INSTORE_MODEL_PACK="yunet-mbf"))
    try:
        done = _poll(lambda: client.get("/v1/stores/s1/devices/edge-ack/commands").json()[0],
                     lambda c: c["state"] != "sent")
    finally:
        edge.terminate()
        _, err = edge.communicate(timeout=60)
    assert done["state"] == "done", (done, err[-2000:])
    assert done["ack_ok"] is True and done["ack_detail"] == "forgot 0 cached faces of 0 arrivals"
    assert done["attempts"] >= 3, "sent while the box was away, re-sent until it answered"
    assert runtime.ingest.counts().command_acks == 1

    sent = done["attempts"]
    time.sleep(1.5)
    again = client.get("/v1/stores/s1/devices/edge-ack/commands").json()[0]
    assert again["attempts"] == sent, "an acknowledged command is never re-sent"


def test_ack_of_an_unknown_command_is_rejected(start_cloud, mosquitto):
    from protocol import topics, transport
    from protocol.commands import CommandAck
    from protocol.messages import new_id, now

    _, runtime = start_cloud(broker_url=mosquitto.url)
    url = transport.BrokerUrl.parse(mosquitto.url)
    box = transport.make_client(url, "fake-box-ack")
    transport.start(box, url)
    try:
        ack = CommandAck(command_id=new_id(), brand="demo", store="s1", device="e9", name="erase", ok=True,
                         detail="forgot 0 cached faces", ts=now())
        transport.publish(box, topics.device_command_ack("demo", "s1", "e9", "erase"), ack, qos=1).wait_for_publish(5)
        _poll(runtime.ingest.counts, lambda c: c.rejected.get("unknown_command") == 1, timeout=10)
    finally:
        transport.stop(box)
