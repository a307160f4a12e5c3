"""A till's receipt numbers are its store's own (issue 16, red team): the same receipt number at
two stores is two sales, through a file, ``POST /v1/orders`` and a till's ``evt/order``; a re-post is
still a duplicate; a refund's 原单号 is a receipt of its own store; attribution and points follow the
right order; and migration 80 rewrites the POS ids a database already holds, on both engines."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from cloud.arrivals import till
from cloud.arrivals.ingest import EventProcessor
from cloud.cdp.imports import stream
from cloud.cdp.imports.canonical import Order, order_id
from cloud.cdp.imports.importer import import_file, import_text
from cloud.db import Database, Schema
from cloud.db.database import connect
from cloud.db.migrations import migrate
from cloud.loyalty import ledger
from cloud.runtime import SCHEMAS
from protocol import topics
from protocol.codec import encode
from protocol.till import TillLine, TillMember, TillOrder
from tests.cloud.test_cloud_wifi import tables

SECRET = "pos-secret-for-tests-0123456789"
POS_HEAD = "receipt_no,store,member_card,phone,ts,sku,category,qty,unit_price,amount,currency,type,original_receipt_no\n"
#: the red team's reproduction: each store's till numbers its own receipts, so both print R1
TWO_STORES = POS_HEAD + (
    "R1,s1,MC1,13800000001,2026-11-01 10:00:00,SKU-A,护肤,1,100,100,CNY,sale,\n"
    "R1,s2,MC2,13800000002,2026-11-01 11:00:00,SKU-B,彩妆,2,150,300,CNY,sale,\n"
)


def test_an_order_id_names_the_store_only_for_a_till() -> None:
    assert order_id("pos", "R1", "s1") == "pos:s1:R1"
    assert order_id("pos", "R1", "s1", refund=True) == "pos:s1:R1:refund"
    assert order_id("tmall", "T1", "旗舰店") == "tmall:T1"  # a platform's number is platform-wide
    with pytest.raises(ValueError):
        order_id("pos", "R1")
    with pytest.raises(ValueError):  # a till's receipt without its store has no identity
        Order(order_no="R1", channel="pos", store=None, buyer=None, lines=(), paid=1.0, ts=datetime.now(UTC))


def test_the_same_receipt_at_two_stores_lands_twice_from_a_file(db: Database) -> None:
    report = import_text(db, "pos", TWO_STORES, source="pos.csv")
    assert (report.orders, report.quarantined) == (2, {})
    assert db.rows("SELECT id, store, paid FROM orders ORDER BY id") == [("pos:s1:R1", "s1", 100.0),
                                                                       ("pos:s2:R1", "s2", 300.0)]
    # each store's revenue and each buyer's history hold their own sale
    assert dict(db.rows("SELECT store, SUM(amount) FROM order_lines GROUP BY store")) == {"s1": 100.0, "s2": 300.0}
    buyers = dict(db.rows("SELECT o.store, m.source_key FROM orders o JOIN members m ON m.id = o.member_id"))
    assert buyers == {"s1": "member_card:MC1", "s2": "member_card:MC2"}
    # the same file again: both are duplicates, counted once
    again = import_text(db, "pos", TWO_STORES, source="pos.csv")
    assert (again.orders, again.quarantined) == (0, {"duplicate_order": 2})
    # a refund by 原单号 at s2 returns s2's R1, not s1's (which MC2 never bought)
    refund = import_text(db, "pos", POS_HEAD + "F1,s2,MC2,13800000002,2026-11-02 10:00:00,SKU-B,彩妆,1,150,150,CNY,"
                                               "refund,R1\n", source="refund.csv")
    assert (refund.refunds, refund.quarantined) == (1, {})
    assert db.scalar("SELECT refund_of FROM orders WHERE id = 'pos:s2:F1:refund'") == "pos:s2:R1"
    # a 原单号 that the refund's store never issued is not another store's receipt
    stray = import_text(db, "pos", POS_HEAD + "F2,s3,,,2026-11-02 10:00:00,SKU-A,护肤,1,100,100,CNY,refund,R1\n",
                        source="stray.csv")
    assert stray.quarantined == {"refund_without_order": 1}


def test_a_multi_store_pos_export_joins_each_receipt_to_its_own_stores_lines(db: Database) -> None:
    """The real layout (order headers + lines, joined by order_id): a chain's export with a store
    column holds receipt 501 of two stores; each header takes its own store's lines."""
    heads = ("order_id,门店编码,accounts_payable,use_start_time,lock_time,order_status,phone\n"
             "501,s1,26,2025/3/3 13:59,2025/3/3 14:40,1,18688880001\n"
             "501,s2,198,2025/3/3 15:00,2025/3/3 15:30,1,18688880002\n")
    lines = ("order_id,门店编码,dishes_id,dishes_name,parent_class_name,counts,amounts,place_order_time\n"
             "501,s1,610047,西瓜沙拉,凉菜,1,26,2025/3/3 14:01:13\n"
             "501,s2,609970,小龙虾,热菜,2,99,2025/3/3 15:01:47\n")
    report = import_file(db, "pos", heads.encode(), companion=lines.encode(), source="meal_order_info.csv")
    assert (report.orders, report.lines, report.quarantined) == (2, 2, {})
    assert db.rows("SELECT order_id, store, sku, amount FROM order_lines ORDER BY order_id") == [
        ("pos:s1:501", "s1", "610047", 26.0), ("pos:s2:501", "s2", "609970", 198.0)]


def _signed(body: bytes) -> dict:
    stamp = str(int(time.time()))
    return {"X-Instore-Channel": "pos", "X-Instore-Timestamp": stamp,
            "X-Instore-Signature": stream.signature(SECRET, stamp, body), "Content-Type": "application/json"}


def _sale(store: str, card: str, paid: float, assistant: str, **extra: object) -> dict:
    return {"order_no": "R-1", "store": store, "ts": datetime.now(UTC).isoformat(), "paid": paid,
            "member": {"card": card}, "assistant": assistant,
            "lines": [{"sku": "SKU-1001", "qty": 1, "price": paid, "category": "护肤"}], **extra}


def test_the_same_receipt_at_two_stores_lands_twice_from_the_stream_with_its_points_and_attribution(
        start_cloud) -> None:
    client, runtime = start_cloud(order_channel_secrets={"pos": SECRET})
    db = runtime.db
    body = json.dumps({"orders": [_sale("sh-001", "C-1", 100.0, "A001"), _sale("sh-002", "C-2", 300.0, "B001")]}).encode()
    landed = client.post("/v1/orders", content=body, headers=_signed(body))
    assert landed.status_code == 200, landed.text
    assert (landed.json()["orders"], landed.json()["quarantined"]) == (2, {})
    again = json.dumps({"orders": [_sale("sh-002", "C-2", 300.0, "B001")]}).encode()
    assert client.post("/v1/orders", content=again, headers=_signed(again)).json()["quarantined"] == {
        "duplicate_order": 1}
    # each store's order has its own buyer, its till's assistant and its points
    first, second = order_id("pos", "R-1", "sh-001"), order_id("pos", "R-1", "sh-002")
    assert [(a["store"], a["assistant"], a["reason"]) for a in map(lambda o: till.attribution(db, o), (first, second))
            if a] == [("sh-001", "A001", "till_assistant"), ("sh-002", "B001", "till_assistant")]
    earned = dict(db.rows("SELECT source_id, points FROM loyalty_movements WHERE source = 'order'"))
    assert earned == {first: 100, second: 300}
    # sh-002's refund by 原单号: its own store's sale, that buyer's points and that assistant
    refund = json.dumps({"orders": [{**_sale("sh-002", "C-2", 150.0, "B001"), "order_no": "F-1", "type": "refund",
                                     "refund_of": "R-1"}]}).encode()
    assert client.post("/v1/orders", content=refund, headers=_signed(refund)).json()["refunds"] == 1
    back = order_id("pos", "F-1", "sh-002", refund=True)
    assert db.scalar("SELECT refund_of FROM orders WHERE id = ?", (back,)) == second
    assert till.attribution(db, back)["assistant"] == "B001"
    clawback = db.one("SELECT ref, points, person FROM loyalty_movements WHERE source = 'refund'")
    assert clawback is not None and (clawback["ref"], clawback["points"]) == (second, -150)
    assert clawback["person"] == db.scalar("SELECT COALESCE(m.merged_into, m.id) FROM orders o JOIN members m "
                                           "ON m.id = o.member_id WHERE o.id = ?", (second,))


def test_two_tills_publish_the_same_receipt_number_on_evt_order(db: Database) -> None:
    processor = EventProcessor(db, matcher=None, cards=None, require_known_devices=False)  # type: ignore[arg-type]
    for store, card in (("sh-001", "C-1"), ("sh-002", "C-2")):
        sale = TillOrder(brand="demo", store=store, device="till-1", order_no="P-1", ts=datetime.now(UTC), paid=99.0,
                         lines=(TillLine(sku="SKU-1001", qty=1, price=99.0),), member=TillMember(card=card))
        processor.process(topics.till_order("demo", store, "till-1"), encode(sale))
        processor.process(topics.till_order("demo", store, "till-1"), encode(sale))  # a re-send after a lost PUBACK
    assert processor.counters.snapshot().till_orders == 2
    assert db.rows("SELECT id FROM orders ORDER BY id") == [("pos:sh-001:P-1",), ("pos:sh-002:P-1",)]
    assert {till.attribution(db, o)["member_via"] for o in ("pos:sh-001:P-1", "pos:sh-002:P-1")} == {"card"}


def test_migration_80_rewrites_the_pos_ids_stored_everywhere(db_location: str) -> None:
    """A database at version 79 holding POS orders in the old form (``pos:<receipt>``): a sale, its
    refund by 原单号, a refund matched to a sale at another store, their lines, attribution, points and
    coupons, and a Tmall order. After 80 every one names its store, the links still hold, and the
    points catch-up finds nothing new to post (an order left in the old form would earn twice)."""
    before = [Schema(s.feature, tuple(m for m in s.migrations if m.version < 80)) for s in SCHEMAS]
    db = connect(db_location)
    try:
        migrate(db, before)
        ts = int((datetime.now(UTC) - timedelta(days=3)).timestamp())
        with db.transaction() as tx:
            tx.execute("INSERT INTO members (id, source, source_key, created) VALUES ('m1', 'pos', 'member_card:C1', ?)",
                       (datetime.now(UTC).isoformat(),))
            tx.executemany("INSERT INTO orders (id, channel, order_no, store, member_id, ts, paid, status, refund_of) "
                           "VALUES (?, ?, ?, ?, 'm1', ?, ?, ?, ?)", [
                               ("pos:R1", "pos", "R1", "s1", ts, 300.0, "paid", None),
                               ("pos:F1:refund", "pos", "F1", "s1", ts + 60, -100.0, "refund", "pos:R1"),
                               ("pos:F2:refund", "pos", "F2", "s2", ts + 120, -50.0, "refund", "pos:R1"),
                               ("tmall:T1", "tmall", "T1", None, ts, 80.0, "paid", None)])
            tx.executemany("INSERT INTO order_lines (order_id, member_id, channel, store, ts, sku, category, qty, price, "
                           "amount) VALUES (?, 'm1', ?, ?, ?, 'SKU-A', '护肤', ?, 100, ?)", [
                               ("pos:R1", "pos", "s1", ts, 3, 300.0), ("pos:F1:refund", "pos", "s1", ts + 60, -1, -100.0),
                               ("pos:F2:refund", "pos", "s2", ts + 120, -1, -50.0), ("tmall:T1", "tmall", None, ts, 1, 80.0)])
            tx.executemany("INSERT INTO order_attribution (order_id, store, member_id, reason, paid, ts) "
                           "VALUES (?, ?, 'm1', ?, ?, ?)", [("pos:R1", "s1", "member_only", 300.0, ts),
                                                            ("pos:F1:refund", "s1", "unattributed", -100.0, ts + 60)])
        earned = ledger.post_order(db, "pos:R1")
        clawed = ledger.post_order(db, "pos:F1:refund")
        assert earned is not None and clawed is not None and clawed.points == -100
        db.execute("INSERT INTO coupon_templates (id, pool, name, kind, value, min_spend, valid_days, stores, channels, "
                   "created, created_by) VALUES ('t1', 'main', '满减', 'amount_off', 10, 0, 30, '[]', '[]', 'x', 'x')")
        db.execute("INSERT INTO coupons (code, template_id, person, issued_by, issued_for_order, issued, expires, status, "
                   "redeemed_order) VALUES ('CP1', 't1', 'm1', 'api:x', 'pos:R1', 'x', 'y', 'redeemed', 'tmall:T1')")

        assert migrate(db, SCHEMAS)[0] == 80  # then any later ones
        assert db.rows("SELECT id, refund_of FROM orders ORDER BY id") == [
            ("pos:s1:F1:refund", "pos:s1:R1"), ("pos:s1:R1", None),
            ("pos:s2:F2:refund", "pos:s1:R1"),  # matched to the s1 sale: the link follows the sale, not its own store
            ("tmall:T1", None)]
        assert sorted(r[0] for r in db.rows("SELECT order_id FROM order_lines")) == [
            "pos:s1:F1:refund", "pos:s1:R1", "pos:s2:F2:refund", "tmall:T1"]
        assert sorted(r[0] for r in db.rows("SELECT order_id FROM order_attribution")) == ["pos:s1:F1:refund",
                                                                                           "pos:s1:R1"]
        moves = {r["source"]: r for r in db.query("SELECT source, source_id, ref, detail FROM loyalty_movements")}
        assert (moves["order"]["source_id"], json.loads(moves["order"]["detail"])["order"]) == ("pos:s1:R1",
                                                                                              "pos:s1:R1")
        assert (moves["refund"]["source_id"], moves["refund"]["ref"]) == ("pos:s1:F1:refund", "pos:s1:R1")
        assert {k: json.loads(moves["refund"]["detail"])[k] for k in ("order", "refund")} == {
            "order": "pos:s1:R1", "refund": "pos:s1:F1:refund"}
        assert db.one("SELECT issued_for_order, redeemed_order FROM coupons") == {"issued_for_order": "pos:s1:R1",
                                                                                 "redeemed_order": "tmall:T1"}
        assert "order_id_renames" not in tables(db)
        # the ledger knows the migrated orders: only F2 (never posted) is new; its clawback refers to the s1 sale
        assert ledger.post_new_orders(db) == 2  # the Tmall order and F2
        assert db.scalar("SELECT ref FROM loyalty_movements WHERE source_id = 'pos:s2:F2:refund'") == "pos:s1:R1"
    finally:
        db.close()
