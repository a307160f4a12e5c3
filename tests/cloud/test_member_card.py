"""One member card across channels (issue 21): a Tmall buyer, a WeChat unionid and a POS card bound to
a person with a one-time code to the person's phone (the simulated SMS gateway), through the API on
both engines; the channel records' points and spend (so tier) then follow the person."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from cloud.cdp import members, oneid
from cloud.channels.sms_sim import SimulatedSms
from cloud.clock import iso
from cloud.db import Database
from cloud.loyalty import ledger

PHONE = "13900000041"


@pytest.fixture
def sms() -> Iterator[SimulatedSms]:
    sim = SimulatedSms().start()
    yield sim
    sim.stop()


def channel_record(db: Database, source: str, kind: str, value: str, paid: float) -> str:
    """A record as a channel import leaves it: its own identifier and one paid order (no phone)."""
    record, at = uuid4().hex, datetime.now(UTC) - timedelta(days=3)
    with db.transaction() as tx:
        tx.execute("INSERT INTO members (id, source, source_key, name, created) VALUES (?, ?, ?, ?, ?)",
                   (record, source, f"{kind}:{value}", "", iso(at)))
        oneid.add_identifiers(tx, record, [(kind, value)])
        tx.execute("INSERT INTO orders (id, channel, order_no, store, member_id, ts, paid, status) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, 'paid')",
                   (f"o-{record}", source, f"o-{record}", "s1" if source == "pos" else None, record,
                    int(at.timestamp()), paid))
    return record


def bind(client, sms: SimulatedSms, person: str, kind: str, value: str) -> dict:
    started = client.post(f"/v1/members/{person}/bindings", json={"kind": kind, "value": value})
    assert started.status_code == 201, started.text
    code = str(sms.messages_to(PHONE)[-1].params["code"])
    done = client.post(f"/v1/members/{person}/bindings/{started.json()['id']}", json={"kind": kind, "code": code})
    assert done.status_code == 200, done.text
    return done.json()


def test_tmall_wechat_and_pos_records_bound_by_code_share_one_card_points_and_tier(
    start_cloud, sms: SimulatedSms
) -> None:
    client, runtime = start_cloud(sms_url=sms.url)
    db = runtime.db
    signed_up = person = members.add_member(db, name="陈静", phone=PHONE, gender="female", tier="普通会员", tags=[],
                                            categories=[], face_consent=False).id
    tmall = channel_record(db, "tmall", "tmall_buyer", "jing_chen88", 1500.0)
    wechat = channel_record(db, "wechat", "unionid", "oUnion-jc-01", 400.0)
    pos = channel_record(db, "pos", "member_card", "MC2000000041", 600.0)
    ledger.post_new_orders(db)
    assert client.get(f"/v1/loyalty/members/{person}").json()["balance"] == 0  # apart until proven

    # a wrong code binds nothing
    started = client.post(f"/v1/members/{person}/bindings", json={"kind": "tmall_buyer", "value": "jing_chen88"})
    assert started.status_code == 201 and started.json()["sent"] is True
    wrong = client.post(f"/v1/members/{person}/bindings/{started.json()['id']}",
                        json={"kind": "tmall_buyer", "code": "000000" if sms.messages_to(PHONE)[-1].params["code"]
                              != "000000" else "111111"})
    assert wrong.json()["detail"]["code"] == "wrong_code"
    assert members.person_id(db, tmall) == tmall

    for kind, value, record in (("tmall_buyer", "jing_chen88", tmall), ("unionid", "oUnion-jc-01", wechat),
                                ("member_card", "MC2000000041", pos)):
        bound = bind(client, sms, signed_up, kind, value)
        person = bound["person_id"]  # a person's id is their earliest record's: the Tmall buyer's from now on
        assert {signed_up, record} <= set(bound["records"])
        assert members.person_id(db, record) == members.person_id(db, signed_up) == person
    assert len(sms.messages_to(PHONE)) == 4  # every code went to the person's own phone

    points = client.get(f"/v1/loyalty/members/{pos}").json()  # asked by the POS card's record: the same person
    assert points["person"] == person and points["balance"] == 2500  # 1 point a yuan on every channel's order
    assert points["tier"] == "银卡会员"  # 2500 yuan over 12 months across channels: silver from 2000
    lineage = client.get(f"/v1/members/{person}/identity")
    assert lineage.status_code == 200 and "bound by code" in lineage.text  # each link says how it was proven


def test_binding_needs_the_persons_verified_phone_and_a_known_kind(start_cloud, sms: SimulatedSms) -> None:
    client, runtime = start_cloud(sms_url=sms.url)
    person = members.add_member(runtime.db, name="陈静", phone=PHONE, gender=None, tier="普通会员", tags=[],
                                categories=[], face_consent=False).id
    assert client.post(f"/v1/members/{person}/bindings", json={"kind": "phone", "value": "13900000042"}
                       ).status_code == 422  # a phone is proven by its own sign-up, not bound
    assert client.post(f"/v1/members/{uuid4().hex}/bindings", json={"kind": "unionid", "value": "x"}
                       ).status_code == 404
    # a sign-up whose phone belongs to someone else is unverified: no code goes anywhere for a binding
    other = members.add_member(runtime.db, name="冒名", phone=PHONE, gender=None, tier="普通会员", tags=[],
                               categories=[], face_consent=False).id
    refused = client.post(f"/v1/members/{other}/bindings", json={"kind": "unionid", "value": "oUnion-x"})
    assert refused.status_code == 409 and refused.json()["detail"]["code"] == "no_verified_phone"
