"""Red team (issue 15, erasure): a member who earned points, held a coupon, consented to marketing,
had a guide and was told their points expire is erased over the API; afterwards nothing in any
table may name them. Erasure lived in the CDP and knew only the CDP's tables, so the loyalty
ledger, coupons, points notices and marketing consent kept the person's id (and a send's address,
their phone): each feature now says what erasing a person means for its own tables
(``cloud.cdp.erasure.ERASE_HOOKS``), in the erasure's transaction.
"""

# ruff: noqa: F811 (the cloud fixtures are imported by name, then taken as test arguments)
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.arrivals import till
from cloud.loyalty import ledger
from tests.cloud.conftest import db_location, face_engine, pg_database, start_cloud  # noqa: F401 (fixtures)
from tests.security.signup import hq_with_member
from tests.security.test_erasure_complete import _everything

PHONE = "13900139000"


def test_erasure_reaches_points_coupons_codes_notices_and_marketing(start_cloud) -> None:
    client, runtime, hq, person = hq_with_member(start_cloud, name="李雷", phone=PHONE, gender="male", face=False)
    assert client.put(f"/v1/marketing/consent/{person}/sms", headers=hq,
                      json={"granted": True, "source": "counter"}).status_code == 200
    assert client.put(f"/v1/marketing/guide/{person}", headers=hq,
                      json={"assistant": "a1", "wecom_user": "wx-a1"}).status_code == 200
    earned = datetime.now(UTC) - timedelta(days=350)
    sale = {"order_no": "R-ERASE-1", "store": "s1", "ts": earned.isoformat(), "paid": 300.0,
            "member": {"phone": PHONE}, "lines": [{"sku": "SKU-1", "qty": 1, "price": 300.0}], "type": "sale"}
    till.land(runtime.db, "pos", [sale], store="s1")  # what evt/order and POST /v1/orders both call
    assert client.get(f"/v1/loyalty/members/{person}", headers=hq).json()["balance"] == 300
    assert len(ledger.notify_expiring(runtime.db)) == 1
    template = client.post("/v1/loyalty/coupon-templates", headers=hq,
                           json={"name": "减20", "kind": "amount_off", "value": 20, "stores": ["s1"]}).json()
    coupon = client.post("/v1/loyalty/coupons", headers=hq, json={"template_id": template["id"], "member_id": person})
    assert coupon.status_code == 201, coupon.text
    by_campaign = client.post("/v1/loyalty/coupons", headers=hq, json={  # as the e-coupon channel issues one
        "template_id": template["id"], "member_id": person, "issued_by": f"campaign:c1:{person}"})
    assert by_campaign.status_code == 201, by_campaign.text
    code = client.post(f"/v1/loyalty/members/{person}/codes", headers=hq, json={"points": 50})
    assert code.status_code == 201, code.text

    # a campaign's send still waiting for them, and one that reached their phone (rows as a launch and the sender write them)
    with runtime.db.transaction() as tx:
        tx.executemany(
            "INSERT INTO marketing_sends (key, campaign_id, person_id, channel, address, status, attempts, due, updated) "
            "VALUES (?, 'c1', ?, 'sms', ?, ?, 0, '2026-01-01', '2026-01-01')",
            [(f"c1:{person}:due", person, None, "pending"), (f"c1:{person}", person, PHONE, "sent")])
    head = runtime.db.scalar("SELECT COALESCE(merged_into, id) FROM members WHERE id = ?", (person,))
    records = [r for (r,) in runtime.db.rows("SELECT id FROM members WHERE id = ? OR merged_into = ?", (head, head))]
    assert len(records) == 2  # the sign-up and the till's record of the same phone, one person

    erased = client.delete(f"/v1/members/{person}", headers=hq)
    assert erased.status_code == 200, erased.text
    receipt = client.get(f"/v1/erasures/{erased.json()['erasure_id']}", headers=hq).json()["cloud"]
    assert receipt["loyalty_accounts_anonymised"] >= 1 and receipt["marketing_consents_deleted"] == 1
    assert receipt["till_attributions_anonymised"] == 1
    assert (receipt["redemption_codes_cancelled"], receipt["coupons_voided"]) == (1, 2)
    # their outstanding code and coupon went with them: nobody spends the erased person's points or coupon
    spent = client.post(f"/v1/loyalty/codes/{code.json()['code']}/redemption", headers=hq,
                        json={"store": "s1", "channel": "pos"})
    assert spent.status_code == 404, spent.text
    used = client.post(f"/v1/loyalty/coupons/{coupon.json()['code']}/redemption", headers=hq,
                       json={"store": "s1", "amount": 100})
    assert used.status_code == 409 and used.json()["detail"]["message"] == "this coupon was voided"

    assert runtime.db.rows("SELECT status, reason, address FROM marketing_sends ORDER BY status") == [
        ("sent", None, None), ("skipped", "erased", None)]  # the waiting one never goes; the sent one names no one
    everything = _everything(runtime)
    for trace in (*records, PHONE):
        assert trace not in everything, [line for line in everything.splitlines() if trace in line]
    assert client.get("/v1/loyalty/check", headers=hq).json() == {
        "negative_balances": 0, "unbalanced_movements": 0, "ledger_mismatch": 0, "lots_mismatch": 0,
        "entries_sum": 0}  # the ledger still balances: the points are anonymised, not torn out
