"""Red team (issue 15, erasure): an erased person must not come back with data that predates the erasure.

A till order paid before the member was erased reaches the cloud after the erasure (a till that was
offline, a stream replayed from its outbox, a channel export pulled late). It carries the member's
phone, so the landing made a new record with that phone and linked the order: the erased person was
back, profile, points and all. Erasure now leaves a digest of each identifier it deleted
(``erased_identifiers``, with when); a buyer named by one of them in an order paid before that time
lands as an anonymous sale (counted, named by no one). An order paid after the erasure is the
customer coming back: a new record, as for anyone new.
"""

# ruff: noqa: F811 (the cloud fixtures are imported by name, then taken as test arguments)
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.arrivals import till
from tests.cloud.conftest import db_location, face_engine, pg_database, start_cloud  # noqa: F401 (fixtures)
from tests.security.signup import hq_with_member
from tests.security.test_erasure_complete import _everything

PHONE = "13600136000"


def _sale(order_no: str, ts: datetime) -> dict:
    return {"order_no": order_no, "store": "s1", "ts": ts.isoformat(), "paid": 120.0, "member": {"phone": PHONE},
            "lines": [{"sku": "SKU-1", "qty": 1, "price": 120.0}], "type": "sale"}


def test_a_late_order_from_before_the_erasure_does_not_bring_the_person_back(start_cloud) -> None:
    client, runtime, hq, member = hq_with_member(start_cloud, name="韩梅梅", phone=PHONE, gender="female", face=False)
    before = datetime.now(UTC) - timedelta(hours=2)
    till.land(runtime.db, "pos", [_sale("R-LATE-1", before)], store="s1")  # what evt/order and POST /v1/orders call
    assert client.delete(f"/v1/members/{member}", headers=hq).status_code == 200

    # paid an hour before the erasure, landed after it
    till.land(runtime.db, "pos", [_sale("R-LATE-2", before + timedelta(hours=1))], store="s1")
    assert runtime.db.scalar("SELECT COUNT(*) FROM members") == 0
    assert PHONE not in _everything(runtime)
    late = runtime.db.one("SELECT member_id, paid FROM orders WHERE id = 'pos:s1:R-LATE-2'")
    assert late is not None and late["member_id"] is None and late["paid"] == 120.0  # the sale counts, anonymous

    # the customer comes back after the erasure: a new record like anyone new
    till.land(runtime.db, "pos", [_sale("R-BACK-1", datetime.now(UTC) + timedelta(seconds=1))], store="s1")
    assert runtime.db.scalar("SELECT COUNT(*) FROM members") == 1
    back = runtime.db.one("SELECT member_id FROM orders WHERE id = 'pos:s1:R-BACK-1'")
    assert back is not None and back["member_id"] is not None


def test_a_late_row_naming_the_erased_person_is_quarantined_without_its_content(start_cloud) -> None:
    """The till that was offline re-sends its outbox after the erasure: the sale that had already
    landed is a ``duplicate_order``, and a receipt whose time the till garbled is ``bad_time``. Both
    are quarantined, and the quarantine keeps each raw row for HQ's review: her phone was stored
    again, readable at ``GET /v1/imports/{id}/quarantine``, after the erasure had cleared every
    quarantined row naming her. Such a row keeps its reason and loses its content, as the
    erasure's own clearing does; once she is a member again (after the erasure) her rows are kept."""
    client, runtime, hq, member = hq_with_member(start_cloud, name="韩梅梅", phone=PHONE, gender="female", face=False)
    before = datetime.now(UTC) - timedelta(hours=2)
    till.land(runtime.db, "pos", [_sale("R-LATE-1", before)], store="s1")
    assert client.delete(f"/v1/members/{member}", headers=hq).status_code == 200

    garbled = {**_sale("R-LATE-3", before), "ts": "not a time", "member": {"phone": f"+86 {PHONE[:3]}-{PHONE[3:]}"}}
    resent = till.land(runtime.db, "pos", [_sale("R-LATE-1", before), garbled], store="s1")
    assert resent["quarantined"] == {"duplicate_order": 1, "bad_time": 1}
    held = client.get(f"/v1/imports/{resent['import_id']}/quarantine", headers=hq).json()["items"]
    assert sorted(row["reason"] for row in held) == ["bad_time", "duplicate_order"]
    assert all(row["raw"] == {"erased": True} for row in held), held
    assert PHONE not in _everything(runtime)

    # she comes back after the erasure: her phone names a member again, and her rows are kept whole
    till.land(runtime.db, "pos", [_sale("R-BACK-1", datetime.now(UTC) + timedelta(seconds=1))], store="s1")
    again = till.land(runtime.db, "pos", [_sale("R-BACK-1", datetime.now(UTC))], store="s1")
    (kept,) = client.get(f"/v1/imports/{again['import_id']}/quarantine", headers=hq).json()["items"]
    assert kept["reason"] == "duplicate_order" and kept["raw"]["member"] == {"phone": PHONE}
