"""Master data files (docs/examples/) into the features' tables, with quarantine, on both engines."""

from __future__ import annotations

import io
import json
from datetime import UTC
from pathlib import Path

import openpyxl
import pytest
import typer
from typer.testing import CliRunner

from cloud.db import Database
from cloud.masterdata.importer import KINDS, MASTER_REASONS, import_master

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
ORDER = ("stores", "products", "staff", "shifts", "targets", "stock", "movements", "batches")


def _example(kind: str) -> bytes:
    return (EXAMPLES / f"{kind}.csv").read_bytes()


def _all(db: Database) -> dict:
    return {kind: import_master(db, kind, _example(kind), source=f"{kind}.csv") for kind in ORDER}


def test_every_kind_has_an_example_file() -> None:
    assert set(ORDER) == set(KINDS) and all((EXAMPLES / f"{k}.csv").is_file() for k in KINDS)


def test_the_example_files_import_cleanly_into_the_features_tables(db: Database) -> None:
    reports = _all(db)

    for kind, report in reports.items():
        assert report.quarantined == {} and report.written == report.rows > 0, (kind, report)
        assert report.file["unknown_columns"] == [] and report.file["missing_columns"] == [], kind
    store = db.one("SELECT * FROM stores WHERE id = 'sh-001'")
    assert (store["city_tier"], store["format"], store["opening_hours"], store["area_m2"], store["cameras"]) == (
        "一线", "旗舰店", "10:00-22:00", 180, 3)
    product = db.one("SELECT * FROM products WHERE sku = 'SKU-1001'")
    assert (product["category"], product["category_path"], product["price"], product["member_price"],
            product["shelf_life_days"], product["barcode"]) == ("焕肤", "护肤>精华>焕肤", 399, 359, 1095, "6901234567892")
    assert db.rows("SELECT id, role, active FROM assistants ORDER BY id") == [
        ("A001", "店长", 1), ("A002", "导购", 1), ("A003", "导购", 0)]
    assert db.rows("SELECT assistant, start_time, end_time FROM shifts ORDER BY assistant") == [
        ("A001", "10:00", "18:00"), ("A002", "14:00", "22:00")]
    # day targets, and their month's sum where health and the live screen read a target
    assert db.scalar("SELECT conversion FROM store_day_targets WHERE store = 'sh-001' AND day = '2025-03-01'") == 0.18
    assert db.scalar("SELECT sales_target FROM store_targets WHERE store = 'sh-001' AND month = '2025-03'") == 87000
    assert db.scalar("SELECT sold FROM stock_days WHERE store = 'sh-001' AND sku = 'SKU-2001'") == 51
    assert db.rows("SELECT kind, qty FROM stock_movements ORDER BY ref") == [
        ("receipt", 24), ("sale", 2), ("waste", 3), ("transfer_out", 1)]
    # the earliest expiry of the batches in stock is what the markdown runner prices from
    perishable = db.one("SELECT * FROM perishables WHERE store = 'sh-001' AND sku = 'SKU-2001'")
    assert (perishable["expires_on"], perishable["floor_price"]) == ("2025-03-02", 6)


def test_reimporting_updates_in_place(db: Database) -> None:
    _all(db)
    again = _all(db)
    assert again["products"].updated == 3 and again["products"].created == 0
    assert again["stores"].updated == 2
    assert again["movements"].created == 0 and again["movements"].flagged == {"movements_already_imported": 4}
    assert db.scalar("SELECT COUNT(*) FROM stock_movements") == 4
    assert db.scalar("SELECT COUNT(*) FROM store_day_targets") == 3


BAD = {
    "missing_field": ("products", "sku,name,list_price\nS9,,10\n"),
    "bad_value": ("stores", "store,name,brand,timezone\nsh-009,店,b,Mars/Olympus\n"),
    "unknown_store": ("staff", "assistant_id,name,store\nA9,张三,nowhere\n"),
    "unknown_sku": ("stock", "store,day,sku,opening,sold\nsh-001,2025-03-01,NOPE,1,1\n"),
    "unknown_assistant": ("shifts", "assistant_id,day,start,end\nA404,2025-03-01,10:00,18:00\n"),
}


def test_every_master_reason_has_a_case() -> None:
    assert set(BAD) == set(MASTER_REASONS)


@pytest.mark.parametrize("reason", sorted(BAD))
def test_bad_master_rows_are_quarantined_with_their_reason(db: Database, reason: str) -> None:
    import_master(db, "stores", _example("stores"), source="stores.csv")
    kind, text = BAD[reason]
    report = import_master(db, kind, text.encode(), source=f"bad-{kind}.csv")

    assert report.quarantined == {reason: 1} and report.written == 0
    row = db.one("SELECT * FROM quarantine WHERE import_id = ?", (report.import_id,))
    assert row["reason"] == reason and row["detail"] and json.loads(row["raw"])
    assert db.scalar("SELECT channel FROM imports WHERE id = ?", (report.import_id,)) == f"master:{kind}"


def test_values_are_checked(db: Database) -> None:
    import_master(db, "stores", _example("stores"), source="stores.csv")
    import_master(db, "products", _example("products"), source="products.csv")
    text = ("sku,name,list_price,member_price,shelf_life\n"
            "S1,甲,10,12,\n"          # member price above list price
            "S2,乙,ten,,\n"           # not a number
            "S3,丙,10,,12个月\n"       # 360 days
            "S4,丁,-1,,\n")           # negative
    report = import_master(db, "products", text.encode(), source="p.csv")
    assert report.quarantined == {"bad_value": 3} and report.created == 1
    assert db.scalar("SELECT shelf_life_days FROM products WHERE sku = 'S3'") == 360
    stock = ("store,day,sku,opening,received,sold,wasted\n"
             "sh-001,2025/3/2,SKU-2001,5,0,9,0\n"   # sells more than it has
             "sh-001,45718,SKU-2001,5,0,1,0\n")     # an Excel serial day
    report = import_master(db, "stock", stock.encode(), source="s.csv")
    assert report.quarantined == {"bad_value": 1}
    assert db.scalar("SELECT day FROM stock_days WHERE sku = 'SKU-2001' AND opening = 5") == "2025-03-02"


def test_a_workbook_in_chinese_with_a_gbk_twin(db: Database) -> None:
    import_master(db, "stores", _example("stores"), source="stores.csv")
    book = openpyxl.Workbook()
    book.active.append(["商品编码 ", "商品名称", "品牌", "一级类目", "二级类目", "零售价", "会员价", "保质期", "库存"])
    book.active.append(["SKU-3001", "酸奶", "lumiere", "食品", "乳品", 12.5, 10, "21天", 5])
    buffer = io.BytesIO()
    book.save(buffer)
    report = import_master(db, "products", buffer.getvalue(), source="catalogue.xlsx")
    assert report.created == 1 and report.file["unknown_columns"] == ["库存"]
    row = db.one("SELECT * FROM products WHERE sku = 'SKU-3001'")
    assert (row["category_path"], row["shelf_life_days"], row["member_price"]) == ("食品>乳品", 21, 10)

    gbk = "门店编码,日期,销售目标\nsh-001,2025-04-01,30000\n".encode("gbk")
    assert import_master(db, "targets", gbk, source="targets.csv").file["encoding"] == "gbk"


def test_api_and_cli(start_cloud, tmp_path: Path) -> None:
    from cloud.api import auth
    from cloud.cli import app as cloud_app

    client, runtime = start_cloud()
    client.headers["X-API-Key"] = auth.create_key(runtime.db, name="hq", role="hq_admin").key
    response = client.post("/v1/master/stores", files={"file": ("stores.csv", _example("stores"))})
    assert response.status_code == 201, response.text
    assert response.json()["created"] == 2
    bad = client.post("/v1/master/staff", files={"file": ("staff.csv", b"assistant_id,name,store\nA9,x,nowhere\n")})
    import_id = bad.json()["import_id"]
    quarantine = client.get(f"/v1/imports/{import_id}/quarantine", params={"reason": "unknown_store"}).json()
    assert quarantine["total"] == 1 and quarantine["items"][0]["reason"] == "unknown_store"
    assert client.post("/v1/master/nonsense", files={"file": ("x.csv", b"a\n")}).status_code == 422

    root = typer.Typer()
    root.add_typer(cloud_app, name="cloud")

    @root.callback()
    def _root() -> None: ...

    result = CliRunner().invoke(root, ["cloud", "import", str(EXAMPLES / "products.csv"), "--kind", "products",
                                       "--db", runtime.settings.db])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["created"] == 3
    wrong = CliRunner().invoke(root, ["cloud", "import", str(EXAMPLES / "products.csv"), "--kind", "recipes",
                                      "--db", runtime.settings.db])
    assert wrong.exit_code == 2 and "unknown kind" in wrong.output


def test_the_features_read_what_was_imported(db: Database) -> None:
    """The live screen's targets and member deals, the markdown plan's stock and expiry, the league's names."""
    from datetime import date, datetime

    from cloud.health.live import brand_live
    from cloud.pricing.markdown_runner import plan_store

    _all(db)
    live = brand_live(db, date(2025, 3, 1))
    by_store = {s["store"]: s for s in live["stores"]}
    # the day's own target (store_day_targets), not the month's even share
    assert by_store["sh-001"]["target"] == 42000 and by_store["hz-002"]["target"] == 21000
    assert brand_live(db, date(2025, 3, 2))["stores"][0]["target"] == 45000
    assert {d["sku"]: d["member_price"] for d in live["member_deals"]} == {"SKU-1001": 359, "SKU-2001": 15}

    plan = {item.sku: item for item in plan_store(db, "sh-001", datetime(2025, 3, 1, 10, tzinfo=UTC),
                                                  max_changes_per_day=4, elasticity=2.5)}
    juice = plan["SKU-2001"]
    assert juice.status != "no_stock_data" and juice.stock == 40 + 24 - 51 - 3 and juice.list_price == 18
    assert juice.expires_on == date(2025, 3, 2) and juice.floor_price == 6


def test_sign_ins_and_opening_hours_read_the_brands_own_files(db: Database) -> None:
    """The staff and stores files as a brand sends them (docs/examples): a screen configured with the staff
    file's names puts the assistant's id on the floor, a name of someone who left (赵敏, 在职 离职) names
    nobody, and a store closing at 21:30 is closed at 21:40, not at the hour (issue 17)."""
    from datetime import datetime, timedelta

    from cloud.arrivals import staff
    from cloud.clock import zone
    from cloud.health.opening_hours import OpeningHours
    from protocol.messages import StaffSign, new_id

    _all(db)
    at = datetime(2025, 3, 1, 10, 5, tzinfo=zone("Asia/Shanghai"))
    for store, name in (("sh-001", "王芳"), ("hz-002", "赵敏")):
        assert staff.record(db, StaffSign(sign_id=new_id(), brand="lumiere", store=store, screen="main",
                                           assistant=name, action="sign_in", ts=at)) == "stored"
    later = at + timedelta(minutes=10)
    assert [(f.assistant, f.name) for f in staff.on_floor(db, "sh-001", later) or []] == [("A001", "王芳")]
    assert [(f.assistant, f.name) for f in staff.on_floor(db, "hz-002", later) or []] == [("赵敏", None)]
    hours = OpeningHours.parse(db.scalar("SELECT opening_hours FROM stores WHERE id = 'hz-002'"))
    assert hours.is_open(at.replace(hour=21, minute=20)) and not hours.is_open(at.replace(hour=21, minute=40))
