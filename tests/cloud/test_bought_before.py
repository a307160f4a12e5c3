"""A member whose tier says they bought is not a prospect (issue 15, "the script names facts that are
true"): a CRM or counter record stating a tier the brand's ladder gives only for spend (金卡会员 at
8,000 yuan a year) means orders the CDP has not seen. Without any order here their lifecycle is
``unknown`` (the card shows none, segments can find them), never ``prospect`` with its "第一次购物"
script; their first order here is not "new" and does not enter a first-purchase journey. A 普通会员
without orders is still a prospect. Checked through the API: sign-ups, orders landed by the till
importer, the card's script, segment previews and a running journey."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.activation import campaigns
from cloud.arrivals import till

GOLD, PLAIN, DIAMOND = "13600000001", "13600000002", "13600000003"


def _order(no: str, phone: str, ts: datetime) -> dict:
    return {"order_no": no, "ts": ts.isoformat(), "paid": 199.0, "member": {"phone": phone},
            "lines": [{"sku": "SKU-1", "qty": 1, "price": 199.0}]}


def test_a_tier_earned_by_spending_is_not_a_prospect_nor_a_first_purchase(start_cloud) -> None:
    client, runtime = start_cloud()
    runtime.scheduler.stop()  # the test runs the journey itself
    db = runtime.db
    ids = {}
    for phone, name, tier in ((GOLD, "陈静", "金卡会员"), (PLAIN, "李明", "普通会员"), (DIAMOND, "赵敏", "钻石会员")):
        made = client.post("/v1/members", json={"name": name, "phone": phone, "gender": "female", "tier": tier,
                                                 "consent": {"face": False}})
        assert made.status_code == 201, made.text
        ids[phone] = made.json()["id"]

    def person(phone: str) -> str:
        return client.get(f"/v1/members/{ids[phone]}/profile").json()["id"]

    def lifecycle(phone: str) -> str:
        return client.get(f"/v1/members/{ids[phone]}/profile").json()["stats"]["lifecycle"]

    def segment(stage: str) -> set[str]:
        found = client.post("/v1/segments/preview", json={"condition": {"lifecycle": [stage]}})
        assert found.status_code == 200, found.text
        return {item["id"] for item in found.json()["items"]}

    assert (lifecycle(GOLD), lifecycle(PLAIN), lifecycle(DIAMOND)) == ("unknown", "prospect", "unknown")
    assert segment("prospect") == {person(PLAIN)}
    assert segment("unknown") == {person(GOLD), person(DIAMOND)}
    script = client.get(f"/v1/members/{ids[GOLD]}/script?store=s1").json()["text"]
    assert script.startswith("陈女士您好，欢迎光临！您是我们的金卡会员，感谢您一直以来的支持") and "第一次购物" not in script, script

    # a first-purchase journey is running when the diamond member's and the plain member's first
    # orders in the CDP land: only the plain member's is a first purchase
    thanks = campaigns.create_template(db, channel="sms", code="SMS_FIRST", body="感谢首购", params=[], actor="t")
    campaigns.approve_template(db, thanks["id"], actor="hq")
    made = client.post("/v1/journeys", json={
        "name": "首购", "trigger": "first_purchase", "params": {"days": 7}, "holdout_pct": 0,
        "quiet_start": 0, "quiet_end": 0, "steps": [{"send": "sms", "template_id": thanks["id"]}]})
    assert made.status_code == 201, made.text
    journey = made.json()["id"]
    assert client.post(f"/v1/journeys/{journey}/launch").json()["status"] == "running"
    now = datetime.now(UTC) - timedelta(minutes=5)
    till.land(db, "tmall", [_order("T-1", DIAMOND, now), _order("T-2", PLAIN, now)])
    entered = {e["person_id"] for e in client.get(f"/v1/journeys/{journey}/entries").json()}
    assert entered == {person(PLAIN)}
    assert (lifecycle(DIAMOND), lifecycle(PLAIN)) == ("active", "new")  # one recent order: new only if it is the first
    runtime.run_journeys(now=datetime.now(UTC))  # the daily sweep agrees with the landing
    assert {e["person_id"] for e in client.get(f"/v1/journeys/{journey}/entries").json()} == {person(PLAIN)}
