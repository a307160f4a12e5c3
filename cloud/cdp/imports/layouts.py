"""Channel exports in the layouts the channels really write, into canonical orders and buyers.

Columns are found by name with aliases (``tabular.map_columns``), so a trimmed export, a re-saved
one with its columns sorted or an older variant all read; every column nobody reads and every field
not found is named in the report. Layouts (the columns are those of the real files and the
documented exports listed in ``../shared/data/exports/README.md``):

- ``taobao_orders`` 订单报表 (ExportOrderList) and ``taobao_items`` 宝贝报表 (ExportOrderDetailList),
  joined by 订单编号 when both are given; an order report alone gives orders without lines unless it
  carries a product code (图书编号 / 商家编码) of its single item;
- ``jd_orders`` JD POP order export (one row per SKU, order amounts repeated on each row);
- ``pos_lines`` POS order lines (meal_order_detail) and ``pos_orders`` order headers
  (meal_order_info), joined by order_id;
- ``youzan_orders`` (order export, or the order+item variant) and ``douyin_orders`` (抖店);
- member lists: the CRM layout, Youzan's customer export and the department-store member list.

Quirks handled: rows without an order number get one from a digest of the row (the 明日 extracts
have none), so a re-import is still a duplicate; an order number that Excel rounded (a number of
more than 15 digits in a workbook, scientific notation, or a CSV whose long ids nearly all end in
``00``) is flagged, kept apart with a digest suffix and never used as a join key; masked phones
(``1**********``, ``186******05``) and Douyin's ciphertext (``##...``, ``$$...``) are never
identifiers; masked names (``张某某``, ``***``) are not names; unpaid orders are quarantined as
``not_paid``; a refund amount on a paid order is a refund event on that order.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from cloud.cdp.imports import cleaning
from cloud.cdp.imports.adapters import member_facts
from cloud.cdp.imports.canonical import PER_STORE_CHANNELS, Buyer, Line, Order
from cloud.cdp.imports.cleaning import RowProblem
from cloud.cdp.imports.tabular import ColumnMap, FileInfo, Table, map_columns
from protocol.topics import TopicError, check_id

UNCATEGORISED = "未分类"
_UNPAID = frozenset({"等待买家付款", "未付款", "待付款", "待支付", "已取消", "订单取消", "取消", "未支付"})
_REFUNDED = frozenset({"退款成功", "已退款", "全额退款", "售后完成", "退款完成"})
_CLOSED = frozenset({"交易关闭", "已关闭", "订单关闭"})  # Taobao: closed before payment, or refunded in full
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?[eE]\+?\d+$")
_MASKED_NAME = re.compile(r"^\*+$|某|^.(先生|女士|小姐)$|\*")


@dataclass(frozen=True)
class Layout:
    name: str
    channel: str
    role: str  # orders | lines | order_lines (a row is an order line carrying the order) | buyers
    signature: tuple[str, ...]  # headers that identify the layout (all present)
    aliases: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    ignored: tuple[str, ...] = ()
    #: order_lines: each row's paid amount is its own (Douyin sub-orders), not the order's repeated (JD)
    paid_per_row: bool = False


_TAOBAO_IGNORED = (
    "买家支付宝账号", "买家应付邮费", "买家支付积分", "返点积分", "买家实际支付积分", "买家留言", "收货人姓名", "收货地址",
    "运送方式", "联系电话", "物流单号", "物流公司", "订单备注", "宝贝种类", "店铺Id", "订单关闭原因", "卖家服务费",
    "买家服务费", "发票抬头", "是否手机订单", "分阶段订单信息", "特权订金订单id", "是否上传合同照片", "是否上传小票",
    "是否代付", "定金排名", "修改后的sku", "修改后的收货地址", "异常信息", "天猫卡券抵扣", "集分宝抵扣", "是否是O2O交易",
    "预约门店", "商品属性", "套餐信息", "备注", "支付单号", "退款状态", "买家应付货款", "外部系统编号", "子订单编号",
)

LAYOUTS: tuple[Layout, ...] = (
    Layout("taobao_items", "tmall", "lines", ("标题", "价格", "购买数量"), {
        "order_no": ("主订单编号", "订单编号"), "sub_order_no": ("子订单编号",), "title": ("标题",),
        "price": ("价格",), "qty": ("购买数量",), "sku": ("商家编码", "外部系统编号"), "status": ("订单状态",),
        "refund": ("退款金额",), "category": ("类别", "类目"),
    }, ("order_no", "title", "price", "qty"), _TAOBAO_IGNORED + ("买家应付货款", "买家实际支付金额", "订单创建时间", "订单付款时间")),
    Layout("taobao_orders", "tmall", "orders", ("买家实际支付金额",), {
        "order_no": ("订单编号", "主订单编号"), "buyer": ("买家会员名",), "phone": ("联系手机", "收货人手机号"),
        "paid": ("买家实际支付金额", "实付金额"), "total": ("总金额", "买家应付货款"), "status": ("订单状态",),
        "created": ("订单创建时间",), "paid_at": ("订单付款时间", "付款时间"), "title": ("宝贝标题", "标题"),
        "qty": ("宝贝总数量",), "sku": ("商家编码", "图书编号", "商品编码"), "category": ("类别", "类目"),
        "refund": ("退款金额",), "store_name": ("店铺名称",),
    }, ("paid", "time"), _TAOBAO_IGNORED),
    Layout("jd_orders", "jd", "order_lines", ("订单号", "商品ID"), {
        "order_no": ("订单号",), "buyer": ("下单帐号", "下单账号"), "phone": ("联系电话",), "sku": ("商品ID", "商家SKUID", "货号"),
        "title": ("商品名称",), "qty": ("订购数量",), "price": ("京东价",), "paid": ("应付金额", "订单金额", "结算金额"),
        "created": ("下单时间",), "paid_at": ("付款确认时间",), "status": ("订单状态",), "category": ("类目", "品类"),
    }, ("order_no", "sku", "qty", "paid", "time"), (
        "支付方式", "余额支付", "订单类型", "客户姓名", "客户地址", "订单备注", "发票类型", "发票抬头", "发票内容", "商家备注",
        "商家备注等级（等级1-5为由高到低）", "运费金额", "增值税发票", "订单完成时间", "订单来源", "订单渠道", "服务费", "送装服务",
        "仓库id", "仓库名称", "普通发票纳税编号", "邮政编码", "邮箱地址", "订单金额", "结算金额", "货号", "商家SKUID")),
    Layout("pos_lines", "pos", "lines", ("order_id", "dishes_name"), {
        "order_no": ("order_id",), "sku": ("dishes_id", "bar_code"), "title": ("dishes_name",),
        "category": ("parent_class_name", "logicprn_name"), "qty": ("counts",), "price": ("amounts",),
        "time": ("place_order_time",), "assistant": ("emp_id",), "store": ("store", "门店编码"),
    }, ("order_no", "sku", "qty", "price"), (
        "detail_id", "itemis_add", "cost", "discount_amt", "discount_reason", "kick_back", "add_inprice", "add_info",
        "picture_file", "bar_code", "logicprn_name")),
    Layout("pos_orders", "pos", "orders", ("order_id", "accounts_payable"), {
        "order_no": ("order_id",), "paid": ("accounts_payable", "expenditure"), "created": ("use_start_time",),
        "paid_at": ("lock_time",), "status": ("order_status",), "phone": ("phone",), "name": ("name",),
        "assistant": ("emp_id",), "store": ("store", "门店编码", "org_id"),
    }, ("order_no", "paid", "time"), (
        "number_consumers", "mode", "dining_table_id", "dining_table_name", "expenditure", "dishes_count", "check_closed",
        "cashier_id", "pc_id", "order_number", "print_doc_bill_num", "lock_table_info")),
    Layout("youzan_order_items", "youzan", "order_lines", ("订单号", "商品名称", "商品单价"), {
        "order_no": ("订单号",), "title": ("商品名称",), "sku": ("商品编码",), "price": ("商品单价",), "qty": ("商品数量",),
        "category": ("商品类目",), "paid": ("订单实付金额",), "phone": ("买家手机号",), "created": ("订单创建时间",),
        "line_refund": ("商品已退款金额",), "name": ("买家姓名",),
    }, ("order_no", "title", "price", "qty", "paid", "time"), (
        "运费", "课程简称", "收货人/提货人", "收货人手机号/提货人手机号", "详细收货地址/提货地址", "买家备注", "商家订单备注",
        "订单商品状态", "商品类型", "商品规格", "商品留言", "商品发货物流公司", "商品发货物流单号", "商品退款状态")),
    Layout("youzan_orders", "youzan", "orders", ("订单号", "订单实付金额"), {
        "order_no": ("订单号",), "paid": ("订单实付金额", "订单实收金额"), "created": ("订单创建时间",),
        "paid_at": ("买家付款时间",), "status": ("订单状态",), "phone": ("买家手机号",), "title": ("全部商品名称",),
        "refund": ("订单已退款金额",), "store_name": ("归属店铺", "下单网点"), "assistant": ("销售导购", "专属导购"),
    }, ("order_no", "paid", "time"), (
        "销售渠道", "订单类型", "推广方式", "订单来源", "交易成功时间", "付款方式", "支付流水号", "商品金额合计", "运费",
        "店铺优惠合计", "应收订单金额", "支付优惠合计", "订单实收金额", "订单抵用积分数", "店铺优惠方式", "支付优惠方式",
        "商品种类数", "订单配送方式", "同城送达时间/提货时间", "收货人省份", "收货人城市", "收货人地区", "详细收货地址/提货地址",
        "收货人/提货人", "收货人手机号/提货人手机号", "买家备注", "订单星级", "买家昵称", "买家是否会员", "收银员", "分销员",
        "订单退款状态", "商家订单备注", "桌号", "挂账主体", "挂账手机号", "团长订单", "订单风险标签", "分销员手机号",
        "分销员所属店铺", "分销员所属团队", "分销员所属分组", "分销员等级", "订单佣金类型", "订单佣金金额",
        "订单下级卖货提成类型", "订单下级卖货提成金额", "下单网点", "专属导购")),
    Layout("douyin_orders", "douyin", "order_lines", ("主订单编号", "子订单编号"), {
        "order_no": ("主订单编号",), "sub_order_no": ("子订单编号",), "title": ("选购商品",), "qty": ("商品数量",),
        "sku": ("商家编码", "商品ID"), "price": ("商品金额",), "paid": ("订单应付金额",), "created": ("订单提交时间",),
        "paid_at": ("支付完成时间",), "status": ("订单状态",), "after_sale": ("售后状态",), "phone": ("收件人手机号",),
    }, ("order_no", "title", "qty", "paid", "time"), (
        "商品规格", "运费", "收件人", "详细地址", "商家备注", "订单完成时间", "取消原因", "发货时间", "平台实际承担优惠金额",
        "商家实际承担优惠金额", "达人实际承担优惠金额", "商品ID", "支付方式", "商家收入金额", "快递信息", "达人ID", "达人昵称"),
        paid_per_row=True),
)

MEMBER_LAYOUTS: tuple[Layout, ...] = (
    # a brand CRM's member list (会员列表), as CRM and POS member modules export it: no public real
    # file exists (exports/README.md), so the column names are the common ones, with aliases
    Layout("crm_members", "members", "buyers", ("会员卡号", "会员等级"), {
        "member_card": ("会员卡号", "卡号"), "phone": ("手机号", "手机号码", "手机"), "name": ("姓名", "会员姓名"),
        "gender": ("性别",), "birthday": ("生日", "出生日期"), "tier": ("会员等级", "等级"),
        "tags": ("会员标签", "标签"), "points": ("积分", "可用积分", "积分余额"), "store": ("开卡门店", "注册门店", "门店编码"),
        "since": ("开卡日期", "开卡时间", "注册时间", "入会时间"), "address": ("地址", "联系地址"),
        "unionid": ("unionid", "微信unionid"),
    }, ("member_card",), ("开卡门店名称", "会员状态", "备注", "最近消费时间", "累计消费金额", "消费次数")),
    Layout("youzan_customers", "members", "buyers", ("客户手机号",), {
        "phone": ("客户手机号",), "name": ("客户姓名",), "gender": ("客户性别",), "birthday": ("客户生日",),
        "store_name": ("成为会员店铺",), "since": ("成为会员时间", "成为客户时间"), "tags": ("标签",),
        "tier": ("付费等级", "免费等级"), "points": ("客户积分",),
    }, ("phone",), (
        "客户昵称", "是否会员", "成长值", "免费等级", "权益卡", "客户储值余额", "消费次数",
        "消费金额", "累计退款金额", "累计退款订单数", "笔单价", "上次消费时间", "分销员", "导购员", "企微好友", "来源渠道",
        "来源方式", "成为客户时间", "公众号", "公众号关注时间", "最近浏览时间", "微信地域", "所属区域", "指定时间消费次数",
        "指定时间消费金额")),
    Layout("store_members", "members", "buyers", ("kh",), {
        "member_card": ("kh", "会员卡号"), "birthday": ("csrq", "出生日期"), "gender": ("xb", "性别"), "since": ("djsj", "登记时间"),
        "store": ("store", "门店"),
    }, ("member_card",)),
)


def _digest(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts, ensure_ascii=False, default=str).encode()).hexdigest()[:12]


def detect(table: Table, layouts: Sequence[Layout] = LAYOUTS) -> Layout | None:
    """The first layout whose signature headers the table has (after stripping)."""
    present = set(table.headers)
    for layout in layouts:
        if all(h in present for h in layout.signature):
            return layout
    return None


@dataclass
class Mapped:
    """A table read under a layout: its column map and the fields of every row."""

    layout: Layout
    table: Table
    columns: ColumnMap
    rounded_ids: set[int] = field(default_factory=set)  # row_no whose order number Excel rounded

    @classmethod
    def of(cls, table: Table, layout: Layout, fmt: str) -> Mapped:
        aliases = dict(layout.aliases)
        columns = map_columns(table.headers, aliases, ignored=layout.ignored)
        required = [r for r in layout.required if r != "time"]
        missing = [f"{r} ({' / '.join(aliases[r])})" for r in required if not columns.has(r)]
        if "time" in layout.required and not (columns.has("paid_at") or columns.has("created") or columns.has("time")):
            names = [a for k in ("paid_at", "created", "time") for a in aliases.get(k, ())]
            missing.append(f"time ({' / '.join(names)})")
        columns.missing = missing
        mapped = cls(layout, table, columns)
        mapped.rounded_ids = mapped._rounded(fmt)
        return mapped

    def _rounded(self, fmt: str) -> set[int]:
        header = self.columns.found.get("order_no")
        if header is None:
            return set()
        col = self.table.headers.index(header)
        ids = [(n, cells[col]) for n, cells in self.table.rows]
        flagged = {n for n, v in ids if _SCIENTIFIC.match(v) or (n, col) in self.table.imprecise}
        long_ids = [(n, v) for n, v in ids if v.isdigit() and len(v) >= 16]
        if long_ids and fmt == "csv" and sum(v.endswith("00") for _, v in long_ids) > 0.5 * len(long_ids) >= 1.5:
            flagged |= {n for n, v in long_ids if v.endswith("00")}
        return flagged

    def describe(self) -> dict:
        return {"sheet": self.table.name, "layout": self.layout.name, "rows": len(self.table.rows),
                **self.columns.describe(), "rounded_order_ids": len(self.rounded_ids)}


@dataclass
class Counts:
    """What the report adds for real layouts, besides orders and quarantine."""

    masked_phones: int = 0
    masked_names: int = 0
    ciphertext: int = 0
    derived_order_numbers: int = 0
    rounded_order_ids: int = 0
    orders_without_lines: int = 0
    defaulted_category: int = 0
    category_from_catalogue: int = 0
    sku_from_title: int = 0
    split_sub_orders: int = 0

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v}


class Builder:
    """Turns mapped rows into canonical orders or buyers for one channel."""

    def __init__(self, channel: str, *, store: str | None = None, categories: Mapping[str, str] | None = None) -> None:
        self.channel = channel
        self.store = store
        self.categories = categories or {}
        self.counts = Counts()

    # --- identifiers ---------------------------------------------------------------------------------
    def phone(self, raw: str) -> str | None:
        value = cleaning.phone(raw)
        if not value:
            return None
        if value.startswith(("##", "$$")):
            self.counts.ciphertext += 1
            return None
        if "*" in value:
            self.counts.masked_phones += 1
            return None
        return value

    def name(self, raw: str) -> str | None:
        value = raw.strip()
        if not value:
            return None
        if _MASKED_NAME.search(value) or value.startswith(("##", "$$")):
            self.counts.masked_names += 1
            return None
        return value

    def buyer(self, m: Mapped, rec: dict) -> Buyer | None:
        ids = []
        account = m.columns.get(rec, "buyer").strip()
        if account and "*" not in account:
            ids.append(("tmall_buyer" if self.channel == "tmall" else "jd_pin" if self.channel == "jd" else
                        f"{self.channel}_buyer", account))
        if phone := self.phone(m.columns.get(rec, "phone")):
            ids.append(("phone", phone))
        if not ids:
            return None
        return Buyer(key=f"{ids[0][0]}:{ids[0][1]}", identifiers=tuple(ids), name=self.name(m.columns.get(rec, "name")))

    # --- orders ----------------------------------------------------------------------------------------
    def order_no(self, m: Mapped, row_no: int, rec: dict) -> tuple[str, bool]:
        """The order number, and whether it can be trusted as a join key."""
        raw = m.columns.get(rec, "order_no").strip()
        if not raw:
            self.counts.derived_order_numbers += 1
            return "row-" + _digest(sorted(rec.items())), False
        if row_no in m.rounded_ids:
            self.counts.rounded_order_ids += 1
            return f"{raw}~{_digest(sorted(rec.items()))[:8]}", False
        return raw, True

    def join_key(self, m: Mapped, rec: dict, order_no: str) -> tuple[str, str]:
        """What joins an order's head to its lines: the number, and for a till's export its store
        too (each store numbers its own receipts); a table without a store column gives ``""``."""
        if self.channel not in PER_STORE_CHANNELS:
            return "", order_no
        return self.store or m.columns.get(rec, "store").strip(), order_no

    def _store(self, m: Mapped, rec: dict) -> str | None:
        if self.channel not in PER_STORE_CHANNELS:
            return None
        store = self.store or m.columns.get(rec, "store").strip()  # the import's store wins over a POS org id
        if not store:
            raise RowProblem("missing_field", "no store: the export has no store column; give the import a store")
        try:
            check_id("store", store)
        except TopicError as exc:
            raise RowProblem("invalid_store", str(exc)) from None
        return store

    def line(self, m: Mapped, rec: dict, *, qty_default: str = "1", price: float | None = None) -> Line:
        sku = m.columns.get(rec, "sku").strip()
        if not sku:
            title = m.columns.get(rec, "title").strip()
            if not title:
                raise RowProblem("missing_field", "an order line without a product code or title")
            sku = "title:" + title[:120]
            self.counts.sku_from_title += 1
        category = m.columns.get(rec, "category").strip()
        if not category and sku in self.categories:  # the catalogue's, as for a streamed order
            category = self.categories[sku]
            self.counts.category_from_catalogue += 1
        if not category:
            category = UNCATEGORISED
            self.counts.defaulted_category += 1
        qty = cleaning.quantity(m.columns.get(rec, "qty") or qty_default)
        unit = price if price is not None else cleaning.price(m.columns.get(rec, "price"))
        return Line(sku=sku, category=category, qty=qty, price=unit)

    def joined_lines(self, m: Mapped, rec: dict, paid: float) -> list[Line]:
        """A row that may join several sub-orders with ``;`` (Douyin): one line each, the row's amount
        shared by quantity when there is no price column."""
        fields = ("sku", "title", "qty", "price", "sub_order_no", "category")
        parts = {f: m.columns.get(rec, f).split(";") for f in fields if ";" in m.columns.get(rec, f)}
        n = max((len(v) for v in parts.values()), default=1)
        if any(len(v) != n for v in parts.values()):
            raise RowProblem("malformed_row", f"sub-orders joined with ';' do not line up: {sorted(parts)}")
        recs = []
        for i in range(n):
            one = dict(rec)
            for f, values in parts.items():
                one[m.columns.found[f]] = values[i].strip()
            recs.append(one)
        if m.columns.has("price"):
            return [self.line(m, one) for one in recs]
        quantities = [cleaning.quantity(m.columns.get(one, "qty") or "1") for one in recs]
        unit = round(paid / sum(quantities), 2)
        if n > 1:
            self.counts.split_sub_orders += n - 1
        return [self.line(m, one, price=unit) for one in recs]

    def order(self, m: Mapped, row_no: int, rec: dict, order_no: str, lines: tuple[Line, ...],
              paid: float | None = None) -> tuple[Order, ...]:
        """A sale (and a refund event when the export carries a refund amount) from one order's head row."""
        status = m.columns.get(rec, "status").strip()
        paid_at = m.columns.get(rec, "paid_at").strip()
        when = paid_at or m.columns.get(rec, "created").strip() or m.columns.get(rec, "time").strip()
        if paid is None:
            paid = cleaning.amount(m.columns.get(rec, "paid"), "paid")
        if status in _UNPAID or (m.columns.has("paid_at") and not paid_at and paid == 0):
            raise RowProblem("not_paid", f"never paid ({status or 'no payment time'}): not a sale")
        if status in _CLOSED and paid == 0:
            raise RowProblem("not_paid", f"{status} with nothing paid: not a sale")
        if paid < 0:
            raise RowProblem("negative_amount", f"paid {paid:g} on a sale")
        if not when:
            raise RowProblem("missing_field", "no time (no payment or creation time column or value)")
        ts = cleaning.timestamp(when)
        store = self._store(m, rec)
        buyer = self.buyer(m, rec)
        if not lines:
            self.counts.orders_without_lines += 1
        refund_raw = m.columns.get(rec, "refund")
        refund = cleaning.amount(refund_raw, "refund") if refund_raw else 0.0
        if not refund and (status in _REFUNDED or (status in _CLOSED and not m.columns.has("refund"))):
            refund = paid  # closed after payment: the money went back
        gross = paid
        if refund > 0:
            # Taobao's 买家实际支付金额 is net of refunds (paid + 退款金额 = 总金额 on every refunded order of
            # the samples): the sale is what was paid at payment time, the refund an event on it
            total_raw = m.columns.get(rec, "total")
            total = cleaning.amount(total_raw, "total") if total_raw else None
            if total is not None and abs(paid + refund - total) < 0.01:
                gross = total
            elif paid < refund:
                gross = round(paid + refund, 2)
        sale = Order(order_no=order_no, channel=self.channel, store=store, buyer=buyer, lines=lines, paid=gross, ts=ts)
        if refund <= 0 or gross <= 0:
            return (sale,)
        back = Order(order_no=order_no, channel=self.channel, store=store, buyer=buyer, lines=(),
                     paid=-min(refund, gross), ts=ts, refund=True)
        return sale, back


Parsed = tuple[int, dict, object]


def _guard(row_no: int, raw: dict, make) -> Parsed:
    try:
        return row_no, raw, make()
    except RowProblem as problem:
        return row_no, raw, problem
    except ValidationError as exc:
        return row_no, raw, RowProblem("malformed_row", str(exc.errors()[0]["msg"]))


def parse_orders(builder: Builder, heads: Mapped | None, lines: Mapped | None) -> Iterator[Parsed]:
    """Orders from a head table, a line table, or both joined by order number (rows are never dropped)."""
    by_order: dict[tuple[str, str], list[tuple[int, dict]]] = defaultdict(list)
    unjoinable: list[tuple[int, dict, str]] = []
    line_map = lines
    if line_map is not None:
        for row_no, rec in line_map.table.records():
            order_no, trusted = builder.order_no(line_map, row_no, rec)
            if trusted or heads is None:
                by_order[builder.join_key(line_map, rec, order_no)].append((row_no, rec))
            else:
                unjoinable.append((row_no, rec, order_no))
    if heads is not None:
        seen_heads: set[tuple[str, str]] = set()
        for row_no, rec in heads.table.records():
            order_no, trusted = builder.order_no(heads, row_no, rec)
            key = builder.join_key(heads, rec, order_no)
            # lines without a store column join their head on the number alone
            group = (by_order.pop(key, []) or by_order.pop(("", order_no), [])
                     if trusted and key not in seen_heads else [])
            seen_heads.add(key)
            raw: dict = {"rows": [rec] + [r for _, r in group]} if group else dict(rec)
            if heads.table.name not in ("csv",):
                raw = {**raw, "_sheet": heads.table.name} if "rows" not in raw else raw

            def make(rec: dict = rec, group: list = group, order_no: str = order_no,
                     row_no: int = row_no) -> tuple[Order, ...]:
                if group:
                    built = tuple(builder.line(line_map, r) for _, r in group)  # type: ignore[arg-type]
                elif heads.columns.has("sku"):
                    paid = cleaning.amount(heads.columns.get(rec, "paid"), "paid")
                    qty = cleaning.quantity(heads.columns.get(rec, "qty") or "1")
                    built = (builder.line(heads, rec, price=round(paid / qty, 2)),)
                else:
                    built = ()
                return builder.order(heads, row_no, rec, order_no, built)

            yield _guard(row_no, raw, make)
        rounded_heads = {heads.columns.get(rec, "order_no").strip() for row_no, rec in heads.table.records()
                         if row_no in heads.rounded_ids}
        for (_, order_no), group in by_order.items():
            detail = (f"order number {order_no} was rounded by Excel in the order report: not a join key"
                      if order_no in rounded_heads else f"a line of order {order_no}, which the order report lacks")
            for row_no, rec in group:
                yield row_no, dict(rec), RowProblem("unjoined_line", detail)
        for row_no, rec, order_no in unjoinable:
            yield row_no, dict(rec), RowProblem(
                "unjoined_line", f"order number {order_no.split('~')[0]} was rounded by Excel: not a join key")
        return
    assert line_map is not None
    role = line_map.layout.role
    for (_, order_no), group in by_order.items():
        first_no, first = group[0]
        raw = {"rows": [r for _, r in group]} if len(group) > 1 else dict(first)

        def make_lines(first: dict = first, group: list = group, order_no: str = order_no,
                       first_no: int = first_no) -> tuple[Order, ...]:
            if line_map.layout.paid_per_row:
                amounts = [cleaning.amount(line_map.columns.get(r, "paid"), "paid") for _, r in group]
                built = tuple(line for (_, r), a in zip(group, amounts, strict=True)
                              for line in builder.joined_lines(line_map, r, a))
                paid = round(sum(amounts), 2)
            elif role == "order_lines":
                built = tuple(builder.line(line_map, r) for _, r in group)
                paid = cleaning.amount(line_map.columns.get(first, "paid"), "paid")
            else:
                built = tuple(builder.line(line_map, r) for _, r in group)
                paid = round(sum(line.qty * line.price for line in built), 2)
            return builder.order(line_map, first_no, first, order_no, built, paid=paid)

        yield _guard(first_no, raw, make_lines)


def parse_buyers(builder: Builder, m: Mapped) -> Iterator[Parsed]:
    for row_no, rec in m.table.records():
        def make(rec: dict = rec) -> Buyer:
            ids = []
            if card := m.columns.get(rec, "member_card").strip():
                ids.append(("member_card", card))
            if unionid := m.columns.get(rec, "unionid").strip():
                ids.append(("unionid", unionid))
            if phone := builder.phone(m.columns.get(rec, "phone")):
                ids.append(("phone", phone))
            if not ids:
                raise RowProblem("missing_field", "no member card or usable (unmasked) phone")
            store = m.columns.get(rec, "store").strip() or None
            if store:
                try:
                    check_id("store", store)
                except TopicError as exc:
                    raise RowProblem("invalid_store", str(exc)) from None
            gender = {"f": "female", "女": "female", "0": "female", "m": "male", "男": "male", "1": "male"}.get(
                m.columns.get(rec, "gender").strip().lower())
            facts = member_facts(*(m.columns.get(rec, f) for f in ("tier", "tags", "birthday", "points", "since",
                                                                    "address")))
            return Buyer(key=f"{ids[0][0]}:{ids[0][1]}", identifiers=tuple(ids), name=builder.name(m.columns.get(rec, "name")),
                         gender=gender, store=store, **facts)

        yield _guard(row_no, dict(rec), make)


@dataclass
class Plan:
    """What a file (and its companion) will be read as, for the report."""

    items: Iterator[Parsed]
    builder: Builder
    sheets: list[Mapped]
    files: list[FileInfo]
    rows: int

    def describe(self) -> dict:
        return {"files": [f.describe() for f in self.files], "sheets": [m.describe() for m in self.sheets],
                "unknown_columns": sorted({c for m in self.sheets for c in m.columns.unknown}),
                "missing_columns": sorted({c for m in self.sheets for c in m.columns.missing}),
                **self.builder.counts.as_dict()}


def plan(channel: str, files: Sequence[FileInfo], *, store: str | None = None,
         categories: Mapping[str, str] | None = None) -> Plan:
    """Read one export (and a companion: 宝贝报表 for 订单报表, order headers for POS lines).

    Every sheet of every file is matched to a layout of the channel; a sheet no layout fits raises
    ``Invalid`` naming the headers it has. Head and line sheets are joined; sheets of one role are
    read one after the other. A line without a category takes ``categories`` (the catalogue's) of its SKU.
    """
    from cloud.errors import Invalid

    builder = Builder(channel, store=store, categories=categories)
    layouts = MEMBER_LAYOUTS if channel == "members" else tuple(lay for lay in LAYOUTS if lay.channel == channel)
    sheets: list[Mapped] = []
    for info in files:
        for table in info.tables:
            if not table.headers:
                continue
            layout = detect(table, layouts)
            if layout is None:
                known = "; ".join(f"{lay.name}: {', '.join(lay.signature)}" for lay in layouts)
                raise Invalid(f"sheet {table.name!r} ({', '.join(table.headers[:12])}) is no {channel} layout "
                              f"this importer knows ({known})", code="unknown_layout")
            sheets.append(Mapped.of(table, layout, info.format))
    rows = sum(len(m.table.rows) for m in sheets)

    def items() -> Iterator[Parsed]:
        if channel == "members":
            for m in sheets:
                yield from parse_buyers(builder, m)
            return
        heads = [m for m in sheets if m.layout.role == "orders"]
        lines = [m for m in sheets if m.layout.role != "orders"]
        if heads and lines:
            if len(lines) > 1:
                raise Invalid("give one line report to join", code="unknown_layout")
            yield from parse_orders(builder, heads[0], lines[0])
            for extra in heads[1:]:
                yield from parse_orders(builder, extra, None)
            return
        for m in heads:
            yield from parse_orders(builder, m, None)
        for m in lines:
            yield from parse_orders(builder, None, m)

    return Plan(items(), builder, sheets, list(files), rows)


def counts_text(counts: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
