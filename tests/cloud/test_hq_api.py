"""The HQ API: roles and hashed keys, store scoping, errors, paging, identity, segments, erasure."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from cloud.arrivals import visits
from cloud.arrivals.visits import Visit
from cloud.cdp import members
from cloud.channels.sms_sim import SimulatedSms
from cloud.faces import enrolled
from cloud.faces.gallery import FaceIndex
from cloud.fleet import devices
from cloud.runtime import open_cdp
from protocol import topics, transport
from protocol.codec import decode
from protocol.commands import EraseCommand
from protocol.facepack import DEFAULT_PACK, get_pack

POS_HEADER = "receipt_no,store,member_card,phone,ts,sku,category,qty,unit_price,amount,currency,type\n"
POS = POS_HEADER + (
    "R1,s1,MC1,13800000031,2025-05-01 10:00:00,SKU1,护肤,1,100,100,CNY,sale\n"
    "R2,s2,MC2,13800000032,2025-05-02 10:00:00,SKU2,彩妆,1,80,80,CNY,sale\n"
)


def _member(client, phone: str, headers: dict | None = None, sms: SimulatedSms | None = None, **extra) -> str:
    """A sign-up; when the phone already belongs to someone, the phone's owner enters the code (``sms``)."""
    body = {"name": "王芳", "phone": phone, "gender": "female", "consent": {"face": True}, **extra}
    response = client.post("/v1/members", json=body, headers=headers or {})
    assert response.status_code == 201, response.text
    created = response.json()
    if not created["verified"]:
        assert sms is not None, "the phone belongs to someone: give the test an SMS simulator"
        code = sms.messages_to(phone)[-1].params["code"]
        verified = client.post(f"/v1/members/{created['id']}/verification/{created['verification']['id']}",
                               json={"code": code}, headers=headers or {})
        assert verified.status_code == 200, verified.text
        return verified.json()["id"]
    return created["id"]


@pytest.fixture
def sms() -> Iterator[SimulatedSms]:
    sim = SimulatedSms().start()
    yield sim
    sim.stop()


def _keys(client) -> dict[str, dict]:
    made: dict[str, dict] = {}
    for role, store in (("hq_admin", None), ("hq_analyst", None), ("store_manager", "s1"), ("device", "s1")):
        response = client.post("/v1/keys", json={"name": role, "role": role, "store": store},
                               headers=made.get("hq_admin", {}))
        assert response.status_code == 201, response.text
        made[role] = {"X-API-Key": response.json()["key"]}
    return made


def _import(client, headers: dict) -> None:
    files = {"file": ("pos.csv", POS.encode(), "text/csv")}
    response = client.post("/v1/imports?channel=pos", files=files, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["orders"] == 2


def test_open_local_mode_until_the_first_key_then_roles_apply(start_cloud) -> None:
    client, runtime = start_cloud()
    assert client.get("/v1/whoami").json() == {"role": "hq_admin", "store": None,  # no key yet, and the dev flag
                                               "person": "open development mode"}
    keys = _keys(client)

    assert client.get("/v1/whoami").status_code == 401
    assert client.get("/v1/whoami", headers=keys["store_manager"]).json()["store"] == "s1"
    stored = [r[0] for r in runtime.db.rows("SELECT key_hash FROM api_keys")]
    assert all(len(h) == 64 for h in stored)
    assert not any(k["X-API-Key"] in stored or k["X-API-Key"][4:] in "".join(stored) for k in keys.values())

    _import(client, keys["hq_admin"])
    in_s1 = members.person_id(runtime.db, runtime.db.scalar("SELECT id FROM members WHERE source_key LIKE '%MC1'"))
    in_s2 = members.person_id(runtime.db, runtime.db.scalar("SELECT id FROM members WHERE source_key LIKE '%MC2'"))

    # analyst: reads everything, changes nothing
    analyst = keys["hq_analyst"]
    assert client.get(f"/v1/members/{in_s2}/profile", headers=analyst).status_code == 200
    refused = client.post("/v1/segments", json={"name": "x", "condition": {"channel": "pos"}}, headers=analyst)
    assert refused.status_code == 403 and refused.json()["detail"]["code"] == "forbidden"
    assert client.delete(f"/v1/members/{in_s2}", headers=analyst).status_code == 403

    # store manager: own store only
    manager = keys["store_manager"]
    assert client.get(f"/v1/members/{in_s1}/profile", headers=manager).json()["stores"] == ["s1"]
    other = client.get(f"/v1/members/{in_s2}/profile", headers=manager)
    assert other.status_code == 403 and other.json()["detail"]["code"] == "forbidden_store"
    assert client.get("/v1/stores/s2/visits", headers=manager).status_code == 403
    assert client.get("/v1/stores/s1/visits", headers=manager).status_code == 200
    listed = client.get("/v1/members", headers=manager).json()
    assert [m["id"] for m in listed["items"]] == [in_s1] and listed["total"] == 1
    count = client.post("/v1/segments/count", json={"condition": {"channel": "pos"}}, headers=manager).json()
    assert count["count"] == 1
    signed_up = _member(client, "13800000039", manager)
    assert client.get(f"/v1/members/{signed_up}", headers=manager).status_code == 200

    # device: proves who it is, reads no member data
    device = keys["device"]
    assert client.get("/v1/whoami", headers=device).json()["role"] == "device"
    assert client.get(f"/v1/members/{in_s1}", headers=device).status_code == 403
    assert client.get("/v1/stores/s1/visits", headers=device).status_code == 403

    # revoked keys stop working
    key_id = client.get("/v1/keys", headers=keys["hq_admin"]).json()["items"][1]["id"]
    assert client.delete(f"/v1/keys/{key_id}", headers=keys["hq_admin"]).status_code == 204
    assert client.get("/v1/whoami", headers=analyst).status_code == 401


def test_bootstrap_key_is_an_admin_and_errors_are_json(start_cloud) -> None:
    client, _ = start_cloud(api_key="boot")
    admin = {"X-API-Key": "boot"}

    assert client.get("/v1/whoami", headers=admin).json()["role"] == "hq_admin"
    missing = client.get("/v1/nothing-here", headers=admin)
    assert missing.status_code == 404 and missing.json()["detail"]["code"] == "not_found"
    unknown = client.get("/v1/members/nobody/profile", headers=admin)
    assert unknown.json()["detail"] == {"code": "unknown_member", "message": "no member nobody"}
    bad = client.post("/v1/segments/count", json={"condition": {"bogus": 1}}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"]["code"] == "invalid_condition"
    assert client.get("/v1/members?limit=0", headers=admin).status_code == 422
    assert client.get("/v1/members?limit=5000", headers=admin).status_code == 422


def test_injection_attempts_in_api_parameters_change_nothing(start_cloud) -> None:
    client, runtime = start_cloud()
    _import(client, {})
    before = runtime.db.scalar("SELECT COUNT(*) FROM members")

    for evil in ("s1' OR '1'='1", "s1;DROP TABLE members", "' UNION SELECT key_hash FROM api_keys --"):
        assert client.get(f"/v1/stores/{evil}/visits").status_code == 422
        assert client.get(f"/v1/members/{evil}").status_code == 404
        assert client.get("/v1/identity/audit", params={"person": evil}).json()["items"] == []
        count = client.post("/v1/segments/count", json={"condition": {"store": evil}}).json()
        assert count == {"count": 0, "groups": None}
        assert client.get("/v1/imports/1/quarantine", params={"reason": evil}).status_code == 422
    assert runtime.db.scalar("SELECT COUNT(*) FROM members") == before


def test_segments_identity_and_tags_over_http(start_cloud, sms: SimulatedSms) -> None:
    client, _ = start_cloud(sms_url=sms.url)
    _import(client, {})
    member = _member(client, "13800000031", sms=sms, tags=["敏感肌"])  # card MC1's phone: one person, once proven

    profile = client.get(f"/v1/members/{member}/profile").json()
    assert {r["source"] for r in profile["records"]} == {"pos", "member"}
    assert profile["orders"]["count"] == 1 and {"tag": "敏感肌", "value": "true", "source": "manual"} in profile["tags"]
    graph = client.get(f"/v1/members/{member}/identity").json()
    link = next(link for link in graph["links"] if link["status"] == "active")

    split = client.post(f"/v1/identity/links/{link['id']}/split", json={"reason": "not the same person"})
    assert split.status_code == 200 and split.json()["changed_persons"] >= 1
    audit = client.get("/v1/identity/audit", params={"limit": 10}).json()["items"]
    assert {"merge", "split_link", "split"} <= {a["action"] for a in audit}
    assert client.post(f"/v1/identity/links/{link['id']}/split", json={"reason": "again"}).status_code == 409
    assert client.post("/v1/identity/rebuild").json()["records"] >= 3

    saved = client.post("/v1/segments", json={"name": "护肤 buyers", "condition": {
        "bought": {"category": "护肤", "within_days": 3650}}}).json()
    assert client.get(f"/v1/segments/{saved['id']}/count", params={"salt": "s", "split": "50,50"}).json()["count"] == 1
    page = client.get(f"/v1/segments/{saved['id']}/members", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["limit"] == 1
    export = client.get(f"/v1/segments/{saved['id']}/export.csv", params={"salt": "s"})
    assert export.status_code == 200 and export.text.splitlines()[0].endswith("variant")
    assert client.get(f"/v1/segments/{saved['id']}/count", params={"salt": "s", "split": "50,40"}).status_code == 422

    rule = client.put("/v1/tags/rules", json={"name": "彩妆客", "condition": {"bought": {"category": "彩妆",
                                                                                         "within_days": 3650}}})
    assert rule.status_code == 200
    tags = client.get("/v1/tags").json()["items"]
    assert {"tag": "彩妆客", "value": "true", "source": "rule", "persons": 1} in tags
    quarantine = client.get("/v1/imports/1/quarantine").json()
    assert quarantine["total"] == 0

    windows = client.get("/v1/tags/windows").json()
    assert windows["churn_days"] == 365
    churned = {"condition": {"lifecycle": ["churned"]}}
    assert client.post("/v1/segments/count", json=churned).json()["count"] == 2  # orders in 2025
    changed = client.put("/v1/tags/windows", json={**windows, "dormant_days": 5000, "churn_days": 5000})
    assert changed.status_code == 200
    assert client.post("/v1/segments/count", json=churned).json()["count"] == 0


def test_erasure_removes_faces_identifiers_and_names_keeps_totals_and_tells_every_edge_box(
    start_cloud, mosquitto, faces_dir: Path, make_arrival, sms: SimulatedSms
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url, sms_url=sms.url)
    brand = f"b{uuid4().hex[:6]}"
    for store_id, device in (("s1", "edge-01"), ("s2", "edge-07")):
        devices.register_device(runtime.db, brand, store_id, device, "edge")
    _import(client, {})
    member = _member(client, "13800000031", sms=sms)
    photo = (faces_dir / "deepface_id01" / "img1.jpg").read_bytes()
    assert client.post(f"/v1/members/{member}/faces", files={"image": ("f.jpg", photo)}).status_code == 201
    probe = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=brand, store="s1").embedding.to_vector()
    assert runtime.index.search(probe).member_id == member
    seen = datetime.now(UTC)
    for event_id, ts in (("arrival-today-1", seen), ("arrival-last-week", seen - timedelta(days=7))):
        visits.record_visit(runtime.db, Visit(id=uuid4().hex, brand=brand, store="s1", member_id=member, confidence=0.8,
                                         ts=ts, arrival_event_id=event_id, device="edge-01", camera="door",
                                         card_id=uuid4().hex))

    commands: queue.Queue[tuple[str, EraseCommand]] = queue.Queue()
    subscriber = _subscribe(mosquitto.url, f"instore/v1/{brand}/+/+/cmd/erase", commands)
    try:
        erased = client.delete(f"/v1/members/{member}")
        assert erased.status_code == 200, erased.text
        body = erased.json()
        assert (body["faces"], body["records"], body["orders_anonymised"], body["commands"]) == (1, 2, 1, 2)
        got = sorted([commands.get(timeout=10), commands.get(timeout=10)])
    finally:
        transport.stop(subscriber)

    assert [topic for topic, _ in got] == [topics.device_command(brand, "s1", "edge-01", "erase"),
                                           topics.device_command(brand, "s2", "edge-07", "erase")]
    assert all(member in c.member_ids and c.reason == "erasure" for _, c in got)
    # each box is told which of its arrivals it may still cache a face for (24 h at most)
    assert [c.arrival_event_ids for _, c in got] == [["arrival-today-1"], []]
    assert runtime.index.search(probe) is None or runtime.index.search(probe).member_id != member
    assert client.get(f"/v1/members/{member}").status_code == 404
    db = runtime.db
    assert db.scalar("SELECT COUNT(*) FROM identifiers WHERE value IN ('13800000031', 'MC1')") == 0
    assert db.scalar("SELECT COUNT(*) FROM faces") == 0
    assert db.scalar("SELECT COUNT(*) FROM members WHERE name = '王芳'") == 0
    assert db.scalar("SELECT SUM(paid) FROM orders") == 180  # totals kept
    assert db.scalar("SELECT member_id FROM orders WHERE store = 's1'").startswith("anon-")
    assert db.scalar("SELECT COUNT(*) FROM commands WHERE sent_at IS NULL") == 0


def _subscribe(url: str, topic_filter: str, into: queue.Queue) -> mqtt.Client:
    broker = transport.BrokerUrl.parse(url)
    ready = threading.Event()
    client = transport.make_client(broker, f"test-box-{uuid4().hex[:8]}")
    transport.subscribe_on_connect(client, [(topic_filter, 1)])
    client.on_subscribe = lambda *args: ready.set()
    client.on_message = lambda c, u, m: into.put((m.topic, decode(m.payload, EraseCommand)))
    transport.start(client, broker)
    assert ready.wait(5)
    return client


def test_galleries_in_two_processes_stay_consistent_through_enrol_merge_and_erase(db_location: str) -> None:
    pack = get_pack(DEFAULT_PACK)
    space, dim = pack.recogniser.embedding_space, pack.recogniser.embedding_dim
    api, worker = open_cdp(db_location), open_cdp(db_location)  # two processes' connections to one database
    try:
        rng = np.random.default_rng(3)
        vec = rng.standard_normal(dim).astype(np.float32)
        worker_index = FaceIndex.from_database(worker, space, dim)
        a = members.add_member(api, name="甲", phone="13800000041", gender=None, tier="t", tags=[], categories=[],
                           face_consent=True)
        enrolled.add_face(api, member_id=a.id, vector=vec, embedding_space=space, pack_id=pack.id, det_score=0.9)

        worker_index.refresh()
        assert worker_index.search(vec).member_id == a.id and len(worker_index) == 1

        from cloud.cdp import erasure

        erasure.erase(api, a.id, actor="test")
        worker_index.refresh()
        assert len(worker_index) == 0 and worker_index.search(vec) is None
    finally:
        api.close()
        worker.close()


def test_large_galleries_switch_to_the_ann_index_and_find_the_same_member() -> None:
    rng = np.random.default_rng(5)
    index = FaceIndex("space", 64, ann_threshold=2000)
    vectors = rng.standard_normal((3000, 64)).astype(np.float32)
    for i, v in enumerate(vectors):
        index.add(f"m{i}", v)
    assert index.mode == "ann"
    hits = [index.search(vectors[i] + 0.05 * rng.standard_normal(64)).member_id == f"m{i}" for i in range(0, 3000, 97)]
    assert sum(hits) >= 0.95 * len(hits)
