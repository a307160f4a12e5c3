"""The synthetic brand lands through the brand's entry points (issue 16, item 6), on both engines:
its files in the real layouts are left to look at and imported like a brand's upload (quirks
handled, quarantine and data-quality report, OneID and stats resolved as they land), and the shop
floor's sales are till orders landed by the order stream and attributed to visit and assistant."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud.cdp.imports.canonical import order_id
from cloud.db import Database
from cloud.synthetic.brand import generate

END = datetime(2026, 11, 22, 4, tzinfo=UTC)


@pytest.fixture
def generated(db: Database, tmp_path: Path) -> tuple[Database, Path, dict]:
    out = tmp_path / "brand"
    summary = generate(db, persons=150, stores=2, seed=5, end=END, floor_days=3, arrivals_per_day=80, out=out)
    return db, out, summary


def _rows(path: Path, encoding: str = "utf-8-sig") -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode(encoding))))


def test_the_files_are_the_channels_layouts_and_land_through_the_importers(generated) -> None:
    db, out, summary = generated
    names = {p.name for p in out.iterdir()}
    assert {"stores.csv", "products.csv", "staff.csv", "crm_members.csv", "订单报表.csv", "宝贝报表.csv", "jd_orders.csv",
            "meal_order_info.csv", "meal_order_detail.csv", "wechat_orders.jsonl", "stock.csv", "targets.csv",
            "new_members.csv", "till_orders.jsonl"} <= names
    with pytest.raises(UnicodeDecodeError):
        (out / "jd_orders.csv").read_bytes().decode("utf-8")  # GBK, as JD writes it
    assert (out / "订单报表.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # Taobao's BOM
    # every file is an import of its own, read in its layout, with its data-quality report
    imports = {r["source_name"]: r for r in db.query("SELECT channel, source_name, rows_read, orders, quarantined, "
                                                      "report FROM imports")}
    assert imports["stores.csv"]["channel"] == "master:stores" and imports["stock.csv"]["channel"] == "master:stock"
    tmall = json.loads(imports["订单报表.csv"]["report"])
    assert [s["layout"] for s in tmall["file"]["sheets"]] == ["taobao_orders", "taobao_items"]
    # the unpaid orders of the export are quarantined, the masked phones flagged, nothing else lost
    heads = _rows(out / "订单报表.csv")
    unpaid = sum(r["订单状态"] == "等待买家付款" for r in heads)
    assert unpaid and tmall["quarantined"] == {"not_paid": unpaid} and tmall["orders"] == len(heads) - unpaid
    assert tmall["file"]["masked_phones"] == sum("*" in r["联系手机"] for r in heads if r["订单状态"] == "交易成功") > 0
    # the lines' categories come from the catalogue (the 宝贝报表 has none)
    assert not db.scalar("SELECT COUNT(*) FROM order_lines WHERE channel IN ('tmall', 'jd') AND category = '未分类'")
    assert summary["orders"] + summary["floor_orders"] == db.scalar("SELECT COUNT(*) FROM orders")


def test_a_person_is_resolved_across_channels_with_stats_as_the_files_land(generated) -> None:
    db, out, _ = generated
    buyer = next(r for r in _rows(out / "订单报表.csv") if "*" not in r["联系手机"] and r["联系手机"] != "00000000000")
    crm = next(r for r in _rows(out / "crm_members.csv") if r["手机号"].lstrip("'") == buyer["联系手机"])
    person = {db.scalar("SELECT COALESCE(merged_into, id) FROM members WHERE source = ? AND source_key = ?", key)
              for key in (("tmall", f"tmall_buyer:{buyer['买家会员名']}"), ("members", f"member_card:{crm['会员卡号']}"))}
    assert len(person) == 1 and None not in person
    # the person's stats (RFM, lifecycle, favourite channel) count the orders of all their records
    stats = db.one("SELECT orders, lifecycle FROM person_stats WHERE member_id = ?", (person.pop(),))
    assert stats is not None and stats["orders"] >= 1 and stats["lifecycle"]


def test_the_floor_sales_are_till_orders_attributed_to_the_visit_and_assistant(generated) -> None:
    db, out, summary = generated
    posted = [json.loads(line) for line in (out / "till_orders.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(posted) == summary["floor_orders"] > 0
    assert db.scalar("SELECT COUNT(*) FROM imports WHERE source_name = 'stream:pos'") > 0
    landed = dict(db.rows("SELECT reason, COUNT(*) FROM order_attribution GROUP BY reason"))
    assert sum(landed.values()) == len(posted) and landed == summary["till"]["attributed"]
    assert landed["receipt_confirmed"] > 0 and landed["served_in_visit"] > 0
    # a member who showed their card at the till bought in a visit recognised at the door
    order = next(o for o in posted if "member" in o)
    row = db.one("SELECT a.visit_id, a.assistant, v.member_id FROM order_attribution a JOIN visits v ON v.id = a.visit_id "
                 "WHERE a.order_id = ?", (order_id("pos", order["order_no"], order["store"]),))
    person = db.scalar("SELECT COALESCE(merged_into, id) FROM members WHERE source_key = ?",
                       (f"member_card:{order['member']['card']}",))
    assert row is not None and row["member_id"] == person and row["assistant"]
    assert order["member"]["card"].startswith("MC")
    # the counter's sign-ups were imported as a member list, stock and targets as master data
    assert db.scalar("SELECT COUNT(*) FROM members WHERE source_key LIKE 'member_card:MChf%'") == summary["new_members"]
    assert db.scalar("SELECT COUNT(*) FROM stock_days") == summary["stock_rows"]
    assert db.scalar("SELECT COUNT(*) FROM store_day_targets") > 0
