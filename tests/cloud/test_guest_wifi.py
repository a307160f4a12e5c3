"""Issue 18: a member's phone is registered the way a store actually can: logging in to the store's
guest Wi-Fi page served by the cloud (phone number, a one-time code by SMS, consent) binds the
phone's per-network address for that store; the edge's access-point feed keys associated clients
the same way, so the store's presence events name the member. Through real HTTP and the local SMS
simulator; the MAC itself is stored nowhere."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cloud.arrivals import wifi
from cloud.channels.sms_sim import SimulatedSms
from cloud.db.database import connect
from cloud.db.migrations import Schema, migrate
from cloud.runtime import SCHEMAS
from edge.wifi.keys import DeviceKeyer
from edge.wifi.sensorfeed import FeedParser
from protocol.wifi import network_device_key
from tests.cloud.test_cloud_wifi import SECRET, _dump, tables, wifi_secret  # noqa: F401 - the secret fixture

PRIVATE = "3e:8a:12:c4:56:0b"  # locally administered: the phone's private address for this network
STORE = "sh-01"


@pytest.fixture
def sms() -> Iterator[SimulatedSms]:
    sim = SimulatedSms().start()
    yield sim
    sim.stop()


def test_logging_in_to_the_guest_wifi_binds_the_phones_address_on_that_stores_network(start_cloud, sms) -> None:
    client, runtime = start_cloud(sms_url=sms.url)
    wang = client.post("/v1/members", json={"name": "王芳", "phone": "13800138000", "consent": {"face": True}}).json()["id"]
    base = f"/wifi/demo/{STORE}/login"

    page = client.get(base, params={"mac": PRIVATE}, headers={"X-API-Key": ""})
    assert page.status_code == 200 and "会员 Wi-Fi 登录" in page.text and "我同意" in page.text
    assert f'"{PRIVATE}"' in page.text
    assert '""' in client.get(base, params={"mac": "</script><script>alert(1)"}).text, "no script injection"

    assert client.post(base, json={"mac": PRIVATE, "phone": "13900000000"}).json()["detail"]["code"] == "not_a_member"
    started = client.post(base, json={"mac": PRIVATE, "phone": "138-0013-8000"})
    assert started.status_code == 201
    login = started.json()["login_id"]
    code = sms.messages_to("13800138000")[-1].params["code"]
    wrong = "000000" if code != "000000" else "111111"
    assert client.post(f"{base}/{login}", json={"code": wrong, "consent": True}).json()["detail"]["code"] == "wrong_code"
    refused = client.post(f"{base}/{login}", json={"code": code, "consent": False})
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "no_consent"
    assert client.post(f"/wifi/demo/other-store/login/{login}", json={"code": code, "consent": True}).status_code == 404

    bound = client.post(f"{base}/{login}", json={"code": code, "consent": True})
    key = network_device_key(PRIVATE, SECRET, STORE)
    assert bound.status_code == 200 and bound.json() == {"device_key": key, "created": True}
    assert wifi.person_for_key(runtime.db, key) == wang
    assert client.post(f"{base}/{login}", json={"code": code, "consent": True}).json()["detail"]["code"] == \
        "verification_closed", "a login is used once"
    assert network_device_key(PRIVATE, SECRET, "sh-02") != key, "the same address at another store is another key"
    dump = _dump(runtime.db)
    assert PRIVATE not in dump and PRIVATE.replace(":", "") not in dump

    # the store's access point reports the associated client: the edge keys it as the cloud bound it
    parser = FeedParser(DeviceKeyer(SECRET.encode(), network=STORE))
    [associated, probing] = parser.parse(json.dumps([
        {"mac": PRIVATE, "rssi": -55, "ts": 1_790_000_000, "network": True},
        {"mac": PRIVATE, "rssi": -55, "ts": 1_790_000_000}]).encode())
    assert associated.key == key and associated.randomised is False
    assert probing.key != key and probing.randomised is True, "a probe with the same bits is a random MAC"

    # the login is a one-time code of the verifications every proof of a phone uses: key, where, when consented
    [proof] = runtime.db.rows("SELECT value, store, status, decided FROM verifications WHERE kind = 'guest_wifi'")
    assert proof[:3] == (key, STORE, "verified") and proof[3] is not None

    # erasure takes the binding and the login with it
    assert client.delete(f"/v1/members/{wang}").status_code == 200
    assert wifi.person_for_key(runtime.db, key) is None
    assert runtime.db.rows("SELECT id FROM verifications WHERE kind = 'guest_wifi'") == []


def test_a_member_is_sent_five_guest_wifi_codes_an_hour(start_cloud, sms) -> None:
    """The portal's own send limit (each code is an SMS and one more guess); the earlier code stops
    when a new one is sent, as every one-time code does."""
    client, runtime = start_cloud(sms_url=sms.url)
    client.post("/v1/members", json={"name": "王芳", "phone": "13800138000", "consent": {"face": False}})
    base = f"/wifi/demo/{STORE}/login"
    logins = [client.post(base, json={"mac": PRIVATE, "phone": "13800138000"}) for _ in range(6)]
    assert [r.status_code for r in logins] == [201] * 5 + [429]
    assert logins[-1].json()["detail"]["code"] == "too_many_codes"
    first = logins[0].json()["login_id"]
    [first_code] = [m.params["code"] for m in sms.messages_to("13800138000") if m.out_id == first]
    replaced = client.post(f"{base}/{first}", json={"code": first_code, "consent": True})
    assert replaced.json()["detail"]["code"] == "verification_closed"


def test_migration_77_keeps_the_logins_as_guest_wifi_verifications(db_location: str) -> None:
    """The logins made before the guest Wi-Fi used the one-time code mechanism move into
    ``verifications``: a bound one keeps its key, store and consent time, and the table goes."""
    before = [Schema(s.feature, tuple(m for m in s.migrations if m.version < 77)) for s in SCHEMAS]
    db = connect(db_location)
    try:
        migrate(db, before)
        db.execute("INSERT INTO guest_wifi_logins (id, brand, store, member_id, device_key, code_hash, attempts, status, "
                   "created, expires, consent_ts) VALUES ('l1', 'demo', ?, 'm1', 'key1', 'hash1', 1, 'bound', "
                   "'2026-12-01T10:00:00Z', '2026-12-01T10:10:00Z', '2026-12-01T10:02:00Z'), "
                   "('l2', 'demo', ?, 'm1', 'key2', 'hash2', 0, 'unsent', '2026-12-01T11:00:00Z', "
                   "'2026-12-01T11:10:00Z', NULL)", (STORE, STORE))
        assert migrate(db, SCHEMAS)[0] == 77
        moved = db.rows("SELECT id, member_id, kind, value, code_hash, status, attempts, sent, store, decided "
                        "FROM verifications ORDER BY id")
        assert [tuple(r) for r in moved] == [
            ("l1", "m1", "guest_wifi", "key1", "hash1", "verified", 1, 1, STORE, "2026-12-01T10:02:00Z"),
            ("l2", "m1", "guest_wifi", "key2", "hash2", "pending", 0, 0, STORE, None)]
        assert "guest_wifi_logins" not in tables(db)
    finally:
        db.close()
