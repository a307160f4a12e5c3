"""Channel exports through adapters, cleaning, quarantine and OneID, on both engines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cloud.cdp import members
from cloud.cdp.imports.cleaning import QUARANTINE_REASONS
from cloud.cdp.imports.importer import import_file, import_text
from cloud.cli import app as cloud_app
from cloud.db import Database

TMALL_HEADER = "订单编号,买家会员名,收货人手机号,付款时间,商品编码,类目,购买数量,商品单价,实付金额,订单状态,币种\n"
TMALL = TMALL_HEADER + (
    "T1,nick_a,+86 138-0013-8000,2025-03-01 20:15:00,SKU1,护肤,1,199,298,交易成功,CNY\n"
    "T1,nick_a,+86 138-0013-8000,2025-03-01 20:15:00,SKU2,彩妆,1,99,298,交易成功,CNY\n"
    "T2,nick_b,139****5678,2025-03-02 10:00:00,SKU3,香水,2,300,600,交易成功,\n"
)
POS_HEADER = "receipt_no,store,member_card,phone,ts,sku,category,qty,unit_price,amount,currency,type\n"
WECHAT = [
    {"order_no": "W1", "unionid": "u1", "openid": "o1", "phone": "13800138000", "paid_at": "2025-03-05T12:00:00+08:00",
     "total_fee": 19900, "currency": "CNY", "status": "SUCCESS",
     "items": [{"sku": "SKU1", "category": "护肤", "qty": 1, "price_fen": 19900}]},
]


def _import(db: Database, channel: str, text: str):
    return import_text(db, channel, text, source=f"test.{channel}")


def test_tmall_export_imports_orders_normalises_phones_and_blocks_masked_ones(db: Database) -> None:
    report = _import(db, "tmall", TMALL)

    assert (report.rows, report.orders, report.lines, report.buyers_new) == (3, 2, 3, 2)
    assert report.quarantined == {} and report.blocked_identifiers == {"masked": 1}
    phones = dict(db.rows("SELECT value, blocked FROM identifiers WHERE kind = 'phone'"))
    assert phones == {"13800138000": None, "139****5678": "masked"}
    t1 = db.one("SELECT * FROM orders WHERE id = 'tmall:T1'")
    assert t1["paid"] == 298 and t1["ts"] == 1740831300  # 20:15 in Shanghai is 12:15 UTC


def test_channels_meet_in_one_person_by_phone(db: Database) -> None:
    _import(db, "tmall", TMALL)
    _import(db, "wechat", json.dumps(WECHAT))
    pos = POS_HEADER + "R1,sh-001,MC9,13800138000,2025-03-06 15:00:00,SKU1,护肤,1,199,199,CNY,sale\n"
    report = _import(db, "pos", pos)

    assert report.orders == 1 and report.persons_changed >= 1
    person = members.person_id(db, db.scalar("SELECT id FROM members WHERE source = 'pos'"))
    sources = {r[0] for r in db.rows("SELECT source FROM members WHERE id = ? OR merged_into = ?",
                                           (person, person))}
    assert sources == {"tmall", "wechat", "pos"}
    stats = db.one("SELECT * FROM person_stats WHERE member_id = ?", (person,))
    assert stats["orders"] == 3 and stats["ltv"] == 298 + 199 + 199
    assert stats["fav_store"] == "sh-001"


BAD_ROWS = {
    "malformed_row": ("wechat", "{not json\n"),
    "missing_field": ("pos", POS_HEADER + "R1,sh-001,MC1,,2025-03-06 15:00:00,,护肤,1,10,10,CNY,sale\n"),
    "bad_time": ("pos", POS_HEADER + "R1,sh-001,MC1,,yesterday,S1,护肤,1,10,10,CNY,sale\n"),
    "bad_amount": ("pos", POS_HEADER + "R1,sh-001,MC1,,2025-03-06 15:00:00,S1,护肤,1,ten,10,CNY,sale\n"),
    "negative_amount": ("pos", POS_HEADER + "R1,sh-001,MC1,,2025-03-06 15:00:00,S1,护肤,1,10,-10,CNY,sale\n"),
    "absurd_amount": ("pos", POS_HEADER + "R1,sh-001,MC1,,2025-03-06 15:00:00,S1,护肤,1,10,99999999,CNY,sale\n"),
    "unsupported_currency": ("pos", POS_HEADER + "R1,sh-001,MC1,,2025-03-06 15:00:00,S1,护肤,1,10,10,USD,sale\n"),
    "duplicate_order": ("pos", POS_HEADER + "R1,sh-001,MC1,,2025-03-06 15:00:00,S1,护肤,1,10,10,CNY,sale\n"
                        "R2,sh-001,MC1,,2025-03-06 15:00:00,S1,护肤,1,10,10,CNY,sale\n"
                        "R1,sh-001,MC1,,2025-03-06 15:00:00,S1,护肤,1,10,10,CNY,sale\n"),
    "refund_without_order": ("pos", POS_HEADER + "R9,sh-001,MC1,,2025-03-06 15:00:00,S1,护肤,1,10,10,CNY,refund\n"),
    "no_lines": ("wechat", json.dumps([{**WECHAT[0], "items": []}])),
    "invalid_store": ("pos", POS_HEADER + "R1,sh/001,MC1,,2025-03-06 15:00:00,S1,护肤,1,10,10,CNY,sale\n"),
    "control_characters": ("pos", POS_HEADER + "R1,sh-001,MC1,,2025-03-06 15:00:00,S1,护\x01肤,1,10,10,CNY,sale\n"),
    # real layouts (cloud/cdp/imports/layouts.py): an order never paid; a 宝贝报表 line whose order the 订单报表 lacks
    "not_paid": ("tmall", "订单编号,买家会员名,买家实际支付金额,订单创建时间,订单付款时间 ,订单状态\n"
                 "T9,nick_a,0,2025-03-01 10:00:00,,等待买家付款\n"),
    "unjoined_line": ("tmall", "订单编号,买家会员名,买家实际支付金额,订单付款时间\nT1,nick_a,99,2025-03-01 10:00:00\n",
                      "订单编号,标题,价格,购买数量,商家编码\nT1,面霜,99,1,S1\nT2,精华,199,1,S2\n"),
}


def test_every_quarantine_reason_has_a_case() -> None:
    assert set(BAD_ROWS) == set(QUARANTINE_REASONS)


@pytest.mark.parametrize("reason", sorted(BAD_ROWS))
def test_bad_rows_are_quarantined_with_their_reason_and_nothing_is_lost(db: Database, reason: str) -> None:
    channel, text, *items = BAD_ROWS[reason]
    report = (import_file(db, channel, text.encode(), companion=items[0].encode(), source="test") if items
              else _import(db, channel, text))

    assert report.quarantined.get(reason) == 1, report
    assert db.scalar("SELECT COUNT(*) FROM quarantine") == sum(report.quarantined.values())
    row = db.one("SELECT * FROM quarantine WHERE reason = ?", (reason,))
    assert row["detail"] and json.loads(row["raw"])


def test_refunds_reduce_lifetime_value_and_reimport_is_quarantined_as_duplicates(db: Database) -> None:
    sale = POS_HEADER + "R1,sh-001,MC1,13800000011,2025-03-06 15:00:00,S1,护肤,2,100,200,CNY,sale\n"
    refund = POS_HEADER + "R1,sh-001,MC1,13800000011,2025-03-08 15:00:00,S1,护肤,1,100,100,CNY,refund\n"
    _import(db, "pos", sale)
    assert _import(db, "pos", refund).refunds == 1

    again = _import(db, "pos", sale)
    assert again.orders == 0 and again.quarantined == {"duplicate_order": 1}
    person = members.person_id(db, db.scalar("SELECT id FROM members WHERE source = 'pos'"))
    assert db.scalar("SELECT ltv FROM person_stats WHERE member_id = ?", (person,)) == 100


def test_jd_and_member_list_adapters(db: Database) -> None:
    jd = ("订单号,用户PIN,手机号,下单时间,商品ID,品类,数量,单价,应付金额,订单状态\n"
          "J1,pin_1,13800000012,2025-02-01 09:00:00,S1,面膜,3,50,150,完成\n")
    member_file = "member_card,phone,name,gender,store,face_consent\nMC12,13800000012,李娜,女,sh-002,是\n"
    assert _import(db, "jd", jd).orders == 1
    report = _import(db, "members", member_file)

    assert report.buyers_new == 1 and report.persons_changed >= 1
    crm = db.scalar("SELECT id FROM members WHERE source = 'members'")
    member = members.member(db, crm)
    assert (member.name, member.gender) == ("李娜", "female")  # the person's name, whichever record has it
    # one person; the CRM record's consent stays that record's: the merge (by phone) does not turn the
    # person's on, since the JD buyer, the earlier record, never gave it
    assert member.face_consent is False and members.person_id(db, crm) == members.person_id(db,
        db.scalar("SELECT id FROM members WHERE source = 'jd'"))


def test_cli_import_prints_the_report(db_location: str, tmp_path: Path) -> None:
    root = typer.Typer()
    root.add_typer(cloud_app, name="cloud")

    @root.callback()
    def _root() -> None: ...

    export = tmp_path / "tmall.csv"
    export.write_text(TMALL, encoding="utf-8")
    result = CliRunner().invoke(root, ["cloud", "import", str(export), "--channel", "tmall", "--db", db_location])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["orders"] == 2 and report["blocked_identifiers"] == {"masked": 1}

    bad = CliRunner().invoke(root, ["cloud", "import", str(export), "--channel", "taobao", "--db", db_location])
    assert bad.exit_code == 2 and "unknown channel" in bad.output
