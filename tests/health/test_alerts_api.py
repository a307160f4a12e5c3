"""Alerts over HTTP and MQTT: who lists and acknowledges which store's alerts, and a planted anomaly
reaching HQ's subscription through the real Mosquitto when the cloud's health job scans."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.api import auth
from cloud.api.app import create_app
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.health import alerts
from cloud.health.alerts import Alert
from cloud.runtime import Runtime, open_cdp
from cloud.settings import Settings
from protocol import topics, transport
from protocol.codec import decode
from protocol.facepack.engine import FaceEngine
from protocol.health import HealthAlert

NOW = datetime(2026, 3, 2, 7, 20, tzinfo=UTC)  # 15:20 in Shanghai


def _alert(store: str, metric: str, ts: str, created: datetime) -> Alert:
    return Alert(id=f"a-{store}-{metric}-{ts[-5:-3]}", brand="b1", store=store, metric=metric, grain="hour", ts=ts,
                 value=5.0, baseline=40.0, mad=3.0, z=-7.9, direction="low", severity="critical", status="open",
                 created=created)


@dataclass
class Api:
    client: TestClient
    keys: dict[str, dict[str, str]]

    def get(self, role: str, **params: str):
        return self.client.get("/v1/alerts", params=params, headers=self.keys[role])

    def ack(self, role: str, alert_id: str, note: str | None = None):
        return self.client.post(f"/v1/alerts/{alert_id}/ack", json={"note": note}, headers=self.keys[role])


#: API keys belong to named people: acknowledgements and notes record the person
PEOPLE = {"hq_admin": "陈运营", "hq_analyst": "周分析", "store_manager": "王店长", "device": "box-1 安装"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine) -> Iterator[Api]:
    path = tmp_path_factory.mktemp("alerts") / "cloud.db"
    db = open_cdp(path, sample_catalogue=False)
    alerts.record(db, [_alert("s1", "footfall", "2026-03-02T13:00", NOW - timedelta(hours=1)),
                       _alert("s1", "sales", "2026-03-02T14:00", NOW),
                       _alert("s2", "orders", "2026-03-02T14:00", NOW)])
    keys = {role: {"X-API-Key": auth.create_key(db, name=PEOPLE[role], role=role, store=store).key}  # type: ignore[arg-type]
            for role, store in (("hq_admin", None), ("hq_analyst", None), ("store_manager", "s1"), ("device", "s1"))}
    db.close()
    settings = Settings(db=str(path), api_key=None, rate_limit_per_minute=0, dev_open_mode=True)
    runtime = Runtime.open(settings, engine=face_engine)
    with TestClient(create_app(settings, runtime)) as client:
        yield Api(client, keys)
    runtime.close()


def test_hq_lists_every_store_newest_first_and_a_manager_only_their_own(api: Api) -> None:
    assert [a["id"] for a in api.get("hq_analyst").json()] == ["a-s1-sales-14", "a-s2-orders-14", "a-s1-footfall-13"]
    assert [a["store"] for a in api.get("hq_admin", store="s2").json()] == ["s2"]
    first = api.get("hq_admin").json()[0]
    assert {k: first[k] for k in ("metric", "grain", "ts", "direction", "severity", "status", "z")} == {
        "metric": "sales", "grain": "hour", "ts": "2026-03-02T14:00", "direction": "low", "severity": "critical",
        "status": "open", "z": -7.9}
    assert {a["store"] for a in api.get("store_manager").json()} == {"s1"}
    other = api.get("store_manager", store="s2")
    assert other.status_code == 403 and other.json()["detail"]["code"] == "forbidden_store"
    assert api.get("device").status_code == 403
    assert api.get("hq_admin", store="s/1").status_code == 422
    assert api.get("hq_admin", status="closed").status_code == 422


def test_acknowledging_needs_the_store_or_hq_admin_and_happens_once(api: Api) -> None:
    assert api.ack("hq_analyst", "a-s1-footfall-13").status_code == 403
    assert api.ack("device", "a-s1-footfall-13").status_code == 403
    refused = api.ack("store_manager", "a-s2-orders-14")
    assert refused.status_code == 403 and refused.json()["detail"]["code"] == "forbidden_store"
    assert api.ack("hq_admin", "nope").json()["detail"]["code"] == "unknown_alert"

    acked = api.ack("store_manager", "a-s1-footfall-13", "门店临时闭店盘点")
    assert acked.status_code == 200, acked.text
    body = acked.json()
    # the person who acknowledged, then their role and key id
    assert body["status"] == "acked" and body["note"] == "门店临时闭店盘点"
    assert body["acked_by"].startswith("王店长 (store_manager:") and body["acked_by"].endswith(")")
    again = api.ack("hq_admin", "a-s1-footfall-13")
    assert again.status_code == 409 and again.json()["detail"]["code"] == "already_acked"
    assert [a["id"] for a in api.get("hq_admin", status="acked").json()] == ["a-s1-footfall-13"]
    assert "a-s1-footfall-13" not in [a["id"] for a in api.get("hq_admin").json()]  # open by default
    assert len(api.get("hq_admin", status="all").json()) == 3
    assert api.client.post("/v1/alerts/a-s2-orders-14/ack", json={"extra": 1},
                           headers=api.keys["hq_admin"]).status_code == 422
    # the note of the acknowledgement and later notes keep who wrote them
    noted = api.client.post("/v1/alerts/a-s1-footfall-13/notes", json={"note": "已联系商场物业"},
                            headers=api.keys["hq_admin"])
    assert noted.status_code == 201, noted.text
    assert [(n["person"].split(" (")[0], n["note"]) for n in noted.json()] == [
        ("王店长", "门店临时闭店盘点"), ("陈运营", "已联系商场物业")]
    assert api.client.post("/v1/alerts/a-s2-orders-14/notes", json={"note": "x"},
                           headers=api.keys["store_manager"]).status_code == 403


def test_owners_are_managed_by_hq_admin(api: Api) -> None:
    owner = {"scope": "store", "scope_id": "s1", "level": 0, "person": "王店长", "channel": "wecom_app",
             "address": "wangdz", "mute": "22:00-08:00"}
    assert api.client.post("/v1/alerts/owners", json=owner, headers=api.keys["store_manager"]).status_code == 403
    made = api.client.post("/v1/alerts/owners", json=owner, headers=api.keys["hq_admin"])
    assert made.status_code == 201, made.text
    assert made.json()["person"] == "王店长" and made.json()["mute"] == "22:00-08:00"
    assert api.client.post("/v1/alerts/owners", json={**owner, "channel": "fax"},
                           headers=api.keys["hq_admin"]).status_code == 422
    listed = api.client.get("/v1/alerts/owners", headers=api.keys["hq_analyst"]).json()
    assert [o["id"] for o in listed] == [made.json()["id"]]
    path = f"/v1/alerts/owners/{made.json()['id']}"
    assert api.client.put(path, json=owner, headers=api.keys["hq_analyst"]).status_code == 403
    edited = api.client.put(path, json={**owner, "level": 1, "mute": None}, headers=api.keys["hq_admin"])
    assert edited.status_code == 200 and (edited.json()["level"], edited.json()["mute"]) == (1, None)
    assert api.client.put("/v1/alerts/owners/999", json=owner, headers=api.keys["hq_admin"]).status_code == 404
    assert api.client.delete(f"/v1/alerts/owners/{made.json()['id']}", headers=api.keys["hq_admin"]).status_code == 204
    assert api.client.delete(f"/v1/alerts/owners/{made.json()['id']}",
                             headers=api.keys["hq_admin"]).json()["detail"]["code"] == "unknown_owner"
    assert api.client.get("/v1/alerts/a-s1-sales-14/deliveries", headers=api.keys["store_manager"]).json() == []


def test_health_is_a_store_level_topic_no_device_may_take() -> None:
    assert topics.health_alert("b1", "s1") == "instore/v1/b1/s1/health/alert"
    with pytest.raises(topics.TopicError, match="reserved"):
        topics.device_state("b1", "s1", "health")
    with pytest.raises(topics.TopicError):
        topics.health_alert("b1", "s/1")


def _planted_store(db: Database) -> None:
    """Five weeks of footfall ~40 an hour at store s1, and 200 in the hour 14:00-15:00 local."""
    db.execute("INSERT INTO stores (id, brand, name, city, created, timezone) VALUES (?, ?, ?, ?, ?, ?)",
               ("s1", "b1", "一号店", "上海", iso(utcnow()), "Asia/Shanghai"))
    start = datetime(2026, 1, 26)
    rows = [("s1", "hour", (start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:00"), "footfall", 40.0 + h % 3)
            for h in range(5 * 7 * 24 + 15)]
    rows[-1] = (*rows[-1][:4], 200.0)
    with db.transaction() as tx:
        tx.copy("store_metrics", ("store", "grain", "ts", "metric", "value"), rows)


def test_a_planted_anomaly_reaches_hq_over_mqtt(
    tmp_path: Path, mosquitto, face_engine: FaceEngine,
) -> None:
    path = tmp_path / "cloud.db"
    db = open_cdp(path, sample_catalogue=False)
    _planted_store(db)
    db.close()
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    hq = transport.make_client(transport.BrokerUrl.parse(mosquitto.url), "hq-alerts")
    subscribed = queue.Queue()
    transport.subscribe_on_connect(hq, [(topics.ALL_HEALTH_ALERTS, 1)])
    hq.on_subscribe = lambda *args: subscribed.put(True)
    hq.on_message = lambda client, userdata, message: received.put((message.topic, message.payload))
    transport.start(hq, transport.BrokerUrl.parse(mosquitto.url))
    subscribed.get(timeout=5)
    settings = Settings(db=str(path), api_key=None, broker_url=mosquitto.url, dev_open_mode=True)
    runtime = Runtime.open(settings, engine=face_engine)
    try:
        runtime.start()
        raised = runtime.scan_alerts(NOW)
        topic, payload = received.get(timeout=10)
    finally:
        runtime.close()
        transport.stop(hq)
    assert [(a.metric, a.ts, a.severity) for a in raised] == [("footfall", "2026-03-02T14:00", "critical")]
    assert topic == "instore/v1/b1/s1/health/alert"
    message = decode(payload, HealthAlert)
    assert (message.alert_id, message.store, message.metric, message.direction) == (
        raised[0].id, "s1", "footfall", "high")
    assert message.period_start == datetime(2026, 3, 2, 6, tzinfo=UTC) and message.value == 200.0
    assert received.empty()  # one message per alert
    check = open_cdp(path, sample_catalogue=False)
    try:
        assert check.scalar("SELECT COUNT(*) FROM alerts WHERE published_at IS NULL") == 0
    finally:
        check.close()
