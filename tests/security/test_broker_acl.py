"""Every refusal the issue asks for, shown against a real Mosquitto running the generated config."""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
import time

import numpy as np
import paho.mqtt.client as mqtt

from kiosk.guide_screen.feed import crops_of_store
from protocol import topics, transport
from protocol.bundle import load_bundle
from protocol.codec import decode, encode
from protocol.embedding import Embedding
from protocol.messages import Arrival, FaceQuality, new_id, now
from provisioning import fleet, pki

BRAND = "acme"
NOT_AUTHORIZED = "Not authorized"
#: PUBACK reason codes of an accepted publish (16 when nobody subscribes yet).
ACCEPTED = ("Success", "No matching subscribers")


def _arrival(store: str, device: str) -> Arrival:
    vec = np.random.default_rng(1).standard_normal(128).astype(np.float32)
    return Arrival(
        event_id=new_id(), ts=now(), brand=BRAND, store=store, device=device, camera="door", track_id="t1",
        embedding=Embedding.from_vector(vec / np.linalg.norm(vec)),
        quality=FaceQuality(det_score=0.9, face_px=80, bbox=(0, 0, 80, 80)), model_pack="scrfd500m-mbf",
    )


def _cloud(bundle_of, broker, probe):
    cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
    assert cloud.connect() == "Success"
    assert cloud.subscribe(topics.shared(topics.ALL_DEVICE_EVENTS, "cdp")) == "Granted QoS 1"
    return cloud


def test_device_publishes_its_arrivals_to_the_cloud(bundle_of, broker, probe):
    cloud = _cloud(bundle_of, broker, probe)
    edge = probe(bundle_of("s1", "edge-1"))
    assert edge.connect(broker.port) == "Success"
    arrival = _arrival("s1", "edge-1")
    assert edge.publish(topics.arrival(BRAND, "s1", "edge-1"), encode(arrival)) in ACCEPTED
    assert cloud.wait(lambda: cloud.messages)
    assert decode(cloud.messages[0].payload, Arrival).event_id == arrival.event_id


def test_device_cannot_publish_as_another_device_or_store(home, bundle_of, broker, probe):
    cloud = _cloud(bundle_of, broker, probe)
    edge = probe(bundle_of("s1", "edge-1"))
    assert edge.connect(broker.port) == "Success"
    forged = [
        topics.arrival(BRAND, "s1", "edge-2"),  # another device of its store
        topics.arrival(BRAND, "s2", "edge-1"),  # the same device id in another store
        topics.arrival("other", "s1", "edge-1"),  # another brand
        topics.guide_card(BRAND, "s1"),  # a downlink only the cloud may send
    ]
    for topic in forged:
        assert edge.publish(topic, encode(_arrival("s2", "edge-1"))) == NOT_AUTHORIZED, topic
    assert edge.publish(topics.arrival(BRAND, "s1", "edge-1"), encode(_arrival("s1", "edge-1"))) in ACCEPTED
    assert cloud.wait(lambda: cloud.messages)
    time.sleep(0.3)
    assert [m.topic for m in cloud.messages] == [topics.arrival(BRAND, "s1", "edge-1")]


def test_guide_screen_reads_its_own_store_only(home, bundle_of, broker, probe):
    kiosk = probe(bundle_of("s1", "kiosk-main"))
    assert kiosk.connect(broker.port) == "Success"
    assert kiosk.subscribe(topics.guide_cards_of_store(BRAND, "s2")) == NOT_AUTHORIZED
    assert kiosk.subscribe(f"instore/v1/{BRAND}/+/guide/+/card") == NOT_AUTHORIZED
    assert kiosk.subscribe("instore/v1/#") == NOT_AUTHORIZED
    assert kiosk.subscribe(topics.guide_cards_of_store(BRAND, "s1")) == "Granted QoS 1"
    assert kiosk.subscribe(crops_of_store(BRAND, "s2")) == NOT_AUTHORIZED  # another store's live face crops
    # even its own: crops never travel through the cloud broker (only a store's own broker grants them)
    assert kiosk.subscribe(crops_of_store(BRAND, "s1")) == NOT_AUTHORIZED

    cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
    assert cloud.connect() == "Success"
    assert cloud.publish(topics.guide_card(BRAND, "s2"), b"{}") in ACCEPTED
    assert cloud.publish(topics.guide_card(BRAND, "s1"), b"{}") in ACCEPTED
    assert kiosk.wait(lambda: kiosk.messages)
    time.sleep(0.3)
    assert [m.topic for m in kiosk.messages] == [topics.guide_card(BRAND, "s1")]


def test_guide_screen_publishes_its_feedback_only(home, bundle_of, broker, probe):
    kiosk = probe(bundle_of("s1", "kiosk-main"))
    assert kiosk.connect(broker.port) == "Success"
    for own in (topics.guide_feedback, topics.guide_staff):  # its cards' feedback, its assistants' sign-ins
        assert kiosk.publish(own(BRAND, "s1", "main"), b"{}") in ACCEPTED
        assert kiosk.publish(own(BRAND, "s1", "other"), b"{}") == NOT_AUTHORIZED
        assert kiosk.publish(own(BRAND, "s2", "main"), b"{}") == NOT_AUTHORIZED
    assert kiosk.publish(topics.arrival(BRAND, "s1", "kiosk-main"), b"{}") == NOT_AUTHORIZED


def test_guide_screen_reads_its_stores_floor_which_only_the_cloud_writes(home, bundle_of, broker, probe):
    kiosk = probe(bundle_of("s1", "kiosk-main"))
    assert kiosk.connect(broker.port) == "Success"
    assert kiosk.publish(topics.guide_floor(BRAND, "s1"), b"{}") == NOT_AUTHORIZED  # the cloud says who is on it
    cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
    assert cloud.connect() == "Success"
    for store in ("s2", "s1"):
        assert cloud.publish(topics.guide_floor(BRAND, store), b"{}", retain=True) in ACCEPTED
    assert kiosk.subscribe(topics.guide_floor(BRAND, "s2")) == NOT_AUTHORIZED
    assert kiosk.subscribe(topics.guide_floor(BRAND, "s1")) == "Granted QoS 1"
    assert kiosk.wait(lambda: kiosk.messages), "the retained floor, at the subscription"
    assert [(m.topic, m.retain) for m in kiosk.messages] == [(topics.guide_floor(BRAND, "s1"), True)]
    for store in ("s2", "s1"):  # the retained copies gone, for the module's other tests
        assert cloud.publish(topics.guide_floor(BRAND, store), b"", retain=True) in ACCEPTED


def test_edge_and_esl_cannot_widen_their_subscriptions(home, bundle_of, broker, probe):
    edge = probe(bundle_of("s1", "edge-1"))
    assert edge.connect(broker.port) == "Success"
    assert edge.subscribe(topics.config_desired(BRAND, "s1", "edge-1")) == "Granted QoS 1"
    assert edge.subscribe(topics.config_desired(BRAND, "s1", "esl-1")) == NOT_AUTHORIZED
    assert edge.subscribe(f"instore/v1/{BRAND}/s1/+/cfg/desired") == NOT_AUTHORIZED
    assert edge.subscribe(topics.ALL_DEVICE_EVENTS) == NOT_AUTHORIZED
    esl = probe(bundle_of("s1", "esl-1"))
    assert esl.connect(broker.port) == "Success"
    assert esl.subscribe(f"instore/v1/{BRAND}/s1/esl/#") == "Granted QoS 1"
    assert esl.subscribe(f"instore/v1/{BRAND}/s2/esl/#") == NOT_AUTHORIZED


def test_cloud_reads_every_store_only_through_the_shared_subscription(home, bundle_of, broker, probe):
    cloud = probe(bundle_of("*", fleet.CLOUD_SERVICE))
    assert cloud.connect() == "Success"
    assert cloud.subscribe(topics.ALL_DEVICE_EVENTS) == NOT_AUTHORIZED
    assert cloud.subscribe(topics.shared(topics.ALL_DEVICE_EVENTS, "other")) == NOT_AUTHORIZED
    assert cloud.subscribe(topics.shared(topics.ALL_DEVICE_EVENTS, "cdp")) == "Granted QoS 1"
    assert cloud.subscribe(topics.ALL_DEVICE_STATES) == "Granted QoS 1"  # retained: never shared


def test_client_without_certificate_cannot_connect(home, broker, raw_probe):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="nocert", protocol=mqtt.MQTTv5)
    client.tls_set_context(ssl.create_default_context(cafile=str(home.ca_cert)))
    assert raw_probe(client).connect(broker.port).startswith("refused")


def test_certificate_from_another_ca_cannot_connect(home, bundle_of, broker, probe, tmp_path):
    rogue_ca = pki.create_ca(BRAND)
    rogue = pki.issue_client(rogue_ca, pki.Identity(BRAND, "s1", "edge-1", "edge"))
    pki.save(rogue, tmp_path / "rogue.crt", tmp_path / "rogue.key")
    url = transport.BrokerUrl.parse(f"mqtts://127.0.0.1:{broker.port}").with_tls(
        transport.TlsFiles(home.ca_cert, tmp_path / "rogue.crt", tmp_path / "rogue.key")
    )
    assert probe(url=url).connect(broker.port).startswith("refused")


def test_expired_certificate_cannot_connect(home, bundle_of, broker, probe):
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
    fleet.create_device(home, "s1", "edge-old", "edge", days=30, now=long_ago)
    fleet.write_bundle(home, "edge-old", "s1")
    bundle = bundle_of("s1", "edge-old")
    assert bundle.cert_days_left() < 0 and "expired" in bundle.expiry_warning()
    assert probe(bundle).connect(broker.port).startswith("refused")


def test_unregistered_certificate_gets_nothing(home, bundle_of, broker, probe, tmp_path):
    """Signed by the brand CA but never registered (e.g. issued by hand): no ACL, so no access."""
    ca = pki.load(home.ca_cert, home.ca_key)
    stray = pki.issue_client(ca, pki.Identity(BRAND, "s1", "edge-9", "edge"))
    pki.save(stray, tmp_path / "stray.crt", tmp_path / "stray.key")
    url = transport.BrokerUrl.parse(f"mqtts://127.0.0.1:{broker.port}").with_tls(
        transport.TlsFiles(home.ca_cert, tmp_path / "stray.crt", tmp_path / "stray.key")
    )
    stray_probe = probe(url=url)
    assert stray_probe.connect(broker.port) == "Success"
    assert stray_probe.publish(topics.arrival(BRAND, "s1", "edge-9"), b"{}") == NOT_AUTHORIZED
    assert stray_probe.subscribe(topics.guide_cards_of_store(BRAND, "s1")) == NOT_AUTHORIZED


def test_revoked_certificate_cannot_connect(home, bundle_of, broker, probe, reload_acls, tmp_path):
    fleet.create_device(home, "s2", "edge-gone", "edge")
    fleet.write_bundle(home, "edge-gone", "s2")
    installed = tmp_path / "installed"  # the copy on the box in the store, which keeps its key
    shutil.copytree(home.bundle_dir("s2", "edge-gone"), installed)
    reload_acls()
    assert probe(load_bundle(installed)).connect(broker.port) == "Success"

    fleet.revoke(home, "edge-gone", "s2")
    reload_acls()
    assert probe(load_bundle(installed)).connect(broker.port).startswith("refused")
    assert probe(bundle_of("s2", "edge-1")).connect(broker.port) == "Success"


def test_transport_start_connects_with_a_bundle(home, bundle_of, broker):
    client = transport.make_client(bundle_of("s1", "edge-1").broker, "edge-1-start")
    transport.start(client, bundle_of("s1", "edge-1").broker, timeout=10)
    transport.stop(client)


def test_in_store_broker_bridges_uplinks_and_downlinks(home, bundle_of, broker, store_broker, probe):
    cloud = _cloud(bundle_of, broker, probe)
    kiosk = probe(bundle_of("s3", "kiosk-main"))
    edge = probe(bundle_of("s3", "edge-1"))
    for device in (kiosk, edge):
        assert device.connect(store_broker.port) == "Success"
    assert kiosk.subscribe(topics.guide_cards_of_store(BRAND, "s3")) == "Granted QoS 1"
    assert kiosk.subscribe(topics.guide_cards_of_store(BRAND, "s1")) == NOT_AUTHORIZED
    time.sleep(0.5)  # the bridge subscribes on the cloud side once connected
    deadline = time.monotonic() + 10
    while not cloud.messages and time.monotonic() < deadline:
        assert edge.publish(topics.arrival(BRAND, "s3", "edge-1"), encode(_arrival("s3", "edge-1"))) in ACCEPTED
        cloud.wait(lambda: cloud.messages, timeout=1)
    assert cloud.messages[0].topic == topics.arrival(BRAND, "s3", "edge-1")
    while not kiosk.messages and time.monotonic() < deadline:
        assert cloud.publish(topics.guide_card(BRAND, "s3"), b"{}") in ACCEPTED
        kiosk.wait(lambda: kiosk.messages, timeout=1)
    assert kiosk.messages[0].topic == topics.guide_card(BRAND, "s3")
