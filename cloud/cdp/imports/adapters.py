"""Channel exports -> canonical orders (or buyers, for member lists), row by row.

Tmall, JD and POS exports are CSV with one row per order line (the order's total repeated on
each); WeChat mini-program orders are JSON (a list, or one object per line) with amounts in fen.
A member list (``members``) is a CRM CSV of sign-ups. Each adapter yields ``(row_no, raw, item)``
where item is an ``Order``, a ``Buyer`` or a ``RowProblem`` to quarantine: nothing is dropped.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import ValidationError

from cloud.cdp.imports import cleaning
from cloud.cdp.imports.canonical import Buyer, Line, Order
from cloud.cdp.imports.cleaning import RowProblem
from protocol.topics import TopicError, check_id

Item = Order | Buyer | RowProblem
Parsed = tuple[int, dict, Item]


@dataclass(frozen=True)
class LineColumns:
    """Where a line-per-row CSV export keeps each canonical field."""

    order_no: str
    time: str
    paid: str
    sku: str
    category: str
    qty: str
    price: str
    status: str
    refund_words: frozenset[str]
    buyer: Callable[[dict], Buyer | None]
    store: str | None = None
    currency: str | None = None
    refund_ref: str | None = None  # a refund's original order number, when it has its own


def _get(row: dict, column: str) -> str:
    return str(row.get(column) or "").strip()


def _buyer(key_kind: str, key_column: str, *others: tuple[str, str]) -> Callable[[dict], Buyer | None]:
    def make(row: dict) -> Buyer | None:
        key = _get(row, key_column)
        ids = [(key_kind, key)] if key else []
        for kind, column in others:
            value = cleaning.phone(row.get(column)) if kind == "phone" else _get(row, column)
            if value:
                ids.append((kind, value))
        if not ids:
            return None
        return Buyer(key=f"{ids[0][0]}:{ids[0][1]}", identifiers=tuple(ids))

    return make


TMALL = LineColumns(
    order_no="订单编号", time="付款时间", paid="实付金额", sku="商品编码", category="类目", qty="购买数量",
    price="商品单价", status="订单状态", refund_words=frozenset({"退款", "退款成功", "交易关闭"}),
    buyer=_buyer("tmall_buyer", "买家会员名", ("phone", "收货人手机号")), currency="币种",
)
JD = LineColumns(
    order_no="订单号", time="下单时间", paid="应付金额", sku="商品ID", category="品类", qty="数量", price="单价",
    status="订单状态", refund_words=frozenset({"已退款", "退款"}),
    buyer=_buyer("jd_pin", "用户PIN", ("phone", "手机号")),
)
POS = LineColumns(
    order_no="receipt_no", time="ts", paid="amount", sku="sku", category="category", qty="qty", price="unit_price",
    status="type", refund_words=frozenset({"refund"}),
    buyer=_buyer("member_card", "member_card", ("phone", "phone")), store="store", currency="currency",
    refund_ref="original_receipt_no",
)


def _line_orders(channel: str, columns: LineColumns, rows: Iterable[tuple[int, dict]]) -> Iterator[Parsed]:
    """Consecutive rows with one order number (and one store, where the layout has a store column:
    two tills print the same receipt number) form one order; a bad line quarantines its order."""

    def key(row: dict) -> tuple[str, str]:
        return _get(row, columns.order_no), _get(row, columns.store) if columns.store else ""

    group: list[tuple[int, dict]] = []
    for row_no, row in rows:
        if group and key(row) != key(group[0][1]):
            yield from _one_line_order(channel, columns, group)
            group = []
        group.append((row_no, row))
    if group:
        yield from _one_line_order(channel, columns, group)


def _one_line_order(channel: str, columns: LineColumns, group: list[tuple[int, dict]]) -> Iterator[Parsed]:
    row_no, first = group[0]
    raw = first if len(group) == 1 else {"rows": [r for _, r in group]}
    try:
        order_no = _get(first, columns.order_no)
        if not order_no:
            raise RowProblem("missing_field", f"no {columns.order_no}")
        if columns.currency:
            cleaning.currency(first.get(columns.currency))
        store = _get(first, columns.store) if columns.store else None
        if columns.store is not None:
            _check_store(store)
        refund = _get(first, columns.status) in columns.refund_words
        lines = tuple(
            Line(sku=_required(r, columns.sku), category=_required(r, columns.category),
                 qty=cleaning.quantity(r.get(columns.qty)), price=cleaning.price(r.get(columns.price)))
            for _, r in group
        )
        ref = (_get(first, columns.refund_ref) or None) if columns.refund_ref and refund else None
        yield row_no, raw, _order(channel, order_no, store, columns.buyer(first), lines,
                                  cleaning.amount(first.get(columns.paid), "paid"), first.get(columns.time), refund,
                                  refund_ref=ref)
    except RowProblem as problem:
        yield row_no, raw, problem
    except ValidationError as exc:
        yield row_no, raw, RowProblem("malformed_row", str(exc.errors()[0]["msg"]))


def _required(row: dict, column: str) -> str:
    value = _get(row, column)
    if not value:
        raise RowProblem("missing_field", f"no {column}")
    return value


def _check_store(store: str | None) -> None:
    if not store:
        raise RowProblem("missing_field", "no store")
    try:
        check_id("store", store)
    except TopicError as exc:
        raise RowProblem("invalid_store", str(exc)) from None


def _order(channel: str, order_no: str, store: str | None, buyer: Buyer | None, lines: tuple[Line, ...],
           paid: float, when: object, refund: bool, *, refund_ref: str | None = None) -> Order:
    if not lines:
        raise RowProblem("no_lines", "an order without lines")
    if paid < 0 and not refund:
        raise RowProblem("negative_amount", f"paid {paid:g} on a sale")
    paid = -abs(paid) if refund else paid
    return Order(order_no=order_no, channel=channel, store=store, buyer=buyer, lines=lines, paid=paid,
                 ts=cleaning.timestamp(when), refund=refund, refund_ref=refund_ref)


def _wechat(records: Iterable[tuple[int, dict]]) -> Iterator[Parsed]:
    for row_no, row in records:
        try:
            if not isinstance(row, dict):
                raise RowProblem("malformed_row", "not a JSON object")
            cleaning.currency(row.get("currency"))
            ids = [(k, str(row[k]).strip()) for k in ("unionid", "openid") if str(row.get(k) or "").strip()]
            if phone := cleaning.phone(row.get("phone")):
                ids.append(("phone", phone))
            buyer = Buyer(key=f"{ids[0][0]}:{ids[0][1]}", identifiers=tuple(ids),
                          name=row.get("nickname") or None) if ids else None
            items = row.get("items")
            if not isinstance(items, list):
                raise RowProblem("missing_field", "no items list")
            lines = tuple(
                Line(sku=_required(i, "sku"), category=_required(i, "category"), qty=cleaning.quantity(i.get("qty")),
                     price=cleaning.price(i.get("price_fen"), scale=100))
                for i in items if isinstance(i, dict)
            )
            order_no = str(row.get("order_no") or "").strip()
            if not order_no:
                raise RowProblem("missing_field", "no order_no")
            yield row_no, row, _order("wechat", order_no, None, buyer, lines,
                                      cleaning.amount(row.get("total_fee"), "total_fee", scale=100),
                                      row.get("paid_at"), str(row.get("status", "")).upper() == "REFUND")
        except RowProblem as problem:
            yield row_no, row if isinstance(row, dict) else {"value": row}, problem
        except ValidationError as exc:
            yield row_no, row, RowProblem("malformed_row", str(exc.errors()[0]["msg"]))


def _members(rows: Iterable[tuple[int, dict]]) -> Iterator[Parsed]:
    for row_no, row in rows:
        try:
            ids = [(k, v) for k in ("member_card", "unionid") if (v := _get(row, k))]
            if phone := cleaning.phone(row.get("phone")):
                ids.append(("phone", phone))
            if not ids:
                raise RowProblem("missing_field", "no member_card, unionid or phone")
            store = _get(row, "store") or None
            if store is not None:
                _check_store(store)
            gender = {"f": "female", "female": "female", "女": "female", "m": "male", "male": "male",
                      "男": "male"}.get(_get(row, "gender").lower())
            yield row_no, row, Buyer(key=f"{ids[0][0]}:{ids[0][1]}", identifiers=tuple(ids),
                                     name=_get(row, "name") or None, gender=gender, store=store,
                                     face_consent=_get(row, "face_consent").lower() in ("1", "true", "yes", "是"),
                                     **member_facts(row.get("tier"), row.get("tags"), row.get("birthday"),
                                                    row.get("points"), row.get("signed_up"), row.get("address")))
        except RowProblem as problem:
            yield row_no, row, problem
        except ValidationError as exc:
            yield row_no, row, RowProblem("malformed_row", str(exc.errors()[0]["msg"]))


_TAG_SEPARATORS = re.compile(r"[,，;；|/、]")


def member_facts(tier: object, tags: object, birthday: object, points: object, signed_up: object,
                 address: object) -> dict:
    """What a member list says about the member beyond its identifiers, cleaned (Buyer's fields).

    Tags are split on ``, ， ; ； | / 、``; dates read as export dates (``2026/3/8``, ``2026年3月8日``,
    Excel serials); points are whole numbers (``1,200`` and ``1200.0`` read). A value that cannot be
    read is a row problem (``malformed_row``), never a silent None.
    """
    def text(value: object) -> str:
        cleaned = str(value or "").strip()
        return "" if cleaned in ("-", "——", "null", "NULL", "None") else cleaned

    def day(value: object, what: str) -> date | None:
        if not text(value):
            return None
        raw = text(value).split(" ")[0].split("T")[0]
        if re.fullmatch(r"\d{5}(\.\d+)?", raw):  # an Excel date serial that lost its format
            return (cleaning.EXCEL_EPOCH + timedelta(days=int(float(raw)))).date()
        for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y%m%d", "%Y.%m.%d"):
            try:
                return datetime.strptime(raw, fmt).date()
            except ValueError:
                continue
        raise RowProblem("malformed_row", f"unreadable {what} {text(value)!r}")

    points_text = text(points).replace(",", "")
    try:
        points_value = int(float(points_text)) if points_text else None
    except ValueError:
        raise RowProblem("malformed_row", f"unreadable points {points_text!r}") from None
    return {"tier": text(tier) or None,
            "tags": tuple(dict.fromkeys(t.strip() for t in _TAG_SEPARATORS.split(text(tags)) if t.strip())),
            "birthday": day(birthday, "birthday"), "points": points_value,
            "signed_up": day(signed_up, "sign-up date"), "address": text(address) or None}


def _csv_rows(text: str) -> Iterator[tuple[int, dict]]:
    yield from enumerate(csv.DictReader(io.StringIO(text)), start=2)


def _json_rows(text: str) -> Iterator[tuple[int, dict]]:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = json.loads(stripped)
        except json.JSONDecodeError as exc:
            yield 1, {"error": f"not JSON: {exc}"}
            return
        yield from enumerate(records, start=1)
        return
    for row_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield row_no, json.loads(line)
        except json.JSONDecodeError as exc:
            yield row_no, f"not JSON: {exc}: {line[:200]}"  # type: ignore[misc]


def parse(channel: str, text: str) -> Iterator[Parsed]:
    """Every row of a channel export, as an order, a buyer or a problem."""
    if channel == "tmall":
        return _line_orders("tmall", TMALL, _csv_rows(text))
    if channel == "jd":
        return _line_orders("jd", JD, _csv_rows(text))
    if channel == "pos":
        return _line_orders("pos", POS, _csv_rows(text))
    if channel == "wechat":
        return _wechat(_json_rows(text))
    if channel == "members":
        return _members(_csv_rows(text))
    raise ValueError(f"unknown channel {channel!r}")


def row_count(channel: str, text: str) -> int:
    """Roughly how many rows a file has, for the progress bar."""
    return max(1, text.count("\n") - (0 if channel == "wechat" else 1))
