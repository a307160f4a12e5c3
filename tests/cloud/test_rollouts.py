"""Staged pack rollouts: the verdict on hand-made windows, and the whole loop through the API and a
real broker: pack to the canary store only, the box's ack starts the canary, hand-made visits,
feedback and telemetry are judged; worse -> the previous pack is sent back, same -> every other
store gets the pack."""

from __future__ import annotations

import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from cloud.cdp import members
from cloud.clock import iso
from cloud.fleet import devices
from cloud.fleet.rollout import telemetry
from cloud.fleet.rollout.evaluate import Tolerances, Window, decide
from protocol import topics, transport
from protocol.codec import decode
from protocol.commands import PACK, CommandAck, PackCommand
from protocol.device import CameraTelemetry, Telemetry

OLD, NEW = "yunet-mbf", "scrfd500m-mbf"
TOL = Tolerances()


def window(visits: int = 100, visitors: int = 30, cards: int | None = None, wrong: int = 2, fps: float | None = 20.0,
           reports: int = 10) -> Window:
    return Window(visits=visits, visitors=visitors, member_cards=visits - visitors if cards is None else cards,
                  not_this_person=wrong, reports=reports if fps is not None else 0, fps=fps)


def test_same_numbers_promote():
    decision = decide(window(), window(), window(), TOL)
    assert decision.verdict == "promote" and all(c.worse is False for c in decision.checks)


@pytest.mark.parametrize("after, metric", [
    (window(visitors=55), "unknown_rate"),  # 0.55 against 0.30: more arrivals become visitors
    (window(wrong=10), "not_this_person_rate"),  # 10 of 70 cards against 2 of 70
    (window(fps=12.0), "fps"),  # -40 %
])
def test_worse_than_both_references_rolls_back(after, metric):
    decision = decide(after, window(), window(), TOL)
    assert decision.verdict == "rollback" and decision.reason.startswith(f"{metric} worse")
    assert [c.metric for c in decision.checks if c.worse] == [metric]


def test_a_change_in_every_store_is_not_the_packs_fault():
    busy = window(visitors=55)  # a holiday: more first-time visitors everywhere
    assert decide(busy, window(), busy, TOL).verdict == "promote"


def test_within_tolerance_and_without_enough_data():
    assert decide(window(visitors=38, fps=17.0), window(), window(), TOL).verdict == "promote"  # +8 points, -15 %
    thin = decide(window(visits=10, visitors=9), window(), window(), TOL)
    assert thin.verdict == "wait" and "unknown_rate: not enough data" in thin.reason
    # no history and no other store: nothing to compare with
    assert decide(window(), window(visits=0, visitors=0, fps=None), window(visits=0, visitors=0, fps=None),
                  TOL).verdict == "wait"


class Box:
    """The broker side of a box that records the pack commands it is sent and acknowledges them."""

    def __init__(self, url: str) -> None:
        self.broker = transport.BrokerUrl.parse(url)
        self.commands: queue.Queue[PackCommand] = queue.Queue()
        ready = threading.Event()
        self.client = transport.make_client(self.broker, f"test-rollout-{uuid4().hex[:8]}")
        transport.subscribe_on_connect(self.client, [(f"{topics.ROOT}/demo/+/+/cmd/{PACK}", 1)])
        self.client.on_subscribe = lambda *args: ready.set()
        self.client.on_message = lambda c, u, m: self.commands.put(decode(m.payload, PackCommand))
        transport.start(self.client, self.broker)
        assert ready.wait(5)

    def received(self, count: int) -> list[PackCommand]:
        return sorted((self.commands.get(timeout=10) for _ in range(count)), key=lambda c: (c.store, c.device))

    def ack(self, command: PackCommand, ts: datetime, *, ok: bool = True, detail: str | None = None) -> None:
        ack = CommandAck(command_id=command.command_id, brand=command.brand, store=command.store, device=command.device,
                         name=PACK, ok=ok, detail=detail or f"switched to {command.pack_id}", ts=ts)
        topic = topics.device_command_ack(command.brand, command.store, command.device, PACK)
        transport.publish(self.client, topic, ack, qos=1).wait_for_publish(5)

    def close(self) -> None:
        transport.stop(self.client)


def _seed(runtime, member_id: str, store: str, start: datetime, visits: int, visitors: int, wrong: int,
          fps: float) -> None:
    """Hand-made traffic in one store over the hour from ``start``: visits, 'not this person' presses, telemetry."""
    db = runtime.db
    with db.transaction() as tx:
        for i in range(visits):
            ts, event = iso(start + timedelta(seconds=30 * i)), uuid4().hex
            tx.execute("INSERT INTO arrivals (event_id, brand, store, device, camera, ts, received) "
                       "VALUES (?, 'demo', ?, 'e1', 'door', ?, ?)", (event, store, ts, ts))
            tx.execute("INSERT INTO visits (id, brand, store, member_id, confidence, ts, arrival_event_id, device, "
                       "camera, card_id) VALUES (?, 'demo', ?, ?, 0.8, ?, ?, 'e1', 'door', ?)",
                       (uuid4().hex, store, None if i < visitors else member_id, ts, event, uuid4().hex))
        for i in range(wrong):
            ts = iso(start + timedelta(seconds=45 * i))
            tx.execute("INSERT INTO feedback (feedback_id, brand, store, screen, card_id, visit_id, member_id, action, "
                       "ts, received) VALUES (?, 'demo', ?, 'main', ?, ?, ?, 'not_this_person', ?, ?)",
                       (uuid4().hex, store, uuid4().hex, uuid4().hex, member_id, ts, ts))
    for i in range(6):
        telemetry.record(db, Telemetry(
            brand="demo", store=store, device="e1", ts=start + timedelta(minutes=10 * i), uptime_s=60.0,
            model_pack=OLD, faces=0, tracks=0, arrivals=0, same_visit=0, rejected={}, outbox_depth=0, outbox_dropped=0,
            cpu_percent=50.0, rss_mb=300.0,
            cameras=[CameraTelemetry(camera="door", state="running", fps=fps, detect_ms=20.0, frames=100,
                                     dropped_frames=0, reconnects=0)]))


def _wait_state(client, rollout_id: str, state: str) -> dict:
    deadline = time.monotonic() + 15
    while (body := client.get(f"/v1/rollouts/{rollout_id}").json())["state"] != state:
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    return body


@pytest.mark.parametrize("canary_after, verdict", [
    (dict(visits=120, visitors=84, wrong=2, fps=20.0), "rolled_back"),  # unknown rate 0.70 against 0.30
    (dict(visits=120, visitors=36, wrong=2, fps=19.5), "promoted"),
])
def test_rollout_is_judged_on_canary_telemetry_and_acts(start_cloud, mosquitto, canary_after, verdict):
    client, runtime = start_cloud(broker_url=mosquitto.url, rollout_check_s=0.5)
    for store in ("s1", "s2", "s3"):
        devices.observed(runtime.db, "demo", store, "e1", "edge", ts=datetime.now(UTC),
                         conn_state="online", model_pack=OLD)
    member = members.add_member(runtime.db, name="李娜", phone="13900139000", gender="female", tier="gold", tags=[],
                                      categories=[], face_consent=True, store="s1")
    box = Box(mosquitto.url)
    try:
        made = client.post("/v1/rollouts", json={"brand": "demo", "pack_id": NEW, "canary_stores": ["s1"],
                                                 "baseline_hours": 2, "observe_hours": 1})
        assert made.status_code == 201, made.text
        rollout = made.json()
        assert rollout["state"] == "planned" and rollout["devices"][0]["previous_pack"] == OLD
        [sent] = box.received(1)
        assert (sent.store, sent.pack_id, sent.rollout_id) == ("s1", NEW, rollout["id"])
        again = client.post("/v1/rollouts", json={"brand": "demo", "pack_id": NEW, "canary_stores": ["s2"]})
        assert again.status_code == 409 and "still running" in again.json()["detail"]["message"]

        started = datetime.now(UTC) - timedelta(hours=1, minutes=5)
        for store, start, numbers in (("s1", started - timedelta(hours=1), dict(visits=120, visitors=36, wrong=2, fps=20.0)),
                                      ("s1", started, canary_after),
                                      ("s2", started, dict(visits=120, visitors=36, wrong=2, fps=20.0)),
                                      ("s3", started, dict(visits=120, visitors=36, wrong=1, fps=21.0))):
            _seed(runtime, member.id, store, start, **numbers)
        box.ack(sent, started)  # the box switched 65 minutes ago; the periodic evaluation takes it from here
        done = _wait_state(client, rollout["id"], verdict)
        assert done["started"] is not None and done["evaluation"]["verdict"] in ("rollback", "promote")
        if verdict == "rolled_back":
            assert done["reason"].startswith("unknown_rate worse: canary 0.700 vs before 0.300, others 0.300")
            [back] = box.received(1)
            assert (back.store, back.device, back.pack_id, back.manifest_sha256) == ("s1", "e1", OLD, None)
        else:
            assert [(c.store, c.pack_id) for c in box.received(2)] == [("s2", NEW), ("s3", NEW)]
        phases = sorted((d["store"], d["phase"], d["command_state"]) for d in done["devices"])
        assert phases[0] == ("s1", "canary", "done")
        listed = client.get("/v1/rollouts").json()
        assert [r["id"] for r in listed] == [rollout["id"]]
        assert client.post(f"/v1/rollouts/{rollout['id']}/promote", json={}).status_code == 409
    finally:
        box.close()


def test_a_pack_every_canary_box_refuses_ends_the_rollout(start_cloud, mosquitto):
    client, runtime = start_cloud(broker_url=mosquitto.url, rollout_check_s=0.5)
    devices.observed(runtime.db, "demo", "s1", "e1", "edge", ts=datetime.now(UTC), model_pack=OLD)
    box = Box(mosquitto.url)
    try:
        rollout = client.post("/v1/rollouts", json={"brand": "demo", "pack_id": NEW, "canary_stores": ["s1"]}).json()
        [sent] = box.received(1)
        box.ack(sent, datetime.now(UTC), ok=False, detail="refused, still running yunet-mbf: pack in "
                "/opt/models/scrfd500m-mbf is unsigned: no pack.signed.json")
        done = _wait_state(client, rollout["id"], "rolled_back")
        assert done["decision"] == "refused" and "is unsigned" in done["reason"]
        assert [(d["phase"], d["command_state"]) for d in done["devices"]] == [("canary", "refused")]
        assert box.commands.empty(), "nothing switched, so nothing is sent back"
        unknown = client.post("/v1/rollouts", json={"brand": "demo", "pack_id": "nope", "canary_stores": ["s1"]})
        assert unknown.status_code == 422 and "unknown model pack" in unknown.json()["detail"]["message"]
        empty = client.post("/v1/rollouts", json={"brand": "demo", "pack_id": NEW, "canary_stores": ["s9"]})
        assert empty.status_code == 422 and "no edge box known in canary store(s) s9" in empty.json()["detail"]["message"]
    finally:
        box.close()
