"""Wi-Fi, device registry and feedback on the cloud side, through a real Mosquitto."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud.arrivals import feedback
from cloud.db import Database
from protocol import topics, transport
from protocol.messages import DeviceState, Feedback, new_id, now
from protocol.wifi import WifiFootfall, WifiPresence, device_key
from tests.cloud.test_cloud_ingest import BRAND, Guide, _stats_when, edge, guide, store_id  # noqa: F401

SECRET = "brand-wifi-secret-0123456789"
MAC = "3c:22:fb:12:34:56"  # globally administered: stable
SPELLINGS = (MAC, MAC.upper(), MAC.replace(":", ""), MAC.replace(":", "-"), "3c22.fb12.3456")


@pytest.fixture(autouse=True)
def wifi_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTORE_WIFI_SECRET", SECRET)


def _member(client, phone: str = "13800138000", face: bool = True) -> str:
    body = {"name": "王芳", "phone": phone, "gender": "female", "consent": {"face": face}}
    return client.post("/v1/members", json=body).json()["id"]


def _member_with_face_and_phone(client, faces_dir: Path) -> tuple[str, str]:
    wang = _member(client)
    files = {"image": ("face.jpg", (faces_dir / "deepface_id01/img1.jpg").read_bytes(), "image/jpeg")}
    assert client.post(f"/v1/members/{wang}/faces", files=files).status_code == 201
    return wang, client.post(f"/v1/members/{wang}/devices", json={"mac": MAC}).json()["device_key"]


def _presence(store: str, phase: str, *, key: str, first_seen=None, device: str = "wifi-01") -> WifiPresence:
    ts = now()
    first = first_seen or ts - timedelta(seconds=90)
    return WifiPresence(event_id=new_id(), ts=ts, brand=BRAND, store=store, device=device, device_key=key,
                        phase=phase, first_seen=first, last_seen=ts, dwell_s=(ts - first).total_seconds(), frames=12,
                        rssi_max=-50, rssi_median=-60)


def _visits_when(client, store: str, predicate, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        visits = client.get(f"/v1/stores/{store}/visits").json()
        if predicate(visits) or time.monotonic() > deadline:
            return visits
        time.sleep(0.02)


def tables(db: Database) -> list[str]:
    return [r[0] for r in db.rows(
        "SELECT name FROM sqlite_master WHERE type = 'table'" if db.dialect.name == "sqlite"
        else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


def _dump(db: Database) -> str:
    """Every row of every table as text, to look for a raw MAC."""
    return "\n".join(repr(db.rows(f"SELECT * FROM {t}")) for t in tables(db)).lower()


def test_register_device_keeps_only_the_key(start_cloud, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client, runtime = start_cloud()
    wang, zhang = _member(client), _member(client, "13900139000")

    made = client.post(f"/v1/members/{wang}/devices", json={"mac": MAC})
    assert made.status_code == 201 and made.json() == {"device_key": device_key(MAC, SECRET), "created": True}
    again = client.post(f"/v1/members/{wang}/devices", json={"mac": MAC.upper()})
    assert again.status_code == 200 and again.json()["created"] is False
    taken = client.post(f"/v1/members/{zhang}/devices", json={"mac": MAC})
    assert taken.status_code == 409 and taken.json()["detail"]["code"] == "device_taken"
    private = client.post(f"/v1/members/{wang}/devices", json={"mac": "3e:22:fb:12:34:56"})
    assert private.status_code == 422 and private.json()["detail"]["code"] == "invalid_mac"
    assert "randomised" in private.json()["detail"]["message"]
    bad = client.post(f"/v1/members/{wang}/devices", json={"mac": "not a mac"})
    assert bad.status_code == 422 and bad.json()["detail"]["code"] == "invalid_mac"
    assert client.post("/v1/members/nobody/devices", json={"mac": MAC}).status_code == 404
    runtime.settings = runtime.settings.model_copy(update={"wifi_secret_value": None})  # as if never configured
    missing = client.post(f"/v1/members/{zhang}/devices", json={"mac": "3c:22:fb:00:00:01"})
    assert missing.status_code == 409 and missing.json()["detail"]["code"] == "wifi_secret_missing"

    # a soft identifier: attached to the person, linking nobody
    kinds = runtime.db.rows("SELECT kind, value FROM identifiers WHERE kind = 'mac'")
    assert kinds == [("mac", device_key(MAC, SECRET))]
    dump, logs = _dump(runtime.db), caplog.text.lower()
    for spelling in SPELLINGS:
        assert spelling.lower() not in dump and spelling.lower() not in logs


def test_presence_of_a_registered_phone_makes_a_visit_and_unknown_keys_leave_nothing(
    start_cloud, mosquitto, edge: mqtt.Client, store_id: str  # noqa: F811
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url)
    wang = _member(client)
    key = client.post(f"/v1/members/{wang}/devices", json={"mac": MAC}).json()["device_key"]
    topic = topics.presence(BRAND, store_id, "wifi-01")

    transport.publish(edge, topic, _presence(store_id, "enter", key=key)).wait_for_publish(5)
    visits = _visits_when(client, store_id, lambda v: len(v) == 1)
    assert len(visits) == 1 and visits[0]["member_id"] == wang and visits[0]["signals"] == "wifi"
    assert visits[0]["card_id"] is None and visits[0]["confidence"] == pytest.approx(0.5)
    transport.publish(edge, topic, _presence(store_id, "leave", key=key)).wait_for_publish(5)
    visits = _visits_when(client, store_id, lambda v: v[0]["left_ts"] is not None)
    assert visits[0]["dwell_s"] == pytest.approx(90, abs=1)

    stranger = device_key("3c:22:fb:99:99:99", SECRET)
    transport.publish(edge, topic, _presence(store_id, "enter", key=stranger)).wait_for_publish(5)
    edge.publish(topic, b"{not json", qos=1).wait_for_publish(5)
    mismatch = _presence("elsewhere", "enter", key=key)
    edge.publish(topic, mismatch.model_dump_json().encode(), qos=1).wait_for_publish(5)
    stats = _stats_when(client, lambda s: sum(s["rejected"].values()) >= 3)
    assert stats["rejected"] == {"unknown_device_key": 1, "invalid_payload": 1, "topic_mismatch": 1}
    assert stats["presence"] == 2
    assert stranger not in _dump(runtime.db)


def test_face_and_wifi_of_one_member_are_one_visit_and_one_card(
    start_cloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, faces_dir: Path,  # noqa: F811
    store_id: str,  # noqa: F811
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url)
    wang, key = _member_with_face_and_phone(client, faces_dir)

    # face first, then the phone: the presence joins the face visit
    arrival = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=BRAND, store=store_id)
    transport.publish(edge, topics.arrival(BRAND, store_id, "edge-01"), arrival).wait_for_publish(5)
    card = guide.next()
    assert card.member is not None and card.member.member_id == wang
    transport.publish(edge, topics.presence(BRAND, store_id, "wifi-01"),
                      _presence(store_id, "enter", key=key)).wait_for_publish(5)
    visits = _visits_when(client, store_id, lambda v: v and v[0]["signals"] == "face+wifi")
    assert len(visits) == 1 and visits[0]["signals"] == "face+wifi" and visits[0]["card_id"] == card.card_id
    # the visit keeps the face's cosine; the fusion's posterior sits beside it (cloud.arrivals.fusion)
    assert visits[0]["confidence"] == pytest.approx(card.confidence)
    assert visits[0]["fused_confidence"] == pytest.approx(card.evidence.fused) and visits[0]["phone"] == "absent"

    # feedback on that card: stored once, "not this person" is negative evidence against the match
    fb = Feedback(feedback_id=new_id(), card_id=card.card_id, visit_id=card.visit_id, brand=BRAND, store=store_id,
                  screen="s1", action="not_this_person", ts=now())
    for _ in range(2):
        transport.publish(edge, topics.guide_feedback(BRAND, store_id, "s1"), fb).wait_for_publish(5)
    bogus = fb.model_copy(update={"feedback_id": new_id(), "visit_id": new_id()})
    transport.publish(edge, topics.guide_feedback(BRAND, store_id, "s1"), bogus).wait_for_publish(5)
    stats = _stats_when(client, lambda s: s["duplicates"] >= 1 and "unknown_visit" in s["rejected"])
    assert stats["feedback"] == 1 and stats["rejected"]["unknown_visit"] == 1
    items = client.get(f"/v1/stores/{store_id}/feedback").json()["items"]
    assert [(i["action"], i["member_id"], i["visit_id"]) for i in items] == [("not_this_person", wang, card.visit_id)]
    assert feedback.doubts(runtime.db, wang) == 1
    assert feedback.threshold_penalty(runtime.db, wang) == pytest.approx(feedback.DOUBT_STEP)
    assert guide.cards.empty()  # never a second card


def test_wifi_first_then_face_joins_without_a_second_card(
    start_cloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, faces_dir: Path,  # noqa: F811
    store_id: str,  # noqa: F811
) -> None:
    client, _ = start_cloud(broker_url=mosquitto.url)
    wang, key = _member_with_face_and_phone(client, faces_dir)
    transport.publish(edge, topics.presence(BRAND, store_id, "wifi-01"),
                      _presence(store_id, "enter", key=key)).wait_for_publish(5)
    _visits_when(client, store_id, lambda v: len(v) == 1)
    arrival = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=BRAND, store=store_id)
    transport.publish(edge, topics.arrival(BRAND, store_id, "edge-01"), arrival).wait_for_publish(5)
    card = guide.next()
    visits = _visits_when(client, store_id, lambda v: v[0]["signals"] == "face+wifi")
    assert len(visits) == 1 and visits[0]["visit_id"] == card.visit_id and visits[0]["card_id"] == card.card_id
    assert _stats_when(client, lambda s: s["wifi_joined"] == 1)["wifi_joined"] == 1
    assert guide.cards.empty()


def test_footfall_minutes_are_stored_once_and_bucketed(
    start_cloud, mosquitto, edge: mqtt.Client, store_id: str  # noqa: F811
) -> None:
    client, _ = start_cloud(broker_url=mosquitto.url)
    base = now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    topic = topics.footfall(BRAND, store_id, "wifi-01")
    for i, people in enumerate((3, 5, 4)):
        minute = WifiFootfall(event_id=new_id(), ts=base + timedelta(minutes=i + 1), brand=BRAND, store=store_id,
                              device="wifi-01", minute=base + timedelta(minutes=i), people=people, passing=2,
                              visits_started=1, distinct_macs=people * 3, background=1, probes=40)
        for _ in range(2):  # a re-send of the same minute is stored once
            transport.publish(edge, topic, minute.model_copy(update={"event_id": new_id()})).wait_for_publish(5)
    stats = _stats_when(client, lambda s: s["footfall_minutes"] + s["duplicates"] >= 6)
    assert stats["footfall_minutes"] == 3 and stats["duplicates"] == 3
    minutes = client.get(f"/v1/stores/{store_id}/footfall").json()
    assert [m["people"] for m in minutes] == [3, 5, 4]
    hours = client.get(f"/v1/stores/{store_id}/footfall", params={"bucket": "hour"}).json()
    assert sum(h["visits"] for h in hours) == 3 and sum(h["minutes"] for h in hours) == 3
    assert client.get(f"/v1/stores/{store_id}/footfall", params={"bucket": "day"}).status_code == 422


def test_device_registry_drops_unknown_and_revoked_devices(
    start_cloud, mosquitto, edge: mqtt.Client, store_id: str, tmp_path: Path  # noqa: F811
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url)
    wang = _member(client)
    key = client.post(f"/v1/members/{wang}/devices", json={"mac": MAC}).json()["device_key"]
    stamp = now().isoformat()
    registry = {"v": 1, "brand": BRAND, "broker_url": "mqtts://cloud:8883", "stores": {}, "revoked": [], "devices": [
        {"store": store_id, "device": "wifi-01", "role": "edge", "serial": "0a1b", "issued_at": stamp,
         "not_after": stamp, "state": "active", "model_pack": "buffalo_l"},
        {"store": store_id, "device": "wifi-02", "role": "edge", "serial": "0a1c", "issued_at": stamp,
         "not_after": stamp, "state": "revoked", "revoked_at": stamp},
        {"store": "*", "device": "cdp", "role": "cloud", "serial": "0a1d", "issued_at": stamp, "not_after": stamp},
    ]}
    assert client.post("/v1/devices/import", content=b"{}").json()["detail"]["code"] == "invalid_registry"
    assert client.post("/v1/devices/import", content=json.dumps(registry)).json() == {
        "brand": BRAND, "devices": 2, "revoked": 1}

    for device in ("wifi-01", "wifi-02", "wifi-99"):
        event = _presence(store_id, "enter", key=key, device=device)
        transport.publish(edge, topics.presence(BRAND, store_id, device), event).wait_for_publish(5)
    state = DeviceState(brand=BRAND, store=store_id, device="wifi-01", role="edge", state="online", ts=now())
    transport.publish(edge, topics.device_state(BRAND, store_id, "wifi-01"), state).wait_for_publish(5)
    stats = _stats_when(client, lambda s: len(s["rejected"]) == 2 and s["presence"] == 1 and s["device_reports"])
    assert stats["rejected"] == {"revoked_device": 1, "unknown_device": 1} and stats["presence"] == 1
    listed = {d["device"]: d for d in client.get("/v1/devices").json() if d["store"] == store_id}
    assert listed["wifi-01"]["state"] == "online" and listed["wifi-01"]["serial"] == "0a1b"
    assert listed["wifi-01"]["last_seen"] is not None and listed["wifi-02"]["registry_state"] == "revoked"
