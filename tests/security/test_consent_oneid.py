"""Issue 14, finding 1: the consent bypass through OneID, replayed over HTTP.

A store manager signed up a "new member" with the phone of a customer imported from Tmall; the
answer was the Tmall customer's id, the manager could read their whole profile and enrol any photo
as their face, and the customer's face consent became true though none of their records had it.

Now a sign-up whose phone belongs to someone is its own unverified person (OneID does not link it)
until the phone's owner enters the one-time code the SMS gateway (here the simulated Aliyun
SendSms provider) sent to the phone, or HQ merges explicitly; consent is the person's own (the
head record's, logged with when/where/who), and a merge never turns it on.
"""

# ruff: noqa: F811 (the cloud fixtures are imported by name, then taken as test arguments)
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.api import auth
from cloud.channels.sms_sim import SimulatedSms
from tests.cloud.conftest import db_location, face_engine, pg_database, start_cloud  # noqa: F401 (fixtures)

FACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces"
VICTIM_PHONE = "13800138000"
TMALL = ("订单编号,买家会员名,收货人手机号,付款时间,商品编码,类目,购买数量,商品单价,实付金额,订单状态,币种\n"
         "T1,nick_a,+86 138-0013-8000,2025-03-01 20:15:00,SKU1,护肤,1,199,199,交易成功,CNY\n")
ATTACKER = {"name": "王芳", "phone": VICTIM_PHONE, "consent": {"face": True}}


@pytest.fixture
def sms() -> Iterator[SimulatedSms]:
    sim = SimulatedSms().start()
    yield sim
    sim.stop()


def _setup(start_cloud, sms: SimulatedSms):
    client, runtime = start_cloud(sms_url=sms.url)
    hq = {"X-API-Key": auth.create_key(runtime.db, name="Zhou HQ", role="hq_admin").key}
    manager = {"X-API-Key": auth.create_key(runtime.db, name="Chen Manager", role="store_manager", store="s1").key}
    imported = client.post("/v1/imports?channel=tmall", headers=hq, files={"file": ("t.csv", TMALL.encode())})
    assert imported.status_code == 201, imported.text
    victim = runtime.db.scalar("SELECT id FROM members WHERE source = 'tmall'")
    return client, runtime, hq, manager, victim


def test_a_sign_up_with_an_imported_customers_phone_does_not_reach_them(start_cloud, sms: SimulatedSms) -> None:
    client, runtime, hq, manager, victim = _setup(start_cloud, sms)

    signed = client.post("/v1/members", headers=manager, json=ATTACKER)
    assert signed.status_code == 201
    body = signed.json()
    assert body["id"] != victim and body["verified"] is False and body["verification"]["sent"] is True
    # the code went to the phone's owner, not to the caller
    (text,) = sms.messages_to(VICTIM_PHONE)
    assert text.template == "SMS_OTP" and text.out_id == body["verification"]["id"]
    assert text.params["code"] not in signed.text

    # the manager sees the sign-up (their store) but not the Tmall customer
    for path in (f"/v1/members/{victim}", f"/v1/members/{victim}/profile"):
        assert client.get(path, headers=manager).status_code == 403
    own = client.get(f"/v1/members/{body['id']}/profile", headers=manager).json()
    assert own["orders"]["count"] == 0 and [r["source"] for r in own["records"]] == ["member"]
    photo = (FACES / "deepface_id01" / "img1.jpg").read_bytes()
    assert client.post(f"/v1/members/{victim}/faces", headers=manager,
                       files={"image": ("p.jpg", photo)}).status_code == 403
    # the customer's own consent is untouched, and OneID did not join them
    victim_view = client.get(f"/v1/members/{victim}", headers=hq).json()
    assert victim_view["consent"] == {"face": False} and victim_view["id"] == victim
    assert client.get(f"/v1/members/{body['id']}/identity", headers=hq).json()["person_id"] == body["id"]

    # guessing the code: five tries, then the verification is closed
    verify = f"/v1/members/{body['id']}/verification/{body['verification']['id']}"
    wrong = "000000" if text.params["code"] != "000000" else "111111"
    answers = [client.post(verify, headers=manager, json={"code": wrong}) for _ in range(5)]
    assert [a.json()["detail"]["code"] for a in answers] == ["wrong_code"] * 5
    closed = client.post(verify, headers=manager, json={"code": text.params["code"]})
    assert closed.status_code == 409 and closed.json()["detail"]["code"] == "verification_closed"
    assert client.get(f"/v1/members/{victim}", headers=hq).json()["consent"] == {"face": False}


def test_the_phones_owner_proves_it_with_the_code_and_only_then_the_records_join(start_cloud, sms) -> None:
    client, runtime, hq, manager, victim = _setup(start_cloud, sms)
    body = client.post("/v1/members", headers=manager, json=ATTACKER).json()
    resent = client.post(f"/v1/members/{body['id']}/verification", headers=manager)
    assert resent.status_code == 201
    code = sms.messages_to(VICTIM_PHONE)[-1].params["code"]
    # the first code stopped working when a new one was sent
    first = client.post(f"/v1/members/{body['id']}/verification/{body['verification']['id']}", headers=manager,
                        json={"code": sms.messages_to(VICTIM_PHONE)[0].params["code"]})
    assert first.status_code == 409

    joined = client.post(f"/v1/members/{body['id']}/verification/{resent.json()['id']}", headers=manager,
                         json={"code": code})
    assert joined.status_code == 200 and joined.json()["id"] == victim
    # now the person is a customer of the store (signed up there) and consented there themselves
    profile = client.get(f"/v1/members/{victim}/profile", headers=manager).json()
    assert profile["consent"]["face"] is True
    (grant,) = [c for c in profile["consent"]["history"] if c["how"] == "verified_sign_up"]
    assert grant["store"] == "s1" and "Chen Manager" in grant["actor"] and grant["ts"]


def test_a_merge_never_turns_consent_on(start_cloud, sms) -> None:
    client, runtime, hq, manager, victim = _setup(start_cloud, sms)
    # a counter sign-up with consent, on another phone: its own person
    other = client.post("/v1/members", headers=manager, json={**ATTACKER, "phone": "13900139000"}).json()
    assert other["verified"] is True
    assert client.get(f"/v1/members/{other['id']}", headers=hq).json()["consent"] == {"face": True}
    # HQ decides they are one person: the earlier record (the Tmall customer) is the person, and
    # its consent, never given, stays off; the sign-up's consent stays recorded against its record
    merged = client.post("/v1/identity/merge", headers=hq, json={"a": victim, "b": other["id"], "reason": "same"})
    assert merged.status_code == 200, merged.text
    after = client.get(f"/v1/members/{other['id']}", headers=hq).json()
    assert after["id"] == victim and after["consent"] == {"face": False}
    photo = (FACES / "deepface_id01" / "img1.jpg").read_bytes()
    refused = client.post(f"/v1/members/{victim}/faces", headers=hq, files={"image": ("p.jpg", photo)})
    assert refused.status_code == 409 and refused.json()["detail"]["code"] == "no_consent"
    # HQ's explicit merge also releases an unverified sign-up's identifiers
    pending = client.post("/v1/members", headers=manager, json=ATTACKER).json()
    assert client.post("/v1/identity/merge", headers=hq,
                       json={"a": victim, "b": pending["id"], "reason": "customer confirmed at HQ"}).status_code == 200
    assert runtime.db.scalar("SELECT COUNT(*) FROM identifiers WHERE blocked = 'unverified'") == 0


def test_a_stranger_signing_up_a_phone_before_its_orders_arrive_gains_nothing(start_cloud, sms) -> None:
    """The timing variant: the phone belongs to nobody yet, so the sign-up is verified and its consent
    counts while it is the person's head; the code went to the phone's owner, so it stays unproven,
    and once the customer's older Tmall record joins and becomes head the consent no longer counts."""
    client, runtime = start_cloud(sms_url=sms.url)
    manager = {"X-API-Key": auth.create_key(runtime.db, name="Chen Manager", role="store_manager", store="s1").key}
    hq = {"X-API-Key": auth.create_key(runtime.db, name="Zhou HQ", role="hq_admin").key}
    early = client.post("/v1/members", headers=manager, json=ATTACKER).json()
    assert early["verified"] is True and early["verification"]["kind"] == "consent"
    assert sms.messages_to(VICTIM_PHONE)[-1].out_id == early["verification"]["id"]  # to the phone, not the caller
    photo = (FACES / "deepface_id01" / "img1.jpg").read_bytes()
    assert client.post(f"/v1/members/{early['id']}/faces", headers=manager,
                       files={"image": ("p.jpg", photo)}).status_code == 201

    assert client.post("/v1/imports?channel=tmall", headers=hq, files={"file": ("t.csv", TMALL.encode())}).status_code == 201
    victim = runtime.db.scalar("SELECT id FROM members WHERE source = 'tmall'")
    after = client.get(f"/v1/members/{early['id']}", headers=hq).json()
    assert after["id"] == victim and after["consent"] == {"face": False}
    refused = client.post(f"/v1/members/{victim}/faces", headers=hq, files={"image": ("p.jpg", photo)})
    assert refused.status_code == 409 and refused.json()["detail"]["code"] == "no_consent"
    assert client.post("/v1/segments/count", headers=hq,
                       json={"condition": {"consent": {"face": True}}}).json()["count"] == 0


def test_consent_proven_by_the_code_counts_after_an_older_record_becomes_head(start_cloud, sms) -> None:
    """Defect 1's VIP: the code entered at the counter proves the phone, so the consent is the
    person's whichever record is head; a withdrawal on any record still turns it off, proof and all."""
    client, runtime = start_cloud(sms_url=sms.url)
    manager = {"X-API-Key": auth.create_key(runtime.db, name="Chen Manager", role="store_manager", store="s1").key}
    hq = {"X-API-Key": auth.create_key(runtime.db, name="Zhou HQ", role="hq_admin").key}
    vip = client.post("/v1/members", headers=manager, json=ATTACKER).json()
    code = sms.messages_to(VICTIM_PHONE)[-1].params["code"]
    proven = client.post(f"/v1/members/{vip['id']}/verification/{vip['verification']['id']}", headers=manager,
                         json={"code": code})
    assert proven.status_code == 200 and proven.json()["id"] == vip["id"]
    again = client.post(f"/v1/members/{vip['id']}/verification", headers=manager)
    assert again.status_code == 409 and again.json()["detail"]["code"] == "verification_closed"

    assert client.post("/v1/imports?channel=tmall", headers=hq, files={"file": ("t.csv", TMALL.encode())}).status_code == 201
    tmall = runtime.db.scalar("SELECT id FROM members WHERE source = 'tmall'")
    profile = client.get(f"/v1/members/{vip['id']}/profile", headers=hq).json()
    assert profile["id"] == tmall and profile["consent"]["face"] is True  # the older record is head
    (grant,) = [c for c in profile["consent"]["history"] if c["how"] == "proven_by_code"]
    assert grant["record_id"] == vip["id"] and grant["store"] == "s1" and "Chen Manager" in grant["actor"]
    photo = (FACES / "deepface_id01" / "img1.jpg").read_bytes()
    assert client.post(f"/v1/members/{tmall}/faces", headers=hq, files={"image": ("p.jpg", photo)}).status_code == 201
    assert client.post("/v1/segments/count", headers=hq,
                       json={"condition": {"consent": {"face": True}}}).json()["count"] == 1

    # withdrawn on the Tmall record: off for the person, and the proof goes with it
    assert client.put(f"/v1/members/{tmall}/consent", headers=hq, json={"face": False}).status_code == 200
    assert client.get(f"/v1/members/{vip['id']}", headers=hq).json()["consent"] == {"face": False}
    assert runtime.db.scalar("SELECT COUNT(*) FROM members WHERE consent_proven IS NOT NULL") == 0


def test_an_older_records_consent_cannot_be_proven_after_the_person_withdrew(start_cloud, sms) -> None:
    """Red team (hgold): a customer withdrew face consent; a sign-up of theirs from before, whose code was
    never entered, then joins them by HQ's merge. Its consent must not be provable by texting that
    phone a code: that would turn the person's face recognition back on from a decision older than
    the withdrawal. Not offered at the start, and not granted by a code already on its way."""
    client, runtime = start_cloud(sms_url=sms.url)
    manager = {"X-API-Key": auth.create_key(runtime.db, name="Chen Manager", role="store_manager", store="s1").key}
    hq = {"X-API-Key": auth.create_key(runtime.db, name="Zhou HQ", role="hq_admin").key}
    old = client.post("/v1/members", headers=manager, json=ATTACKER).json()  # consent given, code not entered
    assert old["verification"]["kind"] == "consent"
    code = sms.messages_to(VICTIM_PHONE)[-1].params["code"]
    current = client.post("/v1/members", headers=manager,
                          json={"name": "王芳", "phone": "13900139000", "consent": {"face": True}}).json()
    assert client.put(f"/v1/members/{current['id']}/consent", headers=hq, json={"face": False}).status_code == 200
    merged = client.post("/v1/identity/merge", headers=hq, json={"a": old["id"], "b": current["id"], "reason": "同一人"})
    assert merged.status_code == 200, merged.text
    assert client.get(f"/v1/members/{old['id']}", headers=hq).json()["consent"] == {"face": False}

    late = client.post(f"/v1/members/{old['id']}/verification/{old['verification']['id']}", headers=manager,
                       json={"code": code})
    assert late.status_code == 200  # the phone is proven ...
    assert client.get(f"/v1/members/{old['id']}", headers=hq).json()["consent"] == {"face": False}  # ... not the consent
    assert runtime.db.scalar("SELECT COUNT(*) FROM members WHERE consent_proven IS NOT NULL") == 0
    again = client.post(f"/v1/members/{old['id']}/verification", headers=manager)
    assert again.status_code == 409 and again.json()["detail"]["code"] == "verification_closed"
    photo = (FACES / "deepface_id01" / "img1.jpg").read_bytes()
    refused = client.post(f"/v1/members/{old['id']}/faces", headers=hq, files={"image": ("p.jpg", photo)})
    assert refused.status_code == 409 and refused.json()["detail"]["code"] == "no_consent"
    # a fresh grant by the person still turns it on
    assert client.put(f"/v1/members/{old['id']}/consent", headers=hq, json={"face": True}).status_code == 200
    assert client.get(f"/v1/members/{old['id']}", headers=hq).json()["consent"] == {"face": True}


def test_guesses_sent_in_parallel_get_five_tries_between_them(start_cloud, sms) -> None:
    """Brute force by concurrency: each guess spends its try before it is compared, so twenty guesses
    at once get five answers "wrong code" and fifteen "closed", and the right code is then refused."""
    from concurrent.futures import ThreadPoolExecutor

    from cloud.cdp import verification

    client, runtime, hq, manager, victim = _setup(start_cloud, sms)
    body = client.post("/v1/members", headers=manager, json=ATTACKER).json()
    pending, code = body["verification"]["id"], sms.messages_to(VICTIM_PHONE)[-1].params["code"]
    wrong = [f"{(int(code) + n) % 10**6:06d}" for n in range(1, 21)]

    def guess(value: str) -> str:
        try:
            verification.check_code(runtime.db, body["id"], pending, value, kinds=("phone", "consent"))
        except verification.WrongCode:
            return "wrong_code"
        except verification.VerificationClosed:
            return "closed"
        return "verified"

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(guess, wrong))
    assert sorted(answers).count("wrong_code") == 5 and answers.count("closed") == 15
    assert guess(code) == "closed"
    assert client.get(f"/v1/members/{victim}", headers=hq).json()["consent"] == {"face": False}
