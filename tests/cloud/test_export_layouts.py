"""Channel exports in their real layouts, on hand-made files (rows invented, columns as the channels
write them), on both engines: joins, rounded ids, masking, encodings, workbooks, the API."""

from __future__ import annotations

import io
import json
from pathlib import Path

import openpyxl
import typer
from typer.testing import CliRunner

from cloud.cdp import members
from cloud.cdp.imports import tabular
from cloud.cdp.imports.importer import import_file
from cloud.db import Database

# the 46 columns of the Taobao 订单报表 (ExportOrderList), trailing spaces as exported
TAOBAO_ORDERS = ("订单编号,买家会员名,买家支付宝账号,买家应付货款,买家应付邮费,买家支付积分,总金额,返点积分,买家实际支付金额,"
                 "买家实际支付积分,订单状态,买家留言,收货人姓名,收货地址,运送方式,联系电话 ,联系手机,订单创建时间,订单付款时间 ,"
                 "宝贝标题 ,宝贝种类,物流单号 ,物流公司,订单备注,宝贝总数量,店铺Id,店铺名称,订单关闭原因,卖家服务费,买家服务费,"
                 "发票抬头,是否手机订单,分阶段订单信息,特权订金订单id,是否上传合同照片,是否上传小票,是否代付,定金排名,修改后的sku,"
                 "修改后的收货地址,异常信息,天猫卡券抵扣,集分宝抵扣,是否是O2O交易,退款金额,预约门店")
TAOBAO_ITEMS = "订单编号,标题,价格,购买数量,外部系统编号,商品属性,套餐信息,备注,订单状态,商家编码"


def _order_row(order_no: str, buyer: str, phone: str, paid: str, status: str, paid_at: str, refund: str = "0") -> str:
    cells = {"订单编号": order_no, "买家会员名": buyer, "买家实际支付金额": paid, "订单状态": status, "联系手机": phone,
             "订单创建时间": paid_at, "订单付款时间": paid_at, "宝贝标题": "面霜", "宝贝总数量": "1", "退款金额": refund,
             "订单备注": "'null", "收货人姓名": "张某某"}
    return ",".join(cells.get(h.strip(), "") for h in TAOBAO_ORDERS.split(","))


def _bom(text: str) -> bytes:
    return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8")


def test_taobao_order_report_joins_its_item_report_by_order_number(db: Database) -> None:
    orders = "\n".join([TAOBAO_ORDERS,
                        _order_row("3001", "nick_a", "'13800138000", "298.00", "交易成功", "2025-03-01 20:15:00"),
                        _order_row("3002", "nick_b", "1**********", "199.00", "交易成功", "2025-03-02 10:00:00", "50"),
                        _order_row("3003", "nick_c", "", "0.00", "等待买家付款", "")]) + "\n"
    items = "\n".join([TAOBAO_ITEMS, "3001,焕肤精华,199,1,,颜色分类：30ml,,,交易成功,SKU-1001",
                       "3001,保湿面霜,99,1,,,,,交易成功,SKU-1002", "3002,保湿面霜,199,1,,,,,交易成功,",
                       "3999,香水,500,1,,,,,交易成功,SKU-9"]) + "\n"
    report = import_file(db, "tmall", _bom(orders), companion=_bom(items), source="ExportOrderList.csv")

    assert report.rows == 7  # 3 order rows + 4 item rows: nothing lost
    assert report.quarantined == {"not_paid": 1, "unjoined_line": 1}
    assert (report.orders, report.refunds, report.lines) == (3, 1, 3)
    lines = db.rows("SELECT order_id, sku, qty, price FROM order_lines ORDER BY order_id, sku")
    assert lines == [("tmall:3001", "SKU-1001", 1, 199), ("tmall:3001", "SKU-1002", 1, 99),
                     ("tmall:3002", "title:保湿面霜", 1, 199)]
    assert db.scalar("SELECT paid FROM orders WHERE id = 'tmall:3002:refund'") == -50
    # the Excel guard ' before the phone is dropped; the masked phone is no identifier
    assert db.rows("SELECT value FROM identifiers WHERE kind = 'phone'") == [("13800138000",)]
    assert report.file["masked_phones"] == 1 and report.file["unknown_columns"] == []
    assert db.scalar("SELECT COUNT(*) FROM members WHERE name IS NOT NULL") == 0  # 张某某 is no name
    assert [s["layout"] for s in report.file["sheets"]] == ["taobao_orders", "taobao_items"]
    assert import_file(db, "tmall", _bom(orders), companion=_bom(items), source="again").orders == 0  # duplicates


def test_order_ids_rounded_by_excel_are_flagged_and_never_joined(db: Database) -> None:
    """A CSV round trip: every long id ends in 00 (the README's orders.csv); a workbook: ids stored as floats."""
    orders = "\n".join([TAOBAO_ORDERS,
                        _order_row("21407300627014900 ", "nick_a", "", "10", "交易成功", "2025-03-01 20:15:00"),
                        _order_row("21407300627014900 ", "nick_b", "", "20", "交易成功", "2025-03-01 20:16:00"),
                        _order_row("21407300627015123", "nick_c", "", "30", "交易成功", "2025-03-01 20:17:00")]) + "\n"
    items = TAOBAO_ITEMS + "\n21407300627014900,面霜,10,1,,,,,交易成功,S1\n"
    report = import_file(db, "tmall", orders.encode(), companion=items.encode(), source="orders.csv")

    assert report.file["rounded_order_ids"] == 2
    assert report.orders == 3 and report.quarantined == {"unjoined_line": 1}  # the two rounded 4900s stay apart
    assert db.scalar("SELECT COUNT(*) FROM orders WHERE order_no LIKE '21407300627014900~%'") == 2
    assert db.scalar("SELECT COUNT(*) FROM order_lines") == 0
    assert "rounded by Excel" in db.scalar("SELECT detail FROM quarantine")

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["订单编号", "买家会员名", "买家实际支付金额", "订单付款时间"])
    sheet.append([2.14073006270152e16, "nick_d", 40, "2025-03-02 10:00:00"])
    sheet.append(["2025030212345", "nick_e", 50, "2025-03-02 11:00:00"])
    buffer = io.BytesIO()
    book.save(buffer)
    report = import_file(db, "tmall", buffer.getvalue(), source="orders.xlsx")
    assert report.file["rounded_order_ids"] == 1 and report.orders == 2
    assert db.scalar("SELECT COUNT(*) FROM orders WHERE order_no = '2025030212345'") == 1


def test_jd_pop_export_one_row_per_sku_gbk(db: Database) -> None:
    header = ("订单号,商品ID,商品名称,订购数量,支付方式,下单时间,京东价,订单金额,结算金额,余额支付,应付金额,订单状态,订单类型,"
              "下单帐号,客户姓名,客户地址,联系电话,订单备注,发票类型,发票抬头,发票内容,商家备注,"
              "商家备注等级（等级1-5为由高到低）,运费金额,付款确认时间,增值税发票,货号,订单完成时间,订单来源,订单渠道")
    row = ("J100,{sku},{name},{qty},在线支付,2025-02-01 09:00:00,{price},250,250,0,250,完成,普通订单,pin_1,李**,北京,"
           "13800000012,,,,,,,0,2025-02-01 09:01:00,,,,,")
    text = "\n".join([header, row.format(sku="100001", name="面膜", qty=3, price=50),
                      row.format(sku="100002", name="精华", qty=1, price=100)]) + "\n"
    report = import_file(db, "jd", text.encode("gbk"), source="jd_orders.csv")

    assert report.file["files"][0]["encoding"] == "gbk"
    assert (report.orders, report.lines, report.quarantined) == (1, 2, {})
    assert report.file["unknown_columns"] == [] and report.file["missing_columns"] == []
    order = db.one("SELECT * FROM orders WHERE id = 'jd:J100'")
    assert order["paid"] == 250  # the order amount repeated on each row counts once
    kinds = dict(db.rows("SELECT kind, value FROM identifiers"))
    assert kinds == {"jd_pin": "pin_1", "phone": "13800000012"}


def test_pos_lines_join_their_order_headers_and_the_member_phone(db: Database) -> None:
    detail = ('"detail_id","order_id","dishes_id","logicprn_name","parent_class_name","dishes_name","itemis_add","counts",'
              '"amounts","cost","place_order_time","discount_amt","discount_reason","kick_back","add_inprice","add_info",'
              '"bar_code","picture_file","emp_id"\n'
              '1,501,610047,NA,NA,"西瓜沙拉",0,1,26,NA,"2025/3/3 14:01:13",NA,NA,NA,0,NA,NA,"caipu/1.jpg",1248\n'
              '2,501,609970,NA,热菜,"小龙虾\n(大份)",0,2,99,NA,"2025/3/3 14:01:47",NA,NA,NA,0,NA,NA,"caipu/2.jpg",1248\n')
    header = ("order_id,emp_id,number_consumers,mode,dining_table_id,dining_table_name,expenditure,dishes_count,"
              "accounts_payable,use_start_time,check_closed,lock_time,cashier_id,pc_id,order_number,org_id,"
              "print_doc_bill_num,lock_table_info,order_status,phone,name\n"
              "501,1248,2,NA,1501,1022,224,3,224,2025/3/3 13:59,1,2025/3/3 14:40,NA,NA,NA,1310,NA,NA,1,18688880001,王小姐\n"
              "502,1248,1,NA,1502,1023,50,1,50,2025/3/3 15:00,1,2025/3/3 15:30,NA,NA,NA,1310,NA,NA,1,18688880002,李娜\n")
    report = import_file(db, "pos", header.encode("gbk"), companion=_bom(detail), store="sh-001", source="meal_order_info.csv")

    assert report.orders == 2 and report.lines == 2 and report.rows == 4
    assert report.file["orders_without_lines"] == 1
    order = db.one("SELECT * FROM orders WHERE id = 'pos:sh-001:501'")
    assert order["paid"] == 224 and order["store"] == "sh-001" and order["member_id"]
    assert db.scalar("SELECT category FROM order_lines WHERE sku = '609970'") == "热菜"
    assert db.rows("SELECT value FROM identifiers WHERE kind = 'phone' ORDER BY value") == [("18688880001",), ("18688880002",)]
    assert db.scalar("SELECT COUNT(*) FROM members WHERE name = '李娜'") == 1  # 王小姐 is no name


def test_youzan_export_with_its_doubled_column_and_masked_phones(db: Database) -> None:
    header = ("订单号,销售渠道,归属店铺,订单类型,订单状态,推广方式,订单来源,订单创建时间,买家付款时间,交易成功时间,付款方式,"
              "支付流水号,商品金额合计,运费,店铺优惠合计,应收订单金额,订单实付金额,支付优惠合计,订单实收金额,订单抵用积分数,"
              "店铺优惠方式,支付优惠方式,全部商品名称,商品种类数,订单配送方式,同城送达时间/提货时间,收货人省份,收货人城市,"
              "收货人地区,详细收货地址/提货地址,收货人/提货人,收货人手机号/提货人手机号,买家备注,订单星级,买家昵称,"
              "买家是否会员,买家手机号,下单网点,收银员,分销员,销售导购,专属导购,订单退款状态,订单已退款金额,商家订单备注,桌号,"
              "挂账主体,挂账手机号,团长订单,订单风险标签,分销员,分销员手机号,分销员所属店铺,分销员所属团队,分销员所属分组,"
              "分销员等级,订单佣金类型,订单佣金金额,订单下级卖货提成类型,订单下级卖货提成金额")

    names = header.split(",")

    def make(values: dict[str, str]) -> str:
        return ",".join(values.get(h, "——") for h in names)

    text = "\n".join([header,
                      make({"订单号": "E2025001", "订单状态": "交易成功", "订单创建时间": "2025-03-01 10:00:00",
                            "买家付款时间": "2025-03-01 10:01:00", "订单实付金额": "128.00", "买家手机号": "13900001111",
                            "全部商品名称": "面霜", "订单已退款金额": "0"}),
                      make({"订单号": "E2025002", "订单状态": "交易成功", "订单创建时间": "2025-03-01 11:00:00",
                            "买家付款时间": "2025-03-01 11:01:00", "订单实付金额": "99.00", "买家手机号": "186******05",
                            "订单已退款金额": "99"})]) + "\n"
    report = import_file(db, "youzan", _bom(text), source="youzan.csv")

    assert report.file["files"][0]["duplicate_columns"] == ["分销员"]
    assert (report.orders, report.refunds) == (3, 1) and report.quarantined == {}
    assert report.file["masked_phones"] == 1 and report.file["unknown_columns"] == []
    assert db.rows("SELECT value FROM identifiers") == [("13900001111",)]


def test_douyin_ids_behind_a_tab_ciphertext_and_dashes(db: Database) -> None:
    header = ("主订单编号,子订单编号,选购商品,商品规格,商品数量,商家编码,订单应付金额,运费,收件人,收件人手机号,详细地址,订单提交时间,"
              "商家备注,订单完成时间,订单状态,售后状态,取消原因,发货时间,平台实际承担优惠金额,商家实际承担优惠金额,达人实际承担优惠金额")
    rows = ['"\t6917926768823643751","\t6917926768823643752",焕肤精华,30ml,1,SKU-1001,359.00,0,##enc1,$$enc2,##enc3,'
            '2025/03/01 12:00:00,-,-,已完成,-,-,-,0,0,0',
            '"\t6917926768823643760","\t6917926768823643761",保湿面霜,50g,1,SKU-1002,299.00,0,##a,$$b,##c,'
            '2025/03/01 13:00:00,-,-,已取消,-,-,-,0,0,0']
    report = import_file(db, "douyin", _bom("\n".join([header, *rows]) + "\n"), source="douyin.csv")

    assert report.orders == 1 and report.quarantined == {"not_paid": 1}, report
    assert db.scalar("SELECT order_no FROM orders") == "6917926768823643751"  # the TAB guard is gone, no rounding
    assert "rounded_order_ids" not in report.file and report.file["ciphertext"] >= 1
    assert db.scalar("SELECT COUNT(*) FROM identifiers") == 0 and db.scalar("SELECT member_id FROM orders") is None

    joined = (header + "\n" + '"\t6917926768823643800","\t69179267688236438001;\t69179267688236438002",精华;面霜,30ml;50g,1;2,'
              'SKU-1001;SKU-1002,300.00,0,##a,$$b,##c,2025/03/02 12:00:00,-,-,已完成,-,-,-,0,0,0\n')
    report = import_file(db, "douyin", _bom(joined), source="douyin-joined.csv")
    assert report.lines == 2 and report.file["split_sub_orders"] == 1
    assert db.rows("SELECT sku, qty, price FROM order_lines WHERE order_id = 'douyin:6917926768823643800' ORDER BY sku") == [
        ("SKU-1001", 1, 100), ("SKU-1002", 2, 100)]


def test_member_lists_from_youzan_customers_and_a_store_member_file(db: Database) -> None:
    youzan = ("客户姓名,客户昵称,客户手机号,客户生日,客户性别,标签,是否会员,成长值,免费等级,付费等级,权益卡,客户积分,客户储值余额,"
              "消费次数,消费金额,累计退款金额,累计退款订单数,笔单价,上次消费时间,分销员,导购员,企微好友,来源渠道,来源方式,"
              "成为客户时间,成为会员时间,成为会员店铺,公众号,公众号关注时间,最近浏览时间,微信地域,所属区域,指定时间消费次数,"
              "指定时间消费金额,\n"
              "李娜,nana,13800000012,1990-01-01,女" + ",——" * 29 + ",\n"
              "***,x,138****0000,,男" + ",——" * 29 + ",\n")
    report = import_file(db, "members", _bom(youzan), source="youzan_customers.csv")
    assert report.buyers_new == 1 and report.quarantined == {"missing_field": 1}
    assert report.file["unknown_columns"] == []
    record = db.scalar("SELECT id FROM members WHERE source = 'members'")
    assert members.member(db, record).name == "李娜"

    book = openpyxl.Workbook()
    book.active.append(["kh", "csrq", "xb", "djsj"])
    book.active.append(["c68b20b4", "1985-06-01", 0, "2013-05-01"])
    buffer = io.BytesIO()
    book.save(buffer)
    report = import_file(db, "members", buffer.getvalue(), source="cumcm2018c1.xlsx")
    assert report.buyers_new == 1
    assert db.scalar("SELECT gender FROM members WHERE source_key = 'member_card:c68b20b4'") == "female"


def test_an_unknown_layout_is_refused_naming_its_headers(db: Database) -> None:
    import pytest

    from cloud.errors import Invalid

    with pytest.raises(Invalid) as err:
        import_file(db, "jd", "商品名称,一级分类,定价\n书,图书,10\n".encode("gbk"), source="JD.csv")
    assert err.value.code == "unknown_layout" and "商品名称" in str(err.value)


def test_reader_strips_and_dedupes_headers() -> None:
    table = tabular.read_tables("订单编号 ,宝贝种类,宝贝种类 ,订单备注\n1,,2,'null\n".encode()).tables[0]
    assert table.headers == ["订单编号", "宝贝种类", "订单备注"] and table.duplicates == ["宝贝种类"]
    assert table.rows == [(2, ["1", "2", ""])]


def test_api_takes_a_workbook_and_its_item_report(start_cloud) -> None:
    from cloud.api import auth

    client, runtime = start_cloud()
    client.headers["X-API-Key"] = auth.create_key(runtime.db, name="hq", role="hq_admin").key
    book = openpyxl.Workbook()
    book.active.append(["订单编号", "买家会员名", "买家实际支付金额", "订单付款时间 "])
    book.active.append(["T77", "nick_api", 99, "2025-03-02 10:00:00"])
    buffer = io.BytesIO()
    book.save(buffer)
    items = TAOBAO_ITEMS + "\nT77,面霜,99,1,,,,,交易成功,S77\n"
    response = client.post("/v1/imports", params={"channel": "tmall"},
                           files={"file": ("orders.xlsx", buffer.getvalue()), "items": ("items.csv", items.encode())})
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["orders"] == 1 and report["lines"] == 1 and report["file"]["files"][0]["format"] == "xlsx"
    quarantine = client.get(f"/v1/imports/{report['import_id']}/quarantine")
    assert quarantine.status_code == 200 and quarantine.json()["total"] == 0


def test_cli_imports_a_pos_export_with_a_store(db_location: str, tmp_path: Path) -> None:
    from cloud.cli import app as cloud_app

    root = typer.Typer()
    root.add_typer(cloud_app, name="cloud")

    @root.callback()
    def _root() -> None: ...

    lines = tmp_path / "meal_order_detail.csv"
    lines.write_bytes(_bom('"order_id","dishes_id","dishes_name","counts","amounts","place_order_time","emp_id"\n'
                           '9,1,"沙拉",1,26,"2025/3/3 14:01:13",1248\n'))
    result = CliRunner().invoke(root, ["cloud", "import", str(lines), "--channel", "pos", "--store", "sh-002",
                                       "--db", db_location])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["orders"] == 1 and report["file"]["sheets"][0]["layout"] == "pos_lines"
    both = CliRunner().invoke(root, ["cloud", "import", str(lines), "--db", db_location])
    assert both.exit_code == 2 and "--channel" in both.output
