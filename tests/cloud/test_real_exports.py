"""Importers on the real export samples in ../shared/data/exports, one test per quirk its README lists.

The files are read where they lie (never copied into the repository); without the folder every
test here is skipped with that reason. Heavy imports run on one SQLite file per test (the engines
are covered by test_export_layouts.py on hand-made files).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud.cdp.imports import cleaning, tabular
from cloud.cdp.imports.importer import import_file
from cloud.cdp.imports.layouts import Builder
from cloud.db import Database
from cloud.masterdata.importer import import_master
from cloud.runtime import open_cdp

EXPORTS = Path(__file__).resolve().parents[3] / "shared" / "data" / "exports"

pytestmark = pytest.mark.skipif(not EXPORTS.is_dir(), reason=f"no real export samples at {EXPORTS}")


def _bytes(name: str) -> bytes:
    return (EXPORTS / name).read_bytes()


@pytest.fixture
def sqlite(tmp_path: Path) -> Database:
    db = open_cdp(tmp_path / "cloud.db", sample_catalogue=False)
    yield db
    db.close()


def test_trailing_spaces_in_headers_are_stripped_and_unpaid_orders_quarantined(sqlite: Database) -> None:
    """tmall_order_report.csv: `收货地址 `, `订单付款时间 `; UTF-8 without BOM, CRLF; unpaid orders have no payment time."""
    info = tabular.read_tables(_bytes("tmall/tmall_order_report.csv"))
    assert (info.format, info.encoding) == ("csv", "utf-8")
    assert "订单付款时间" in info.tables[0].headers and "收货地址" in info.tables[0].headers

    report = import_file(sqlite, "tmall", _bytes("tmall/tmall_order_report.csv"), source="tmall_order_report.csv")
    sheet = report.file["sheets"][0]
    assert sheet["layout"] == "taobao_orders" and sheet["mapped"]["paid_at"] == "订单付款时间"
    assert report.file["unknown_columns"] == [] and report.file["missing_columns"] == []
    unpaid = report.quarantined["not_paid"]
    assert report.rows == 28010 and unpaid > 0
    assert report.orders - report.refunds == 28010 - unpaid and report.refunds > 0  # 退款金额 > 0: refund events
    assert sqlite.scalar("SELECT COUNT(*) FROM orders WHERE status = 'paid'") == 28010 - unpaid
    # 买家实际支付金额 is net of 退款金额 in this export: sale (总金额) + refund event = what the buyer kept
    assert report.refunds == 5646
    sales, refunds = sqlite.one("SELECT SUM(CASE WHEN paid > 0 THEN paid ELSE 0 END) AS s, "
                                "SUM(CASE WHEN paid < 0 THEN paid ELSE 0 END) AS r FROM orders").values()
    paid = sum(float(v) for v in info.tables[0].column("买家实际支付金额"))
    assert round(sales + refunds, 2) == round(paid, 2)
    # nothing lost: every row is an order or in quarantine
    assert sqlite.scalar("SELECT COUNT(*) FROM quarantine") == unpaid


def test_a_column_twice_with_and_without_trailing_space_is_one_column() -> None:
    """mingribooks.xls: `宝贝种类` and `宝贝种类 `; the unnamed leading index column of a pandas re-save."""
    table = tabular.read_tables(_bytes("tmall/mingribooks.xls")).tables[0]
    assert table.headers.count("宝贝种类") == 1 and table.duplicates == ["宝贝种类"]
    kinds = table.column("宝贝种类")
    assert all(k for k in kinds[:50])  # the first non-empty of the two copies


def test_the_string_null_reads_as_empty() -> None:
    """订单备注 holds `'null` in mingribooks.xls and in 1月.xlsx."""
    for name, sheet in (("tmall/mingribooks.xls", 0), ("tmall/1月.xlsx", 1)):
        table = tabular.read_tables(_bytes(name)).tables[sheet]
        notes = table.column("订单备注")
        assert notes and "'null" not in notes and all(n == "" or "null" not in n for n in notes), name


def test_excel_date_serials_become_shanghai_times(sqlite: Database) -> None:
    """TB2018.xls (BIFF8) stores 订单付款时间 as serials such as 43101.39326388889."""
    info = tabular.read_tables(_bytes("tmall/TB2018.xls"))
    assert info.format == "xls"
    first = dict(zip(info.tables[0].headers, info.tables[0].rows[0][1]))
    assert first["订单付款时间"] == "2018-01-01 09:26:18"
    # the same serial written out as a number by a CSV round trip
    assert cleaning.timestamp("43101.39326388889") == datetime(2018, 1, 1, 1, 26, 18, tzinfo=UTC)

    report = import_file(sqlite, "tmall", _bytes("tmall/TB2018.xls"), source="TB2018.xls")
    assert report.rows == 1783 and report.orders + report.quarantined.get("not_paid", 0) == 1783
    first_ts = sqlite.scalar("SELECT MIN(ts) FROM orders")
    assert datetime.fromtimestamp(first_ts, UTC) == datetime(2018, 1, 1, 1, 26, 18, tzinfo=UTC)


def test_masked_phones_and_names_never_identify_anyone(sqlite: Database) -> None:
    """`182********` (TB2018.xls), `1***********` (mingribooks.xls); names `张某某`, `***`, `颜先生`."""
    report = import_file(sqlite, "tmall", _bytes("tmall/mingribooks.xls"), source="mingribooks.xls")
    # 30 orders are 交易关闭 with nothing paid: not sales
    assert report.orders == 674 and report.quarantined == {"not_paid": 30} and report.file["masked_phones"] == 674
    assert sqlite.scalar("SELECT COUNT(*) FROM identifiers WHERE kind = 'phone'") == 0
    assert sqlite.scalar("SELECT COUNT(*) FROM identifiers WHERE value LIKE '%*%'") == 0
    # the buyer's account still identifies the buyer
    assert sqlite.scalar("SELECT COUNT(DISTINCT value) FROM identifiers WHERE kind = 'tmall_buyer'") == report.buyers_new
    builder = Builder("tmall")
    assert [builder.name(n) for n in ("张某某", "***", "颜先生", "赵某人", "李娜")] == [None, None, None, None, "李娜"]


def test_xlsx_with_one_sheet_per_shop_names_what_a_sheet_lacks(sqlite: Database) -> None:
    """1月.xlsx: sheet 明日 has 4 columns and no time at all; 莫寒 and 白桦 have 17, `订单付款时间 ` with a space."""
    report = import_file(sqlite, "tmall", _bytes("tmall/1月.xlsx"), source="1月.xlsx")
    sheets = {s["sheet"]: s for s in report.file["sheets"]}
    assert set(sheets) == {"明日", "莫寒", "白桦"} and report.file["files"][0]["format"] == "xlsx"
    assert sheets["明日"]["missing_columns"] == ["time (订单付款时间 / 付款时间 / 订单创建时间)"]
    assert sheets["莫寒"]["missing_columns"] == [] and sheets["莫寒"]["mapped"]["paid_at"] == "订单付款时间"
    assert report.rows == 149 and report.quarantined == {"missing_field": 50}
    assert report.orders == 99 and report.lines == 99  # 图书编号 is the single item's product code
    raw = sqlite.scalar("SELECT raw FROM quarantine LIMIT 1")
    assert '"_sheet": "明日"' in raw


def test_utf8_with_bom_na_nulls_and_quoted_fields_over_lines_in_pos_lines(sqlite: Database) -> None:
    """meal_order_detail.csv: UTF-8 with BOM, CRLF, `NA` for nulls, 10,037 records on 12,487 physical lines."""
    info = tabular.read_tables(_bytes("pos/meal_order_detail.csv"))
    assert info.encoding == "utf-8-sig" and info.tables[0].headers[0] == "detail_id"
    assert len(info.tables[0].rows) == 10037
    assert set(info.tables[0].column("parent_class_name")) == {""}  # NA

    report = import_file(sqlite, "pos", _bytes("pos/meal_order_detail.csv"), source="meal_order_detail.csv",
                         store="sh-001")
    assert report.rows == 10037 and report.lines == 10037 and report.quarantined == {}
    assert report.orders == sqlite.scalar("SELECT COUNT(*) FROM orders WHERE store = 'sh-001'") > 900
    assert report.file["defaulted_category"] == 10037  # no class in this export: 未分类, and said so


def test_pos_lines_without_a_store_are_quarantined_naming_it(sqlite: Database) -> None:
    report = import_file(sqlite, "pos", _bytes("pos/meal_order_detail.csv"), source="meal_order_detail.csv")
    assert report.orders == 0 and set(report.quarantined) == {"missing_field"}
    assert "give the import a store" in sqlite.scalar("SELECT detail FROM quarantine LIMIT 1")


def test_crlf_and_lf_files_read_alike() -> None:
    """tmall_order_report.csv ends its lines with CRLF, JD.csv with LF: no header or cell keeps a CR."""
    crlf, lf = _bytes("tmall/tmall_order_report.csv"), _bytes("jd/JD.csv")
    assert b"\r\n" in crlf[:200] and b"\r" not in lf
    for data in (crlf, lf):
        table = tabular.read_tables(data).tables[0]
        assert not any("\r" in h for h in table.headers)
        assert not any("\r" in cell for _, cells in table.rows for cell in cells)


def test_gbk_csv_is_detected() -> None:
    """JD.csv is GBK without BOM, LF."""
    info = tabular.read_tables(_bytes("jd/JD.csv"))
    assert info.encoding == "gbk"
    assert info.tables[0].headers == ["商品名称", "一级分类", "二级分类", "7天点击量", "定价", "订单预定"]
    assert len(info.tables[0].rows) == 33


def test_gbk_header_of_the_pos_order_export() -> None:
    """meal_order_info.csv.header.txt: the order header export's 21 columns (the source is GBK; its header
    line is ASCII, so it reads as UTF-8 too), CRLF; every column is mapped or known."""
    from cloud.cdp.imports.layouts import LAYOUTS, Mapped, detect

    table = tabular.read_tables(_bytes("pos/meal_order_info.csv.header.txt")).tables[0]
    assert len(table.headers) == 21 and table.headers[-2:] == ["phone", "name"]
    layout = detect(table, LAYOUTS)
    assert layout is not None and layout.name == "pos_orders"
    mapped = Mapped.of(table, layout, "csv")
    assert mapped.columns.unknown == [] and mapped.columns.missing == []


def test_jd_product_reports_read_as_a_catalogue(sqlite: Database) -> None:
    """all.xlsx (per SKU per day, pandas index column, ISBN turned into a float by Excel) and JD.csv (no SKU)."""
    report = import_master(sqlite, "products", _bytes("jd/all.xlsx"), source="all.xlsx")
    assert report.rows == 11815 and report.created == 33 and report.quarantined == {}
    assert "时间" in report.file["unknown_columns"] and report.flagged["barcode_unusable"] > 0
    python = sqlite.one("SELECT * FROM products WHERE sku = '12353915'")
    assert python["name"] == "零基础学Python（全彩版）" and python["price"] == 79.8  # 成交码洋 / 成交商品件数
    assert python["category_path"] == "图书>计算机与互联网>编程语言与程序设计" and python["category"] == "编程语言与程序设计"

    csv_report = import_master(sqlite, "products", _bytes("jd/JD.csv"), source="JD.csv")
    assert csv_report.quarantined == {"missing_field": 33} and csv_report.file["missing_columns"][0].startswith("sku")
    assert "7天点击量" in csv_report.file["unknown_columns"]


def test_real_order_report_header_maps_every_column() -> None:
    """orders.csv.header.txt (46 columns, BOM) and Items_orders.csv.header.txt (10): nothing unknown."""
    from cloud.cdp.imports.layouts import LAYOUTS, Mapped, detect

    for name, layout in (("tmall/orders.csv.header.txt", "taobao_orders"), ("tmall/Items_orders.csv.header.txt", "taobao_items")):
        info = tabular.read_tables(_bytes(name))
        assert info.encoding == "utf-8-sig"
        table = info.tables[0]
        found = detect(table, LAYOUTS)
        assert found is not None and found.name == layout
        mapped = Mapped.of(table, found, "csv")
        assert mapped.columns.unknown == [] and mapped.columns.missing == [], name
