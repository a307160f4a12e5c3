"""Survivorship rules and lineage, the conflict queue's assign decision, member facts and refund matching."""

from __future__ import annotations

import json

import pytest

from cloud.cdp import conflicts, oneid, survivorship
from cloud.cdp.imports.importer import import_text
from cloud.db import Database


def _row(record: str, source: str, seen: str, **values: object) -> dict:
    return {"id": record, "source": source, "created": seen, "seen": seen, "tags": json.dumps(values.pop("tags", [])),
            **{k: None for k in ("name", "gender", "birthday", "tier", "points", "home_store", "address")}, **values}


ROWS = [
    _row("crm", "members", "2026-01-01", name="孙丽", tier="金卡会员", points=100, tags=["护肤达人"], address="北京"),
    _row("tb", "tmall", "2026-06-01", name="丽丽", tier="普通会员", address="上海"),
    _row("wx", "wechat", "2026-08-01", name="丽丽", points=300, tags=["VIP"]),
]


def test_each_rule_picks_its_record_and_says_which() -> None:
    got = survivorship.survive(ROWS, {"tb": ["13900000002"], "wx": ["13900000003"]})
    assert (got["name"].value, got["name"].record, got["name"].rule) == ("孙丽", "crm", "source_priority")
    assert (got["tier"].value, got["tier"].record) == ("金卡会员", "crm")  # Tmall's 普通会员 is no fact
    assert (got["points"].value, got["points"].record, got["points"].rule) == (300, "wx", "most_recent")
    assert (got["address"].value, got["address"].record) == ("上海", "tb")  # most recent that has one
    assert got["tags"].value == ["护肤达人", "VIP"] and got["tags"].records == ("crm", "wx")
    assert (got["phone"].value, got["phone"].record) == ("13900000003", "wx")  # WeChat ranks above Tmall

    cfg = survivorship.Config(rules={**survivorship.DEFAULT_RULES, "name": "most_frequent", "address": "first_non_empty"})
    other = survivorship.survive(ROWS, {}, cfg)
    assert (other["name"].value, other["name"].candidates) == ("丽丽", 3)
    assert (other["address"].value, other["address"].record) == ("北京", "crm")
    tmall_first = survivorship.Config(priority=("tmall", "members"))
    assert survivorship.survive(ROWS, {}, tmall_first)["name"].record == "tb"

    alone = survivorship.survive([_row("jd", "jd", "2026-01-01", tier="普通会员")], {})
    assert (alone["tier"].value, alone["tier"].rule, alone["tier"].record) == ("普通会员", "default", None)
    assert alone["name"].value is None and alone["tags"].value == []


def test_brand_rules_through_the_api(start_cloud) -> None:
    client, _ = start_cloud()
    assert client.get("/v1/identity/survivorship").json()["rules"]["tags"] == "union"
    for bad in ({"source_priority": ["tmall", "ebay"]}, {"rules": {"shoe_size": "most_recent"}},
                {"rules": {"name": "union"}}, {"rules": {"name": "loudest"}}):
        refused = client.put("/v1/identity/survivorship", json=bad)
        assert refused.status_code == 422 and refused.json()["detail"]["code"] == "invalid_survivorship", bad
    member = client.post("/v1/members", json={"name": "王芳", "phone": "13700000001", "gender": "female",
                                              "consent": {"face": False}}).json()["id"]
    wechat = [{"order_no": "W1", "unionid": "u1", "phone": "13700000001", "nickname": "芳芳",
               "paid_at": "2026-09-01T10:00:00+08:00", "total_fee": 1000,
               "items": [{"sku": "S1", "category": "护肤", "qty": 1, "price_fen": 1000}]}]
    files = {"file": ("w.json", json.dumps(wechat, ensure_ascii=False).encode())}
    assert client.post("/v1/imports?channel=wechat", files=files).status_code == 201
    assert client.get(f"/v1/members/{member}").json()["name"] == "王芳"
    changed = client.put("/v1/identity/survivorship", json={"rules": {"name": "first_non_empty"}})
    assert changed.status_code == 202 and changed.json()["rules"]["name"] == "first_non_empty"
    rewrite = changed.json()["rewrite"]
    assert rewrite["status"] == "running" and rewrite["done"] == 0 and rewrite["total"] >= 1
    assert client.get("/v1/identity/survivorship").json()["rewrite"]["id"] == rewrite["id"]
    assert client.get("/v1/identity/survivorship/rewrites/nope").json()["detail"]["code"] == "unknown_rewrite"
    lineage = client.get(f"/v1/members/{member}/profile?explain=true").json()["lineage"]["name"]
    # the WeChat record was observed 2026-09-01, before the sign-up
    assert (lineage["value"], lineage["source"], lineage["rule"]) == ("芳芳", "wechat", "first_non_empty")
    assert "lineage" not in client.get(f"/v1/members/{member}/profile").json()


def _record(db: Database, record: str, source: str, created: str, ids: list[tuple[str, str]]) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO members (id, source, source_key, created) VALUES (?, ?, ?, ?)",
                   (record, source, record, created))
        oneid.add_identifiers(tx, record, ids)
        oneid.resolve_around(tx, [record], actor="test")


def _persons(db: Database) -> dict[str, str]:
    return dict(db.rows("SELECT id, COALESCE(merged_into, id) FROM members"))


def test_assign_gives_the_value_to_one_side_and_survives_a_rebuild(db: Database) -> None:
    # all three arrive before anyone was linked: the Tmall buyer has no side to stay with, so it waits
    with db.transaction() as tx:
        for record, source, ids in (("crm", "members", [("member_card", "C1"), ("phone", "13900000009")]),
                                    ("pos", "pos", [("member_card", "C2"), ("phone", "13900000009")]),
                                    ("tb", "tmall", [("tmall_buyer", "nick"), ("phone", "13900000009")])):
            tx.execute("INSERT INTO members (id, source, source_key, created) VALUES (?, ?, ?, '2026-01-01')",
                       (record, source, record))
            oneid.add_identifiers(tx, record, ids)
    oneid.rebuild(db, actor="test")
    assert len(set(_persons(db).values())) == 3
    items, total = conflicts.conflicts(db)
    assert total == 1 and items[0]["floating"] == {"tb": None}
    assert {e["source"] for e in items[0]["evidence"].values()} == {"members", "pos", "tmall"}

    with pytest.raises(conflicts.BadDecision):
        conflicts.decide(db, items[0]["id"], "assign", actor="hq", to="tb")  # not a side
    decided, _ = conflicts.decide(db, items[0]["id"], "assign", actor="hq", to="crm", reason="her phone")
    assert decided["status"] == "assigned" and decided["decision"]["unassigned"] == ["pos"]
    persons = _persons(db)
    assert persons["tb"] == persons["crm"] != persons["pos"]
    with pytest.raises(conflicts.AlreadyDecided):
        conflicts.decide(db, items[0]["id"], "merge", actor="hq")

    oneid.add_block(db, "phone", r"^0", "test")  # a blocklist replay keeps the decision's block
    oneid.rebuild(db, actor="test")
    assert _persons(db) == persons and conflicts.conflicts(db)[1] == 0
    assert db.scalar("SELECT blocked FROM identifiers WHERE member_id = 'pos' AND kind = 'phone'") == "conflict:assigned"


def test_keep_apart_holds_and_a_new_card_on_the_phone_reopens(db: Database) -> None:
    _record(db, "crm", "members", "2026-01-01", [("member_card", "C1"), ("phone", "13900000008")])
    _record(db, "tb", "tmall", "2026-02-01", [("tmall_buyer", "nick"), ("phone", "13900000008")])
    _record(db, "pos", "pos", "2026-03-01", [("member_card", "C2"), ("phone", "13900000008")])
    persons = _persons(db)
    assert persons["tb"] == persons["crm"] != persons["pos"]  # the Tmall history stayed with the CRM card
    item = conflicts.conflicts(db)[0][0]
    conflicts.decide(db, item["id"], "keep_apart", actor="hq")
    oneid.rebuild(db, actor="test")
    assert _persons(db) == persons and conflicts.conflicts(db)[1] == 0
    _record(db, "pos3", "pos", "2026-04-01", [("member_card", "C3"), ("phone", "13900000008")])
    reopened = conflicts.conflicts(db)[0]
    assert len(reopened) == 1 and ["pos3"] in reopened[0]["sides"]


POS_HEAD = "receipt_no,store,member_card,phone,ts,sku,category,qty,unit_price,amount,currency,type\n"


def test_a_refund_needs_the_buyers_sale_of_its_products_and_amount_within_the_window(db: Database) -> None:
    text = POS_HEAD + (
        "S1,s1,MC1,13800000001,2026-01-10 10:00:00,SKU-A,护肤,1,100,100,CNY,sale\n"
        "R1,s1,MC1,13800000001,2026-01-12 10:00:00,SKU-A,护肤,1,150,150,CNY,refund\n"   # more than was paid
        "R2,s1,MC2,13800000002,2026-01-12 10:00:00,SKU-A,护肤,1,100,100,CNY,refund\n"   # another buyer
        "R3,s1,MC1,13800000001,2026-06-01 10:00:00,SKU-A,护肤,1,100,100,CNY,refund\n"   # 142 days later
        "R4,s1,MC1,13800000001,2026-01-13 10:00:00,SKU-A,护肤,1,60,60,CNY,refund\n"     # matches
        "R5,s1,MC1,13800000001,2026-01-14 10:00:00,SKU-A,护肤,1,60,60,CNY,refund\n"     # 120 > 100 refunded
    )
    report = import_text(db, "pos", text, source="pos.csv")
    assert report.quarantined == {"refund_without_order": 4} and report.refunds == 1
    assert db.scalar("SELECT refund_of FROM orders WHERE id = 'pos:s1:R4:refund'") == "pos:s1:S1"
    # a later file's refund finds the sale imported before, across imports
    later = import_text(db, "pos", POS_HEAD + "R6,s1,MC1,13800000001,2026-01-20 10:00:00,SKU-A,护肤,1,40,40,CNY,refund\n",
                        source="pos2.csv")
    assert later.refunds == 1 and db.scalar("SELECT refund_of FROM orders WHERE id = 'pos:s1:R6:refund'") == "pos:s1:S1"


def test_member_list_facts_land_on_the_record_and_a_reimport_updates_them(db: Database) -> None:
    head = "member_card,phone,name,gender,tier,tags,birthday,points,signed_up,store,address\n"
    import_text(db, "members", head + "K1,13800000011,李娜,女,金卡会员,VIP|护肤达人,1990/5/20,1200,2024-05-01,s1,上海\n",
                source="crm.csv")
    row = db.query("SELECT tier, tags, birthday, points, signed_up, home_store, address, created FROM members")[0]
    assert row["tier"] == "金卡会员" and json.loads(row["tags"]) == ["VIP", "护肤达人"]
    assert (row["birthday"], row["points"], row["signed_up"], row["home_store"]) == ("1990-05-20", 1200, "2024-05-01", "s1")
    assert row["created"].startswith("2024-04-30T16:00")  # its sign-up day in China Standard Time
    import_text(db, "members", head + "K1,13800000011,,,钻石会员,,,1500,,,\n", source="crm2.csv")
    row = db.query("SELECT name, tier, tags, points FROM members")[0]
    assert (row["name"], row["tier"], json.loads(row["tags"]), row["points"]) == ("李娜", "钻石会员", ["VIP", "护肤达人"], 1500)
    bad = import_text(db, "members", head + "K2,13800000012,王,女,,,not a date,,,,\n", source="crm3.csv")
    assert bad.quarantined == {"malformed_row": 1}


def test_erasure_deletes_the_review_items_naming_the_person(db: Database) -> None:
    from cloud.cdp import erasure

    _record(db, "crm", "members", "2026-01-01", [("member_card", "C1"), ("phone", "13900000007")])
    _record(db, "pos", "pos", "2026-03-01", [("member_card", "C2"), ("phone", "13900000007")])
    assert conflicts.conflicts(db)[1] == 1
    erasure.erase(db, "pos", actor="hq")
    assert db.scalar("SELECT COUNT(*) FROM identity_conflicts") == 0
    assert db.scalar("SELECT places FROM erasures").count('"identity_conflicts_deleted": 1') == 1
