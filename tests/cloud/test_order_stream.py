"""Orders as a stream (issue 16 item 3) and attribution from the till (item 4), on both engines:
POST /v1/orders signed per channel with a replay window, a till's evt/order through the ingest's
dispatch table, the same cleaning and quarantine as files, refunds and partial refunds on their order,
and each store order linked to its member, the visit and the assistant with the reason."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.arrivals import feedback, till, visits
from cloud.arrivals.ingest import EventProcessor
from cloud.cdp import oneid
from cloud.cdp.imports import stream
from cloud.db import Database
from cloud.health import dashboard, live
from cloud.masterdata.importer import import_master
from cloud.pricing import markdown_runner
from protocol import topics
from protocol.codec import decode, encode
from protocol.messages import Feedback, new_id
from protocol.till import TillLine, TillMember, TillOrder

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
SECRET = "pos-secret-for-tests-0123456789"


def _order(no: str, *, paid: float = 398.0, card: str | None = "C-9001", ts: datetime | None = None, **extra) -> dict:
    row = {"order_no": no, "store": "sh-001", "ts": (ts or datetime.now(UTC)).isoformat(), "paid": paid,
           "lines": [{"sku": "SKU-1001", "qty": 1, "price": paid}]}
    if card:
        row["member"] = {"card": card, "phone": "13800138000"}
    row.update(extra)
    return row


def _signed(body: bytes, *, ts: int | None = None, secret: str = SECRET, channel: str = "pos") -> dict:
    stamp = str(ts if ts is not None else int(time.time()))
    return {"X-Instore-Channel": channel, "X-Instore-Timestamp": stamp,
            "X-Instore-Signature": stream.signature(secret, stamp, body), "Content-Type": "application/json"}


def _master(db: Database) -> None:
    for kind in ("stores", "products", "staff", "shifts", "targets", "stock", "movements", "batches"):
        import_master(db, kind, (EXAMPLES / f"{kind}.csv").read_bytes(), source=f"{kind}.csv")


def test_a_batch_lands_like_a_file_with_refunds_duplicates_and_bad_rows(db: Database) -> None:
    _master(db)
    rows = [_order("R-1"), _order("R-2", card=None), _order("R-1"),  # a duplicate in the same batch
            {"order_no": "R-3", "store": "sh-001", "ts": "yesterday", "paid": 1, "lines": [{"sku": "X", "price": 1}]},
            _order("R-4", paid=-5), {"order_no": "R-5", "store": "sh 001", "paid": 1, "ts": "2026-01-01",
                                     "lines": [{"sku": "X", "price": 1}]},
            "not an object"]
    report = till.land(db, "pos", rows)
    assert report["orders"] == 2 and report["rows"] == 7
    assert report["quarantined"] == {"duplicate_order": 1, "bad_time": 1, "negative_amount": 1, "invalid_store": 1,
                                     "malformed_row": 1}
    # a line's category comes from the catalogue when the till does not send one
    assert db.scalar("SELECT category FROM order_lines WHERE order_id = 'pos:sh-001:R-1'") == "焕肤"
    # posted again: counted once
    again = till.land(db, "pos", [_order("R-1")])
    assert again["orders"] == 0 and again["quarantined"] == {"duplicate_order": 1}
    # a partial refund, then another: events on their order, each with its own number
    part = {**_order("RF-1", paid=100.0), "type": "refund", "refund_of": "R-1"}
    rest = {**_order("RF-2", paid=298.0), "type": "refund", "refund_of": "R-1"}
    assert till.land(db, "pos", [part, rest])["refunds"] == 2
    assert db.rows("SELECT id, paid, refund_of FROM orders WHERE status = 'refund' ORDER BY id") == [
        ("pos:sh-001:RF-1:refund", -100.0, "pos:sh-001:R-1"), ("pos:sh-001:RF-2:refund", -298.0, "pos:sh-001:R-1")]
    orphan = {**_order("RF-3", paid=5.0, card=None), "type": "refund", "refund_of": "NOPE"}
    assert till.land(db, "pos", [orphan])["quarantined"] == {"refund_without_order": 1}
    # the buyer is a OneID person with the order in the profile, and the live screen counts it
    member = db.scalar("SELECT member_id FROM orders WHERE id = 'pos:sh-001:R-1'")
    person = db.scalar("SELECT COALESCE(merged_into, id) FROM members WHERE id = ?", (member,))
    assert person and oneid  # resolved
    screen = live.brand_live(db, None)
    assert screen["sales"] == pytest.approx(398.0 * 2 - 398.0) and screen["orders"] == 4


def _visit(db: Database, member: str, ts: datetime, store: str = "sh-001") -> visits.Visit:
    visit = visits.Visit(id=new_id(), brand="demo", store=store, member_id=member, confidence=0.9, ts=ts,
                         arrival_event_id=new_id(), device="box-1", camera="cam-1", card_id=new_id())
    assert visits.record_visit(db, visit)
    return visit


def _tap(db: Database, visit: visits.Visit, action: str, assistant: str, *, amount: float | None = None,
         receipt: str | None = None) -> None:
    fb = Feedback(feedback_id=new_id(), card_id=visit.card_id, visit_id=visit.id, brand="demo", store=visit.store,
                  screen="s1", action=action, assistant=assistant, amount=amount, receipt=receipt,
                  ts=datetime.now(UTC))
    assert feedback.record(db, fb) == "stored"


def test_a_till_order_is_attributed_to_the_member_visit_and_assistant(db: Database) -> None:
    _master(db)
    till.land(db, "pos", [_order("OLD-1", ts=datetime.now(UTC) - timedelta(days=30))])  # the member is known
    member = db.scalar("SELECT member_id FROM orders WHERE id = 'pos:sh-001:OLD-1'")
    now = datetime.now(UTC)
    visit = _visit(db, member, now - timedelta(minutes=20))
    _tap(db, visit, "served", "A002")
    # the till's order in the member's visit window: the visit and the assistant who served it
    till.land(db, "pos", [_order("T-1", ts=now)])
    row = till.attribution(db, "pos:sh-001:T-1")
    assert (row["visit_id"], row["assistant"], row["reason"], row["member_via"]) == (visit.id, "A002",
                                                                                      "served_in_visit", "card")
    assert row["lag_s"] == pytest.approx(1200, abs=2)
    # the 成交 tap with the receipt number, after the till: confirmed for the tapping assistant
    _tap(db, visit, "sold", "A001", amount=999.0, receipt="T-1")
    assert till.attribution(db, "pos:sh-001:T-1")["reason"] == "receipt_confirmed"
    assert till.attribution(db, "pos:sh-001:T-1")["assistant"] == "A001"
    # a 成交 tap before the till: the till's order confirms it
    _tap(db, visit, "sold", "A002", amount=50.0, receipt="T-2")
    till.land(db, "pos", [_order("T-2", paid=60.0, ts=now)])
    assert (till.attribution(db, "pos:sh-001:T-2")["assistant"], till.attribution(db, "pos:sh-001:T-2")["reason"]) == (
        "A002", "receipt_confirmed")
    # a partial refund follows its order's assistant; a typed amount without a till order is a claim only
    till.land(db, "pos", [{**_order("T-2R", paid=10.0), "type": "refund", "refund_of": "T-2"}])
    assert till.attribution(db, "pos:sh-001:T-2R:refund")["reason"] == "refund_of"
    _tap(db, visit, "sold", "A002", amount=5000.0)
    day = now.astimezone(UTC)
    league = {r["assistant"]: r for r in dashboard.assistants_league(db, "sh-001", day - timedelta(days=1),
                                                                      day + timedelta(days=1))}
    assert league["A001"]["sales"] == 398.0 and league["A002"]["sales"] == 50.0
    assert league["A002"]["claimed_sales"] == 5000.0 + 50.0 and league["A001"]["confirmed_orders"] == 1
    # an order outside any visit window, with the till's salesperson
    till.land(db, "pos", [_order("T-3", card=None, assistant="A003")])
    assert till.attribution(db, "pos:sh-001:T-3")["reason"] == "till_assistant"
    till.land(db, "pos", [_order("T-4", card=None)])
    assert till.attribution(db, "pos:sh-001:T-4")["reason"] == "anonymous"
    # a sale and its refund in one batch: the refund follows the sale's assistant
    till.land(db, "pos", [_order("T-5", card=None, assistant="A003"),
                          {**_order("T-5R", paid=20.0, card=None), "type": "refund", "refund_of": "T-5"}])
    assert (till.attribution(db, "pos:sh-001:T-5R:refund")["assistant"], till.attribution(db, "pos:sh-001:T-5R:refund")["reason"]) == (
        "A003", "refund_of")


def test_a_transient_database_error_routes_the_message_again_not_loses_it(db: Database, monkeypatch) -> None:
    """The ingest acknowledges a message once routed: a deadlock or dropped connection on the first
    try must not be the end of it (a till order here; an arrival takes the same path)."""
    _master(db)
    processor = EventProcessor(db, matcher=None, cards=None, require_known_devices=False)  # type: ignore[arg-type]
    land, failures = till.land, [sqlite3.OperationalError("database is locked")]

    def flaky_land(*args, **kwargs):
        if failures:
            raise failures.pop()
        return land(*args, **kwargs)

    monkeypatch.setattr(till, "land", flaky_land)
    order = TillOrder(brand="demo", store="sh-001", device="till-1", order_no="P-9", ts=datetime.now(UTC),
                      paid=99.0, lines=(TillLine(sku="SKU-1001", qty=1, price=99.0),))
    processor.route_retrying(topics.till_order("demo", "sh-001", "till-1"), encode(order))
    counts = processor.counters.snapshot()
    assert (counts.retries, counts.till_orders) == (1, 1)
    assert db.scalar("SELECT paid FROM orders WHERE id = 'pos:sh-001:P-9'") == 99.0


def test_a_till_publishes_its_order_on_evt_order(db: Database) -> None:
    _master(db)
    processor = EventProcessor(db, matcher=None, cards=None, require_known_devices=False)  # type: ignore[arg-type]
    order = TillOrder(brand="demo", store="sh-001", device="till-1", order_no="P-1", ts=datetime.now(UTC),
                      paid=199.0, lines=(TillLine(sku="SKU-1001", qty=1, price=199.0),),
                      member=TillMember(qr="C-77"), assistant="A002")
    topic = topics.till_order("demo", "sh-001", "till-1")
    assert decode(encode(order), TillOrder) == order
    processor.process(topic, encode(order))
    processor.process(topic, encode(order))  # a re-send after a lost PUBACK
    counts = processor.counters.snapshot()
    assert counts.till_orders == 1 and counts.duplicates == 1
    assert db.scalar("SELECT paid FROM orders WHERE id = 'pos:sh-001:P-1'") == 199.0
    assert till.attribution(db, "pos:sh-001:P-1")["member_via"] == "qr"
    # another store's payload on this till's topic is refused
    other = order.model_copy(update={"store": "sh-002", "order_no": "P-2"})
    processor.process(topic, encode(other))
    assert processor.counters.snapshot().rejected == {"topic_mismatch": 1}


def test_old_feedback_without_a_receipt_still_decodes() -> None:
    old = {"v": 1, "type": "feedback", "feedback_id": uuid.uuid4().hex, "card_id": uuid.uuid4().hex,
           "visit_id": uuid.uuid4().hex, "brand": "demo", "store": "sh-001", "screen": "s1", "action": "sold",
           "assistant": "A001", "amount": 12.0, "ts": "2026-01-01T10:00:00+08:00"}
    assert decode(json.dumps(old), Feedback).receipt is None


def test_post_orders_is_signed_fresh_and_not_replayed(start_cloud) -> None:
    client, runtime = start_cloud(order_channel_secrets={"pos": SECRET})
    body = json.dumps({"orders": [_order("H-1", store="sh-001")]}).encode()
    first = client.post("/v1/orders", content=body, headers=_signed(body))
    assert first.status_code == 200, first.text
    assert first.json()["orders"] == 1
    headers = _signed(body)
    replay = client.post("/v1/orders", content=body, headers=headers)
    assert replay.status_code in (200, 401)
    again = client.post("/v1/orders", content=body, headers=headers)  # the same signature again
    assert again.status_code == 401 and again.json()["detail"]["code"] == "replayed_signature"
    stale = client.post("/v1/orders", content=body, headers=_signed(body, ts=int(time.time()) - 3600))
    assert stale.json()["detail"]["code"] == "stale_signature"
    forged = client.post("/v1/orders", content=body, headers=_signed(body, secret="wrong"))
    assert forged.status_code == 401 and forged.json()["detail"]["code"] == "bad_signature"
    unknown = client.post("/v1/orders", content=body, headers=_signed(body, channel="jd"))
    assert unknown.json()["detail"]["code"] == "unknown_channel"
    assert runtime.db.scalar("SELECT COUNT(*) FROM orders WHERE id = 'pos:sh-001:H-1'") == 1
    for bad in (b'{"order": []}', b"[1, 2]", b"not json"):
        refused = client.post("/v1/orders", content=bad, headers=_signed(bad))
        assert refused.status_code == 422 and refused.json()["detail"]["code"] == "malformed_batch"


def test_recommendations_skip_what_the_store_is_out_of_stock_of(db: Database) -> None:
    from cloud.guide.recommend.model import build_model

    _master(db)
    assert build_model(db).available("sh-001", "SKU-1001")
    db.execute("INSERT INTO stock_days (store, day, sku, opening, received, sold, wasted, markdown_loss) "
               "VALUES ('sh-001', '2099-01-01', 'SKU-1001', 3, 0, 3, 0, 0)")
    model = build_model(db)
    assert not model.available("sh-001", "SKU-1001") and model.available("hz-002", "SKU-1001")
    assert model.available("sh-001", "SKU-1002") or "SKU-1002" not in model.listed


def test_end_to_end_files_in_stream_out_and_the_screens_show_the_tills_numbers(db: Database) -> None:
    """Master data from the example files; a member known from a streamed order is recognised at the door
    (the visit the ingest records), served on the guide screen, and buys at the till (evt/order): the
    visit, the assistant's league row, the live screen, the markdown plan and the store's health metrics
    show the till's sale."""
    from zoneinfo import ZoneInfo

    from cloud.health.rollup import rollup_days

    _master(db)
    shanghai = ZoneInfo("Asia/Shanghai")
    day = (datetime.now(shanghai) - timedelta(days=1)).date()
    at = datetime(day.year, day.month, day.day, 11, 0, tzinfo=shanghai)
    # the member's earlier online order, streamed by the mini program (phone and card link the person)
    till.land(db, "wechat", [{"order_no": "WX-1", "ts": (at - timedelta(days=20)).isoformat(), "paid": 129.0,
                              "member": {"phone": "13900001111", "unionid": "u-1"},
                              "lines": [{"sku": "SKU-1002", "qty": 1, "price": 129.0}]}])
    till.land(db, "pos", [_order("OLD-9", card="C-1111", ts=at - timedelta(days=10)) | {
        "member": {"card": "C-1111", "phone": "13900001111"}}])
    person = db.scalar("SELECT COALESCE(m.merged_into, m.id) FROM orders o JOIN members m ON m.id = o.member_id "
                       "WHERE o.id = 'wechat:WX-1'")
    assert person == db.scalar("SELECT COALESCE(m.merged_into, m.id) FROM orders o JOIN members m "
                               "ON m.id = o.member_id WHERE o.id = 'pos:sh-001:OLD-9'")
    visit = _visit(db, person, at - timedelta(minutes=25))  # recognised at the door
    _tap(db, visit, "served", "A002")
    processor = EventProcessor(db, matcher=None, cards=None, require_known_devices=False)  # type: ignore[arg-type]
    # a perishable batch of SKU-1002, which no stock file reports: the markdown plan reads its sales off the till
    batch = f"store,sku,batch,received_on,expires_on,qty\nsh-001,SKU-1002,B1,{day},{day + timedelta(days=3)},20\n"
    import_master(db, "batches", batch.encode(), source="batches.csv")
    sale = TillOrder(brand="demo", store="sh-001", device="till-1", order_no="E2E-1", ts=at, paid=758.0,
                     lines=(TillLine(sku="SKU-1001", qty=1, price=379.0), TillLine(sku="SKU-1002", qty=2, price=189.5)),
                     member=TillMember(card="C-1111"))
    processor.process(topics.till_order("demo", "sh-001", "till-1"), encode(sale))
    attributed = till.attribution(db, "pos:sh-001:E2E-1")
    assert (attributed["visit_id"], attributed["assistant"], attributed["reason"]) == (visit.id, "A002",
                                                                                       "served_in_visit")
    league = dashboard.assistants_league(db, "sh-001", at - timedelta(hours=12), at + timedelta(hours=12))
    row = next(r for r in league if r["assistant"] == "A002")
    assert (row["sales"], row["sold"], row["median_time_to_sale_s"]) == (758.0, 1, 1500.0)
    screen = live.brand_live(db, day)
    assert next(s for s in screen["stores"] if s["store"] == "sh-001")["sales"] == 758.0
    plan = {item.sku: item for item in markdown_runner.plan_store(db, "sh-001", at + timedelta(hours=8),
                                                                     max_changes_per_day=3, elasticity=2.0)}
    assert (plan["SKU-1002"].sales_rate, plan["SKU-1002"].stock, plan["SKU-1002"].status) == (2.0, 20, "planned")
    rollup_days(db, day, day, stores=["sh-001"], until=datetime.now(UTC))
    metrics = dict(db.rows("SELECT metric, value FROM store_metrics WHERE store = 'sh-001' AND grain = 'day' "
                           "AND metric IN ('sales', 'orders')"))
    assert metrics == {"sales": 758.0, "orders": 1.0}
