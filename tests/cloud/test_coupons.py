"""Coupons (issue 21, item 3): templates, unguessable single-use codes, scope, fraud checks and attribution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from cloud.cdp import members
from cloud.db import Database
from cloud.loyalty import coupons
from cloud.runtime import open_cdp
from tests.cloud.test_loyalty import race


def _member(db: Database, phone: str = "13800000001") -> str:
    return members.add_member(db, name="李娜", phone=phone, gender="female", tier="普通会员", tags=[], categories=[],
                              face_consent=False).id


def test_issue_and_redeem_once_with_scope_and_attribution(db: Database) -> None:
    person, other = _member(db), _member(db, "13800000002")
    off = coupons.add_template(db, name="满200减30", kind="amount_off", value=30, min_spend=200, valid_days=30,
                               stores=["s1"], channels=["pos", "guide_screen"], actor="hq")
    pct = coupons.add_template(db, name="9折", kind="percent_off", value=10, valid_days=7, actor="hq")
    gift = coupons.add_template(db, name="赠品", kind="gift", value=0, gift_sku="SKU-GIFT", valid_days=7, actor="hq")
    a = coupons.issue(db, off["id"], person, issued_by="campaign:c1")
    assert len(a["code"]) == 16 and a["code"] != coupons.issue(db, off["id"], person, issued_by="campaign:c1")["code"]
    for kwargs, why in (({"store": "s2", "channel": "pos", "amount": 300}, "coupon_wrong_store"),
                        ({"store": "s1", "channel": "tmall", "amount": 300}, "coupon_wrong_channel"),
                        ({"store": "s1", "channel": "pos", "amount": 100}, "coupon_min_spend"),
                        ({"store": "s1", "channel": "pos", "amount": 300, "person": other}, "coupon_not_yours")):
        with pytest.raises(coupons.CouponRefused) as refused:
            coupons.redeem(db, a["code"], **kwargs)
        assert refused.value.code == why
    used = coupons.redeem(db, a["code"], store="s1", channel="pos", amount=300, person=person, order_id="o9")
    assert (used["discount"], used["issued_by"]) == (30, "campaign:c1")
    with pytest.raises(coupons.CouponRefused) as refused:
        coupons.redeem(db, a["code"], store="s1", channel="pos", amount=300)
    assert refused.value.code == "coupon_used"
    b = coupons.issue(db, pct["id"], person, issued_by="screen:s1")
    assert coupons.redeem(db, b["code"], store="s7", channel="tmall", amount=199)["discount"] == 19.9
    g = coupons.issue(db, gift["id"], person, issued_by="api:hq")
    assert coupons.redeem(db, g["code"], store="s1", channel="pos", amount=1)["gift_sku"] == "SKU-GIFT"
    late = coupons.issue(db, pct["id"], person, issued_by="journey:j1", now=datetime.now(UTC) - timedelta(days=8))
    with pytest.raises(coupons.CouponRefused) as refused:
        coupons.redeem(db, late["code"], store="s1", channel="pos", amount=50)
    assert refused.value.code == "coupon_expired"
    with pytest.raises(coupons.UnknownCoupon):
        coupons.redeem(db, "AAAAAAAAAAAAAAAA", store="s1", channel="pos", amount=50)
    by = {r["issued_by"]: (r["issued"], r["redeemed"]) for r in coupons.attribution(db)}
    assert by == {"campaign:c1": (2, 1), "screen:s1": (1, 1), "api:hq": (1, 1), "journey:j1": (1, 0)}
    outcomes = [r[0] for r in db.rows("SELECT outcome FROM coupon_attempts WHERE code = ? ORDER BY id", (a["code"],))]
    assert outcomes == ["coupon_wrong_store", "coupon_wrong_channel", "coupon_min_spend", "coupon_not_yours",
                        "redeemed", "coupon_used"]


def test_a_coupon_given_for_a_purchase_is_void_after_its_refund(db: Database) -> None:
    person = _member(db)
    tpl = coupons.add_template(db, name="返券", kind="amount_off", value=20, valid_days=30, actor="hq")
    c = coupons.issue(db, tpl["id"], person, issued_by="journey:after-purchase", for_order="o1")
    db.execute("INSERT INTO orders (id, channel, order_no, member_id, ts, paid, status, refund_of) "
               "VALUES ('r1', 'pos', 'r1', ?, 0, -100, 'refund', 'o1')", (person,))
    with pytest.raises(coupons.CouponRefused) as refused:
        coupons.redeem(db, c["code"], store="s1", channel="pos", amount=100)
    assert refused.value.code == "coupon_void_after_refund"
    assert coupons.coupon(db, c["code"])["status"] == "void"


def test_two_tills_taking_one_coupon_at_once_get_one_success(db_location: str) -> None:
    db = open_cdp(db_location, sample_catalogue=False)
    person = _member(db)
    tpl = coupons.add_template(db, name="减50", kind="amount_off", value=50, valid_days=30, actor="hq")
    code = coupons.issue(db, tpl["id"], person, issued_by="api:hq")["code"]
    db.close()
    outcomes: list[str] = []

    def till(n: int, own: Database) -> None:
        try:
            coupons.redeem(own, code, store=f"s{n}", channel="pos", amount=100)
            outcomes.append("ok")
        except coupons.CouponRefused as exc:
            outcomes.append(exc.code)

    race(db_location, [partial(till, n) for n in range(8)])
    assert sorted(outcomes) == ["coupon_used"] * 7 + ["ok"]


def test_coupons_through_the_api(start_cloud) -> None:
    client, runtime = start_cloud()
    person = _member(runtime.db)
    made = client.post("/v1/loyalty/coupon-templates", json={"name": "减20", "kind": "amount_off", "value": 20,
                                                              "stores": ["s1"]})
    assert made.status_code == 201
    issued = client.post("/v1/loyalty/coupons", json={"template_id": made.json()["id"], "member_id": person,
                                                      "issued_by": "campaign:spring"}).json()
    wrong = client.post(f"/v1/loyalty/coupons/{issued['code']}/redemption", json={"store": "s2", "amount": 100})
    assert wrong.status_code == 409 and wrong.json()["detail"]["code"] == "coupon_wrong_store"
    used = client.post(f"/v1/loyalty/coupons/{issued['code']}/redemption", json={"store": "s1", "amount": 100})
    assert used.status_code == 200 and used.json()["issued_by"] == "campaign:spring"
    assert client.get(f"/v1/loyalty/members/{person}/coupons").json()[0]["status"] == "redeemed"
    assert client.get("/v1/loyalty/coupon-attribution").json()[0]["redeemed"] == 1
