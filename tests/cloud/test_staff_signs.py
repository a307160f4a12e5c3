"""Assistants' sign-ins (上岗/离岗) from a guide screen through a real Mosquitto to the cloud (issue 17): the
ingest stores them once, the API lists who is signed in (a store manager's key reads its own store only),
and the source-health scan checks the roster against them: a rostered assistant not signed in by the
shift's start + GRACE raises ``staff_absent`` naming them in that one scan, and their sign-in clears it.
A malformed sign-in, or one claiming another screen than its topic, is rejected with its reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt

from cloud.api import auth
from cloud.clock import iso
from cloud.health import alerts, shortfall
from cloud.health.staff_absent import GRACE
from protocol import topics
from protocol.codec import encode
from protocol.messages import StaffAction, StaffSign, new_id
from tests.cloud.test_cloud_ingest import BRAND, _stats_when, edge, store_id  # noqa: F401

TZ = "Asia/Shanghai"
SHIFT = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 China time: the shift's start


def _sign(screen: mqtt.Client, store: str, assistant: str, action: StaffAction, at: datetime,
          *, on_screen: str = "main") -> StaffSign:
    sign = StaffSign(sign_id=new_id(), brand=BRAND, store=store, screen="main", assistant=assistant, action=action,
                     ts=at)
    screen.publish(topics.guide_staff(BRAND, store, on_screen), encode(sign), qos=1).wait_for_publish(5)
    return sign


def test_a_screens_sign_ins_reach_the_cloud_and_the_roster_is_checked_against_them(
        start_cloud, mosquitto, edge: mqtt.Client, store_id: str) -> None:  # noqa: F811
    client, runtime = start_cloud(broker_url=mosquitto.url)
    db = runtime.db
    db.execute("INSERT INTO stores (id, brand, name, city, created, timezone, opening_hours) "
               "VALUES (?, ?, '徐汇店', 'Shanghai', ?, ?, '10:00-22:00')", (store_id, BRAND, iso(SHIFT), TZ))
    db.execute("INSERT INTO assistants (id, store, name, active) VALUES ('a1', ?, '王静', 1), ('a2', ?, '李丽', 1)",
               (store_id, store_id))
    for a in ("a1", "a2"):
        db.execute("INSERT INTO shifts (assistant, store, day, start_time, end_time) VALUES (?, ?, '2026-03-10', "
                   "'10:00', '17:00')", (a, store_id))
    client.headers["X-API-Key"] = auth.create_key(db, name="总部", role="hq_admin").key
    manager = {"X-API-Key": auth.create_key(db, name="店长", role="store_manager", store=store_id).key}
    other = {"X-API-Key": auth.create_key(db, name="别店店长", role="store_manager", store="elsewhere").key}

    sent = _sign(edge, store_id, "a2", "sign_in", SHIFT + timedelta(minutes=3))
    edge.publish(topics.guide_staff(BRAND, store_id, "main"), encode(sent), qos=1).wait_for_publish(5)  # a re-send
    _sign(edge, store_id, "a1", "sign_in", SHIFT, on_screen="other")  # the payload says screen main
    bad = json.loads(encode(sent)) | {"action": "clock_in", "sign_id": new_id()}
    edge.publish(topics.guide_staff(BRAND, store_id, "main"), json.dumps(bad).encode(), qos=1).wait_for_publish(5)
    stats = _stats_when(client, lambda s: s["staff_signs"] == 1 and s["duplicates"] == 1
                        and s["rejected"].get("topic_mismatch") == 1 and s["rejected"].get("invalid_payload") == 1)
    assert (stats["staff_signs"], stats["duplicates"], stats["rejected"]) == (
        1, 1, {"topic_mismatch": 1, "invalid_payload": 1})

    at = {"at": (SHIFT + GRACE).isoformat()}
    body = client.get(f"/v1/stores/{store_id}/staff", params=at, headers=manager).json()
    assert [(s["assistant"], s["name"], s["screen"]) for s in body["signed_in"]] == [("a2", "李丽", "main")]
    assert client.get(f"/v1/stores/{store_id}/staff", params=at, headers=other).status_code == 403
    assert client.get("/v1/stores/nowhere/staff", params=at).status_code == 404
    assert client.get(f"/v1/stores/{store_id}/staff", params={"at": "0001-01-01T00:00:00+08:00"}).status_code == 422

    # a1 never signed in: absent, named, in the first scan after the grace, with nobody's cards needed
    assert shortfall.scan(db, SHIFT + GRACE - timedelta(minutes=1))[0] == []
    raised, _ = shortfall.scan(db, SHIFT + GRACE)
    assert [(a.metric, a.store, a.ts, a.detail, a.severity) for a in raised] == [
        ("staff_absent", store_id, "2026-03-10T10:00", "王静（a1）", "critical")]
    _sign(edge, store_id, "a1", "sign_in", SHIFT + GRACE + timedelta(minutes=2))
    assert _stats_when(client, lambda s: s["staff_signs"] == 2)["staff_signs"] == 2
    again, cleared = shortfall.scan(db, SHIFT + GRACE + timedelta(minutes=5))
    assert again == [] and cleared == [raised[0].id] and alerts.open_alert(db, "source", store_id, "", "staff_absent") is None
    body = client.get(f"/v1/stores/{store_id}/staff", headers=manager,
                      params={"at": (SHIFT + timedelta(minutes=30)).isoformat()}).json()
    assert [s["assistant"] for s in body["signed_in"]] == ["a1", "a2"]
