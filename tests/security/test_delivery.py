"""Issue 14, findings 3, 4, 5 and 13, replayed against a Mosquitto running the configuration
``instore provision broker-config`` generates (the session's ``broker`` fixture):

* 3: events queued for the cloud's offline persistent ingest session survive a broker restart
  (an operator's SIGTERM, and a crash's SIGKILL after the autosave interval);
* 4: a device connecting with the cloud ingest's client id (or another device's) neither kicks it
  off nor wipes its session; a device certificate cannot reach the service listener at all;
* 5: a device the broker does not know yet is refused (PUBACK 0x87): the edge keeps every row,
  counts the refusal in its telemetry and state file, and delivers them all once the device is
  added live through the dynamic-security plugin (no broker restart);
* 13: a packet over the cap is cut off at its header; a 60 KiB message still goes.
"""

from __future__ import annotations

import json
import signal
import time
import uuid

import numpy as np
import pytest

from edge.outbox import Outbox
from edge.placement import Placement
from edge.publisher import DELIVERY_KEY, Publisher
from edge.state import StateFile
from edge.telemetry import Health
from protocol import topics, transport
from protocol.codec import decode, encode
from protocol.embedding import Embedding
from protocol.messages import Arrival, FaceQuality, new_id, now
from provisioning import dynsec, fleet
from provisioning.broker_config import CONF_NAME, MAX_PACKET_BYTES

BRAND = "acme"
NOT_AUTHORIZED = "Not authorized"
ACCEPTED = ("Success", "No matching subscribers")
SHARED_EVENTS = topics.shared(topics.ALL_DEVICE_EVENTS, "cdp")


def _arrival(store: str, device: str) -> Arrival:
    vec = np.random.default_rng().standard_normal(128).astype(np.float32)
    return Arrival(
        event_id=new_id(), ts=now(), brand=BRAND, store=store, device=device, camera="door", track_id="t1",
        embedding=Embedding.from_vector(vec / np.linalg.norm(vec)),
        quality=FaceQuality(det_score=0.9, face_px=80, bbox=(0, 0, 80, 80)), model_pack="scrfd500m-mbf",
    )


def _ids(probe_) -> list[str]:
    return [decode(m.payload, Arrival).event_id for m in probe_.messages]


class IngestSession:
    """The cloud's ingest as ``cloud serve --client-id ... --session-expiry``: a persistent MQTT 5
    session on the service listener, subscribed to every store's events through share group cdp."""

    def __init__(self, probe, bundle_of) -> None:
        self.probe, self.bundle = probe, bundle_of("*", fleet.CLOUD_SERVICE)
        self.client_id = f"cloud-ingest-{uuid.uuid4().hex[:8]}"
        self.current = None

    def connect(self, *, subscribe: bool = False):
        self.current = self.probe(self.bundle, client_id=self.client_id)
        assert self.current.connect(clean=False, session_expiry_s=600) == "Success"
        if subscribe:
            assert self.current.subscribe(SHARED_EVENTS) == "Granted QoS 1"
        return self.current

    def go_offline(self) -> None:
        self.current.close()

    def end(self) -> None:
        """Remove the session, so later tests' share group has no offline member."""
        ender = self.probe(self.bundle, client_id=self.client_id)
        if ender.connect(clean=True) == "Success":
            ender.close()


@pytest.fixture
def ingest(probe, bundle_of):
    session = IngestSession(probe, bundle_of)
    yield session
    session.end()


def _publish_queued(bundle_of, broker, probe, n: int = 3) -> list[str]:
    edge = probe(bundle_of("s1", "edge-1"))
    assert edge.connect() == "Success"
    sent = []
    for _ in range(n):
        arrival = _arrival("s1", "edge-1")
        assert edge.publish(topics.arrival(BRAND, "s1", "edge-1"), encode(arrival)) == "Success"  # queued: a subscriber
        sent.append(arrival.event_id)
    edge.close()
    return sent


def test_generated_config_persists_to_disk_and_caps_packets(home, broker):
    conf = (home.broker_dir() / CONF_NAME).read_text()
    assert "persistence true" in conf and "persistence false" not in conf
    assert "persistence_location " in conf and "autosave_interval " in conf
    assert f"max_packet_size {MAX_PACKET_BYTES}" in conf
    assert "use_username_as_clientid true" in conf


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_events_queued_for_the_offline_ingest_survive_a_broker_restart(home, bundle_of, broker, probe, ingest, how):
    ingest.connect(subscribe=True)
    ingest.go_offline()
    sent = _publish_queued(bundle_of, broker, probe)
    if how == "SIGTERM":  # an operator's restart (the old revocation procedure)
        broker.restart()
    else:  # a crash, after the autosave interval (5 s) wrote the queue to disk
        time.sleep(6)
        broker.proc.send_signal(signal.SIGKILL)
        broker.proc.wait(10)
        broker.proc = None
        broker.start()
    back = ingest.connect()
    assert back.wait(lambda: len(back.messages) >= len(sent), timeout=10), f"got {_ids(back)} of {sent}"
    assert sorted(_ids(back)) == sorted(sent)


def test_a_device_cannot_take_the_ingest_session_or_its_queue(home, bundle_of, broker, probe, ingest):
    ingest.connect(subscribe=True)
    ingest.go_offline()
    sent = _publish_queued(bundle_of, broker, probe)
    # a stolen edge box connects with the cloud ingest's client id and a clean start
    thief = probe(bundle_of("s2", "edge-1"), client_id=ingest.client_id)
    assert thief.connect(clean=True) == "Success"  # it connects, as itself: the broker replaced the id
    thief.close()
    back = ingest.connect()
    assert back.wait(lambda: len(back.messages) >= len(sent), timeout=10), "the ingest's session was wiped"
    assert sorted(_ids(back)) == sorted(sent)
    # and while the ingest is connected, the same trick does not kick it off
    thief = probe(bundle_of("s2", "edge-1"), client_id=ingest.client_id)
    assert thief.connect(clean=True) == "Success"
    time.sleep(0.5)
    assert not back.disconnects, back.disconnects
    arrival = _arrival("s2", "edge-1")
    assert thief.publish(topics.arrival(BRAND, "s2", "edge-1"), encode(arrival)) == "Success"
    assert back.wait(lambda: arrival.event_id in _ids(back), timeout=5)


def test_a_device_cannot_kick_another_device(home, bundle_of, broker, probe):
    victim = probe(bundle_of("s1", "kiosk-main"), client_id="kiosk-main-s1")
    assert victim.connect() == "Success"
    attacker = probe(bundle_of("s1", "edge-1"), client_id="kiosk-main-s1")
    assert attacker.connect() == "Success"
    time.sleep(0.5)
    assert not victim.disconnects, victim.disconnects


def test_a_device_certificate_cannot_reach_the_service_listener(home, bundle_of, broker, probe, service_port):
    edge = probe(bundle_of("s1", "edge-1"), client_id="cloud-ingest-anything")
    assert edge.connect(service_port).startswith("refused")


def test_the_cloud_certificate_is_only_for_the_service_listener(home, bundle_of, broker, probe):
    cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
    assert cloud.connect(broker.port).startswith("refused")  # services CA: not on the device listener


def test_a_device_unknown_to_the_broker_loses_nothing_and_is_added_live(home, bundle_of, broker, probe, tmp_path):
    """Finding 5 with the live add of finding 4: no restart, no loss."""
    fleet.create_device(home, "s1", "edge-late", "edge")
    bundle_dir, _ = fleet.write_bundle(home, "edge-late", "s1")
    bundle = bundle_of("s1", "edge-late")
    cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
    assert cloud.connect() == "Success"
    assert cloud.subscribe(SHARED_EVENTS) == "Granted QoS 1"

    state = StateFile(tmp_path / "late.db")
    outbox = Outbox(state)
    publisher = Publisher(bundle.broker, BRAND, "s1", "edge-late", "scrfd500m-mbf", outbox)
    health = Health(Placement(BRAND, "s1", "edge-late"), "scrfd500m-mbf", outbox, delivery=publisher.delivery)
    sent = [outbox.put(topics.arrival(BRAND, "s1", "edge-late"), a) and a.event_id
            for a in (_arrival("s1", "edge-late") for _ in range(5))]
    publisher.start()
    try:
        deadline = time.monotonic() + 10
        while not publisher.refused and time.monotonic() < deadline:
            time.sleep(0.05)
        assert publisher.refused.get(NOT_AUTHORIZED), "the broker should refuse a device it does not know"
        time.sleep(0.3)
        assert outbox.depth == 5 and not cloud.messages  # refused rows were kept, nothing went through
        report = health.report([])
        assert report.outbox_refused.get(NOT_AUTHORIZED) and report.outbox_backoff_s >= 1
        assert json.loads(state.remembered(DELIVERY_KEY))["refused_total"][NOT_AUTHORIZED] >= 1

        started = time.monotonic()
        result = dynsec.sync(home, home.load(), dynsec.admin_url(home, home.load()))
        assert "CN=edge-late,OU=s1,O=acme" in result.created and not result.deleted
        assert cloud.wait(lambda: len(cloud.messages) >= 5, timeout=70), f"{len(cloud.messages)} of 5 arrived"
        assert sorted(set(_ids(cloud))) == sorted(sent)
        assert outbox.wait_empty(5) == 0
        print(f"refused rows delivered {time.monotonic() - started:.1f} s after the live add")
        assert health.report([]).outbox_backoff_s == 0
    finally:
        publisher.close()
        state.close()


def test_a_packet_over_the_cap_is_cut_off_and_a_normal_one_goes(home, bundle_of, broker, probe):
    cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
    assert cloud.connect() == "Success"
    assert cloud.subscribe(SHARED_EVENTS) == "Granted QoS 1"
    edge = probe(bundle_of("s1", "edge-1"))
    assert edge.connect() == "Success"
    assert edge.publish(topics.arrival(BRAND, "s1", "edge-1"), b"x" * 60_000) in ACCEPTED
    assert cloud.wait(lambda: len(cloud.messages) == 1)
    info = edge.client.publish(topics.arrival(BRAND, "s1", "edge-1"), b"x" * (4 * 2**20), qos=1)
    assert edge.wait(lambda: edge.disconnects, timeout=10), "the broker should drop a client sending 4 MB"
    assert info.mid not in edge.pubacks
    time.sleep(0.5)
    assert len(cloud.messages) == 1  # the big one never reached the ingest


def test_after_a_restart_with_the_ingest_down_the_edge_keeps_what_the_broker_cannot_queue(
        home, bundle_of, broker, probe, ingest, tmp_path):
    """Mosquitto 2.0.11 persists sessions and their queued messages but not shared subscriptions
    (src/persist_write.c saves ``node->subs`` only): after a restart, until the ingest is back and
    subscribes again, an arrival finds no subscriber (PUBACK 0x10). The broker drops it; the edge
    must not: the row stays and goes again until the ingest takes it."""
    ingest.connect(subscribe=True)
    ingest.go_offline()
    broker.restart()
    state = StateFile(tmp_path / "box.db")
    outbox = Outbox(state)
    bundle = bundle_of("s1", "edge-1")
    publisher = Publisher(bundle.broker, BRAND, "s1", "edge-1", "scrfd500m-mbf", outbox)
    sent = [a.event_id for a in (_arrival("s1", "edge-1") for _ in range(3))
            if outbox.put(topics.arrival(BRAND, "s1", "edge-1"), a)]
    publisher.start()
    try:
        deadline = time.monotonic() + 10
        while not publisher.unheard and time.monotonic() < deadline:
            time.sleep(0.05)
        assert publisher.unheard, "expected PUBACK 0x10 while the restarted broker has no subscription"
        assert outbox.depth == 3
        back = ingest.connect(subscribe=True)  # the ingest's start subscribes again
        assert back.wait(lambda: set(sent) <= set(_ids(back)), timeout=10), f"got {_ids(back)} of {sent}"
        assert outbox.wait_empty(5) == 0
    finally:
        publisher.close()
        state.close()


def test_publish_confirmed_does_not_take_a_refusal_for_a_confirmation(home, bundle_of, broker):
    """The cloud's command and alert senders mark a row sent on ``publish_confirmed``: a PUBACK
    0x87 must come back as a failure, not as sent (finding 5 on the cloud's side)."""
    from protocol.messages import DeviceState

    bundle = bundle_of("s1", "esl-1")
    client = transport.make_client(bundle.broker, "esl-confirm")
    transport.start(client, bundle.broker)
    try:
        state = DeviceState(brand=BRAND, store="s1", device="esl-1", role="esl_gateway", state="online", ts=now())
        assert transport.publish_confirmed(client, topics.device_state(BRAND, "s1", "esl-1"), state, timeout=5) is None
        refused = transport.publish_confirmed(client, topics.device_state(BRAND, "s2", "esl-1"), state, timeout=5)
        assert refused is not None and NOT_AUTHORIZED in refused
    finally:
        transport.stop(client)
