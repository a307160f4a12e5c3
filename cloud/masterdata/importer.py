"""Master data files into the tables the features read, with the orders' data-quality report and quarantine.

``import_master(db, kind, data, source=...)`` reads CSV (UTF-8 with or without BOM, GBK), .xls or
.xlsx (every sheet), maps columns by name with aliases (Chinese and English; the alias lists are
``KINDS[kind].aliases``), checks each row and writes the good ones in one transaction per batch.
A row that cannot be written goes to ``quarantine`` under an ``imports`` row of its own (channel
``master:<kind>``) with its reason; the report names the unknown and missing columns.

Kinds, their key and where they go (docs/DATA_IN.md has an example file of each):

- ``products``: sku -> ``products`` (name, category path and leaf category, brand, barcode, list
  price, member price, shelf life). A product already known keeps its price if the file has none.
  A JD product report (SKU, 品牌, 一级/二级/三级类目, 成交码洋 / 成交商品件数) reads as a catalogue: the
  list price is 码洋 (value at list price) per unit sold.
- ``stores``: store code -> ``stores`` (name, brand, city, city tier, region, format, time zone,
  opening hours, area, entrances, cameras).
- ``staff``: assistant id -> ``assistants`` (name, store, role, active). ``shifts``: assistant x day x
  start -> ``shifts``.
- ``targets``: store x day -> ``store_day_targets`` (sales, traffic, conversion); each month's
  sales targets are summed into ``store_targets``, which store health and the live screen read.
- ``stock``: store x day x sku -> ``stock_days`` (opening, received, sold, wasted, markdown loss).
- ``movements``: intraday receipts, sales, waste and transfers -> ``stock_movements`` (idempotent on
  store + movement number).
- ``batches``: store x sku x batch -> ``stock_batches`` (received, expires, quantity: the units on
  hand when the file is imported), which the markdown runner prices from; a floor price goes to
  the product's ``perishables`` row (with the earliest expiry in stock, for readers of that table).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloud.cdp.imports import tabular
from cloud.cdp.imports.cleaning import EXCEL_EPOCH, LOCAL_ZONE
from cloud.db import Database, Tx
from cloud.errors import Invalid
from protocol.topics import TopicError, check_id

MasterReason = Literal["missing_field", "bad_value", "unknown_store", "unknown_sku", "unknown_assistant"]
MASTER_REASONS: tuple[str, ...] = MasterReason.__args__  # type: ignore[attr-defined]
BATCH = 2000
UNCATEGORISED = "未分类"


class Problem(ValueError):
    def __init__(self, reason: MasterReason, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass
class MasterReport:
    import_id: int
    kind: str
    source: str
    rows: int = 0
    written: int = 0
    created: int = 0
    updated: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    file: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


# --- cell readers --------------------------------------------------------------------------------

_PATH_SPLIT = re.compile(r"\s*[>/|＞›»]\s*")
_HHMM = re.compile(r"^([01]?\d|2[0-4])[:：]([0-5]\d)$")


def _text(value: str) -> str | None:
    return value.strip() or None


def _need(value: str, name: str) -> str:
    if not value.strip():
        raise Problem("missing_field", f"no {name}")
    return value.strip()


def _number(value: str, name: str, *, integer: bool = False, minimum: float | None = 0) -> float | int | None:
    text = value.strip().replace(",", "").lstrip("¥￥").rstrip("元")
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise Problem("bad_value", f"{name} {value!r} is not a number") from None
    if number != number or abs(number) > 1e9 or (minimum is not None and number < minimum):
        raise Problem("bad_value", f"{name} {value!r} is out of range")
    if integer:
        if not number.is_integer():
            raise Problem("bad_value", f"{name} {value!r} is not a whole number")
        return int(number)
    return round(number, 2)


def _day(value: str, name: str) -> str:
    """A local calendar day as ISO: 2025-03-01, 2025/3/1, 2025年3月1日, an Excel serial, an xlsx datetime."""
    text = value.strip()
    if not text:
        raise Problem("missing_field", f"no {name}")
    if re.fullmatch(r"\d{5}(\.\d+)?", text):
        return (EXCEL_EPOCH + timedelta(days=float(text))).date().isoformat()
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日", "%Y.%m.%d"):
        try:
            return datetime.strptime(text.split(" ")[0].split("T")[0], fmt).date().isoformat()
        except ValueError:
            continue
    raise Problem("bad_value", f"{name} {value!r} is not a date")


def _clock(value: str, name: str) -> str:
    match = _HHMM.match(value.strip())
    if not match:
        raise Problem("bad_value", f"{name} {value!r} is not HH:MM")
    return f"{int(match[1]):02d}:{match[2]}"


def _span(value: str, name: str) -> tuple[str, str]:
    parts = re.split(r"\s*[-~–—至]\s*", value.strip())
    if len(parts) != 2:
        raise Problem("bad_value", f"{name} {value!r} is not HH:MM-HH:MM")
    return _clock(parts[0], name), _clock(parts[1], name)


def _moment(value: str, name: str) -> datetime:
    text = value.strip()
    if not text:
        raise Problem("missing_field", f"no {name}")
    if re.fullmatch(r"\d{5}(\.\d+)?", text):
        parsed = EXCEL_EPOCH + timedelta(days=float(text))
    else:
        try:
            parsed = datetime.fromisoformat(text.replace("/", "-"))
        except ValueError:
            raise Problem("bad_value", f"{name} {value!r} is not a time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LOCAL_ZONE)
    return parsed


def _store(value: str, ctx: Context, *, known: bool = True) -> str:
    store = _need(value, "store")
    try:
        check_id("store", store)
    except TopicError as exc:
        raise Problem("bad_value", str(exc)) from None
    if known and store not in ctx.stores:
        raise Problem("unknown_store", f"store {store} is not registered (import stores first)")
    return store


def _sku(value: str, ctx: Context) -> str:
    sku = _need(value, "sku")
    if sku not in ctx.skus:
        raise Problem("unknown_sku", f"product {sku} is not in the catalogue (import products first)")
    return sku


def _shelf_life(value: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(天|日|d|days?|个月|月|m|months?|年|y|years?)?", text, re.IGNORECASE)
    if not match:
        raise Problem("bad_value", f"shelf life {value!r} is not a number of days, months or years")
    unit = (match[2] or "天").lower()
    factor = 30 if unit[0] in "个月m" else 365 if unit[0] in "年y" else 1
    return round(float(match[1]) * factor)


# --- kinds ---------------------------------------------------------------------------------------


@dataclass
class Context:
    """What rows are checked against: known stores, products and assistants (growing as rows land)."""

    stores: set[str]
    skus: set[str]
    assistants: dict[str, str]
    flagged: Counter = field(default_factory=Counter)

    @classmethod
    def load(cls, db: Database) -> Context:
        return cls({r[0] for r in db.rows("SELECT id FROM stores")}, {r[0] for r in db.rows("SELECT sku FROM products")},
                   dict(db.rows("SELECT id, store FROM assistants")))


@dataclass(frozen=True)
class Kind:
    name: str
    aliases: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    parse: Callable[[Context, tabular.ColumnMap, dict], dict]
    write: Callable[[Tx, list[dict], int, Context], tuple[int, int]]  # -> (created, updated)


def _products(ctx: Context, c: tabular.ColumnMap, rec: dict) -> dict:
    sku = _need(c.get(rec, "sku"), "sku")
    path = [p for p in _PATH_SPLIT.split(c.get(rec, "category_path").strip()) if p]
    if not path:
        path = [v for level in ("category_1", "category_2", "category_3") if (v := c.get(rec, level).strip())]
    category = c.get(rec, "category").strip() or (path[-1] if path else None)
    price = _number(c.get(rec, "price"), "list price")
    if price is None and c.has("gross_list_value") and c.has("units_sold"):
        units = _number(c.get(rec, "units_sold"), "units sold")
        gross = _number(c.get(rec, "gross_list_value"), "gross value at list price")
        if units and gross is not None:
            price = round(gross / units, 2)
    member_price = _number(c.get(rec, "member_price"), "member price")
    if price is not None and member_price is not None and member_price > price:
        raise Problem("bad_value", f"member price {member_price:g} is above the list price {price:g}")
    known = sku in ctx.skus
    name = c.get(rec, "name").strip()
    if not known:
        if not name:
            raise Problem("missing_field", "no name for a new product")
        if price is None:
            raise Problem("missing_field", "no list price for a new product")
    barcode = c.get(rec, "barcode").strip() or None
    if barcode and not re.fullmatch(r"[0-9A-Za-z\-]{6,14}", barcode):
        ctx.flagged["barcode_unusable"] += 1  # e.g. an ISBN Excel turned into 9.78756922225897e+25
        barcode = None
    ctx.skus.add(sku)
    return {"sku": sku, "name": name or None, "category": category or (None if known else UNCATEGORISED),
            "category_path": ">".join(path) or None, "brand": _text(c.get(rec, "brand")), "barcode": barcode,
            "price": price, "member_price": member_price, "shelf_life_days": _shelf_life(c.get(rec, "shelf_life")),
            "_known": known}


def _write_products(tx: Tx, rows: list[dict], import_id: int, ctx: Context) -> tuple[int, int]:
    created = updated = 0
    for r in rows:
        if r["_known"] or tx.scalar("SELECT 1 FROM products WHERE sku = ?", (r["sku"],)):
            tx.execute(
                "UPDATE products SET name = COALESCE(?, name), category = COALESCE(?, category), "
                "category_path = COALESCE(?, category_path), brand = COALESCE(?, brand), barcode = COALESCE(?, barcode), "
                "price = COALESCE(?, price), member_price = COALESCE(?, member_price), "
                "shelf_life_days = COALESCE(?, shelf_life_days) WHERE sku = ?",
                (r["name"], r["category"], r["category_path"], r["brand"], r["barcode"], r["price"], r["member_price"],
                 r["shelf_life_days"], r["sku"]))
            updated += 1
        else:
            tx.execute(
                "INSERT INTO products (sku, name, category, price, popularity, is_new, member_price, barcode, brand, "
                "category_path, shelf_life_days) VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?)",
                (r["sku"], r["name"], r["category"], r["price"], r["member_price"], r["barcode"], r["brand"],
                 r["category_path"], r["shelf_life_days"]))
            created += 1
    return created, updated


def _stores(ctx: Context, c: tabular.ColumnMap, rec: dict) -> dict:
    store = _store(c.get(rec, "store"), ctx, known=False)
    zone = c.get(rec, "timezone").strip() or None
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise Problem("bad_value", f"time zone {zone!r} is not an IANA zone (Asia/Shanghai)") from None
    hours = c.get(rec, "opening_hours").strip()
    if hours:
        hours = "-".join(_span(hours, "opening hours"))
    known = store in ctx.stores
    name, brand = c.get(rec, "name").strip(), c.get(rec, "brand").strip()
    if not known and not (name and brand):
        raise Problem("missing_field", "a new store needs a name and a brand")
    ctx.stores.add(store)
    return {"id": store, "name": name or None, "brand": brand or None, "city": _text(c.get(rec, "city")),
            "city_tier": _text(c.get(rec, "city_tier")), "region": _text(c.get(rec, "region")),
            "format": _text(c.get(rec, "format")), "timezone": zone, "opening_hours": hours or None,
            "area_m2": _number(c.get(rec, "area_m2"), "area"),
            "entrances": _number(c.get(rec, "entrances"), "entrances", integer=True),
            "cameras": _number(c.get(rec, "cameras"), "cameras", integer=True), "_known": known}


_STORE_COLUMNS = ("name", "brand", "city", "city_tier", "region", "format", "timezone", "opening_hours", "area_m2",
                  "entrances", "cameras")


def _write_stores(tx: Tx, rows: list[dict], import_id: int, ctx: Context) -> tuple[int, int]:
    created = updated = 0
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    for r in rows:
        if tx.scalar("SELECT 1 FROM stores WHERE id = ?", (r["id"],)):
            sets = ", ".join(f"{col} = COALESCE(?, {col})" for col in _STORE_COLUMNS)
            tx.execute(f"UPDATE stores SET {sets} WHERE id = ?", (*(r[col] for col in _STORE_COLUMNS), r["id"]))
            updated += 1
        else:
            tx.execute(
                f"INSERT INTO stores (id, created, {', '.join(_STORE_COLUMNS)}) VALUES (?, ?, {', '.join('?' for _ in _STORE_COLUMNS)})",
                (r["id"], now, *(r[col] if col != "timezone" else (r[col] or "Asia/Shanghai") for col in _STORE_COLUMNS)))
            created += 1
    return created, updated


_ACTIVE_NO = {"0", "no", "false", "否", "离职", "停用", "inactive"}


def _staff(ctx: Context, c: tabular.ColumnMap, rec: dict) -> dict:
    assistant = _need(c.get(rec, "assistant"), "assistant id")
    store = _store(c.get(rec, "store"), ctx)
    name = _need(c.get(rec, "name"), "name")
    active = c.get(rec, "active").strip().lower() not in _ACTIVE_NO
    ctx.assistants[assistant] = store
    return {"id": assistant, "store": store, "name": name, "role": _text(c.get(rec, "role")), "active": int(active)}


def _write_staff(tx: Tx, rows: list[dict], import_id: int, ctx: Context) -> tuple[int, int]:
    known = {r[0] for r in tx.rows("SELECT id FROM assistants")}
    tx.executemany(
        "INSERT INTO assistants (id, store, name, role, active) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "store = excluded.store, name = excluded.name, role = COALESCE(excluded.role, assistants.role), "
        "active = excluded.active", [(r["id"], r["store"], r["name"], r["role"], r["active"]) for r in rows])
    updated = sum(r["id"] in known for r in rows)
    return len(rows) - updated, updated


def _shifts(ctx: Context, c: tabular.ColumnMap, rec: dict) -> dict:
    assistant = _need(c.get(rec, "assistant"), "assistant id")
    if assistant not in ctx.assistants:
        raise Problem("unknown_assistant", f"assistant {assistant} is not on the staff list (import staff first)")
    store = _store(c.get(rec, "store"), ctx) if c.get(rec, "store").strip() else ctx.assistants[assistant]
    if c.get(rec, "shift").strip():
        start, end = _span(c.get(rec, "shift"), "shift")
    else:
        start, end = _clock(_need(c.get(rec, "start"), "start"), "start"), _clock(_need(c.get(rec, "end"), "end"), "end")
    return {"assistant": assistant, "store": store, "day": _day(c.get(rec, "day"), "day"), "start": start, "end": end}


def _write_shifts(tx: Tx, rows: list[dict], import_id: int, ctx: Context) -> tuple[int, int]:
    tx.executemany(
        "INSERT INTO shifts (assistant, store, day, start_time, end_time, import_id) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (assistant, day, start_time) DO UPDATE SET store = excluded.store, end_time = excluded.end_time, "
        "import_id = excluded.import_id",
        [(r["assistant"], r["store"], r["day"], r["start"], r["end"], import_id) for r in rows])
    return len(rows), 0


def _targets(ctx: Context, c: tabular.ColumnMap, rec: dict) -> dict:
    store = _store(c.get(rec, "store"), ctx)
    day = _day(c.get(rec, "day"), "day")
    sales = _number(_need(c.get(rec, "sales"), "sales target"), "sales target")
    conversion_text = c.get(rec, "conversion").strip()
    conversion = None
    if conversion_text:
        conversion = _number(conversion_text.rstrip("%"), "conversion target")
        if conversion is not None and (conversion_text.endswith("%") or conversion > 1):
            conversion = round(conversion / 100, 4)
        if conversion is not None and conversion > 1:
            raise Problem("bad_value", f"conversion target {conversion_text!r} is above 100%")
    return {"store": store, "day": day, "sales": sales,
            "traffic": _number(c.get(rec, "traffic"), "traffic target", integer=True), "conversion": conversion}


def _write_targets(tx: Tx, rows: list[dict], import_id: int, ctx: Context) -> tuple[int, int]:
    write_day_targets(tx, rows, import_id)
    return len(rows), 0


def write_day_targets(tx: Tx, rows: list[dict], import_id: int | None) -> None:
    """Store x day targets (``store``, ``day``, ``sales``, ``traffic``, ``conversion``) into
    ``store_day_targets``, and each month they touch summed into ``store_targets``: the one way targets
    are written, so the live screen (a day's targets) and store health (a month's) agree whether the
    targets came from a brand's file or from the synthetic brand's bulk loader (``import_id`` None)."""
    tx.executemany(
        "INSERT INTO store_day_targets (store, day, sales, traffic, conversion, import_id) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (store, day) DO UPDATE SET sales = excluded.sales, traffic = excluded.traffic, "
        "conversion = excluded.conversion, import_id = excluded.import_id",
        [(r["store"], r["day"], r["sales"], r["traffic"], r["conversion"], import_id) for r in rows])
    for store, month in sorted({(r["store"], r["day"][:7]) for r in rows}):
        total = tx.scalar("SELECT SUM(sales) FROM store_day_targets WHERE store = ? AND day >= ? AND day <= ?",
                          (store, f"{month}-01", f"{month}-31"))
        tx.execute("INSERT INTO store_targets (store, month, sales_target) VALUES (?, ?, ?) "
                   "ON CONFLICT (store, month) DO UPDATE SET sales_target = excluded.sales_target", (store, month, total))


def _stock(ctx: Context, c: tabular.ColumnMap, rec: dict) -> dict:
    row: dict[str, Any] = {"store": _store(c.get(rec, "store"), ctx), "day": _day(c.get(rec, "day"), "day"),
                           "sku": _sku(c.get(rec, "sku"), ctx)}
    for name in ("opening", "received", "sold", "wasted"):
        row[name] = _number(c.get(rec, name), name, integer=True) or 0
    row["markdown_loss"] = _number(c.get(rec, "markdown_loss"), "markdown loss") or 0.0
    closing = _number(c.get(rec, "closing"), "closing stock", integer=True)
    if not c.get(rec, "opening").strip() and closing is not None:
        row["opening"] = closing - row["received"] + row["sold"] + row["wasted"]  # a closing-only snapshot
    if row["opening"] + row["received"] - row["sold"] - row["wasted"] < 0:
        raise Problem("bad_value", "sold and wasted exceed opening stock plus receipts")
    if closing is not None and closing != row["opening"] + row["received"] - row["sold"] - row["wasted"]:
        ctx.flagged["closing_mismatch"] += 1
    return row


def _write_stock(tx: Tx, rows: list[dict], import_id: int, ctx: Context) -> tuple[int, int]:
    tx.executemany(
        "INSERT INTO stock_days (store, day, sku, opening, received, sold, wasted, markdown_loss) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (store, day, sku) DO UPDATE SET opening = excluded.opening, received = excluded.received, "
        "sold = excluded.sold, wasted = excluded.wasted, markdown_loss = excluded.markdown_loss",
        [(r["store"], r["day"], r["sku"], r["opening"], r["received"], r["sold"], r["wasted"], r["markdown_loss"])
         for r in rows])
    return len(rows), 0


MOVEMENT_KINDS = {
    "receipt": "receipt", "入库": "receipt", "收货": "receipt", "到货": "receipt", "采购入库": "receipt",
    "sale": "sale", "销售": "sale", "销售出库": "sale",
    "waste": "waste", "报损": "waste", "损耗": "waste", "报废": "waste",
    "transfer_in": "transfer_in", "调入": "transfer_in", "调拨入库": "transfer_in",
    "transfer_out": "transfer_out", "调出": "transfer_out", "调拨出库": "transfer_out",
    "return": "return", "退货": "return", "退货入库": "return",
}


def _movements(ctx: Context, c: tabular.ColumnMap, rec: dict) -> dict:
    store, sku = _store(c.get(rec, "store"), ctx), _sku(c.get(rec, "sku"), ctx)
    raw_kind = _need(c.get(rec, "kind"), "movement type")
    kind = MOVEMENT_KINDS.get(raw_kind.lower())
    if kind is None:
        raise Problem("bad_value", f"movement type {raw_kind!r}; one of {', '.join(sorted(set(MOVEMENT_KINDS.values())))}")
    qty = _number(_need(c.get(rec, "qty"), "quantity"), "quantity", integer=True, minimum=None)
    if not qty:
        raise Problem("bad_value", "quantity 0")
    when = _moment(c.get(rec, "ts"), "time")
    ref = c.get(rec, "ref").strip() or "row:" + json.dumps([store, sku, when.isoformat(), kind, qty, c.get(rec, "batch")],
                                                           ensure_ascii=False)
    return {"store": store, "sku": sku, "ts": when.astimezone(UTC).isoformat(), "day": when.date().isoformat(),
            "kind": kind, "qty": abs(int(qty)), "batch": _text(c.get(rec, "batch")), "ref": ref}


def _write_movements(tx: Tx, rows: list[dict], import_id: int, ctx: Context) -> tuple[int, int]:
    before = tx.scalar("SELECT COUNT(*) FROM stock_movements")
    tx.executemany(
        "INSERT INTO stock_movements (store, sku, ts, day, kind, qty, batch, ref, import_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (store, ref) DO NOTHING",
        [(r["store"], r["sku"], r["ts"], r["day"], r["kind"], r["qty"], r["batch"], r["ref"], import_id) for r in rows])
    created = int(tx.scalar("SELECT COUNT(*) FROM stock_movements")) - int(before)
    if created < len(rows):
        ctx.flagged["movements_already_imported"] += len(rows) - created
    return created, 0


def _batches(ctx: Context, c: tabular.ColumnMap, rec: dict) -> dict:
    store, sku = _store(c.get(rec, "store"), ctx), _sku(c.get(rec, "sku"), ctx)
    expires = _day(c.get(rec, "expires_on"), "expiry date") if c.get(rec, "expires_on").strip() else None
    received = _day(c.get(rec, "received_on"), "received date") if c.get(rec, "received_on").strip() else None
    if expires and received and expires < received:
        raise Problem("bad_value", f"expires {expires} before it was received {received}")
    return {"store": store, "sku": sku, "batch": _need(c.get(rec, "batch"), "batch"), "expires_on": expires,
            "received_on": received, "qty": _number(_need(c.get(rec, "qty"), "quantity"), "quantity", integer=True),
            "floor_price": _number(c.get(rec, "floor_price"), "floor price")}


def _write_batches(tx: Tx, rows: list[dict], import_id: int, ctx: Context) -> tuple[int, int]:
    tx.executemany(
        "INSERT INTO stock_batches (store, sku, batch, received_on, expires_on, qty, import_id) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (store, sku, batch) DO UPDATE SET received_on = excluded.received_on, "
        "expires_on = excluded.expires_on, qty = excluded.qty, import_id = excluded.import_id",
        [(r["store"], r["sku"], r["batch"], r["received_on"], r["expires_on"], r["qty"], import_id) for r in rows])
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    floors = {(r["store"], r["sku"]): r["floor_price"] for r in rows if r["floor_price"] is not None}
    for (store, sku), floor in sorted(floors.items()):
        expires = tx.scalar("SELECT MIN(expires_on) FROM stock_batches WHERE store = ? AND sku = ? AND qty > 0 "
                            "AND expires_on IS NOT NULL", (store, sku))
        if expires is None:
            continue
        tx.execute(
            "INSERT INTO perishables (store, sku, expires_on, floor_price, updated, actor) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (store, sku) DO UPDATE SET expires_on = excluded.expires_on, floor_price = excluded.floor_price, "
            "updated = excluded.updated, actor = excluded.actor", (store, sku, expires, floor, now, f"import:{import_id}"))
        ctx.flagged["perishables_set"] += 1
    return len(rows), 0


_STORE = ("store", "store_code", "门店", "门店编码", "门店代码", "店铺编码", "店号")
_SKU = ("sku", "商品编码", "商家编码", "货号", "商品ID", "SKU编码", "SKU")
_DAY = ("day", "date", "日期", "业务日期", "营业日")

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("products", {
        "sku": _SKU, "barcode": ("barcode", "条码", "条形码", "商品条码", "69码", "ISBN"),
        "name": ("name", "商品名称", "品名", "名称", "标题"),
        "brand": ("brand", "品牌"), "category_path": ("category_path", "类目路径", "分类路径", "品类路径"),
        "category": ("category", "类目", "品类", "分类"),
        "category_1": ("一级类目", "一级分类", "大类名称", "大类"), "category_2": ("二级类目", "二级分类", "中类名称", "中类"),
        "category_3": ("三级类目", "三级分类", "小类名称", "小类"),
        "price": ("list_price", "price", "定价", "吊牌价", "零售价", "售价", "标价", "京东价", "商品单价"),
        "member_price": ("member_price", "会员价"), "shelf_life": ("shelf_life_days", "shelf_life", "保质期", "保质期(天)", "保质期天数"),
        "gross_list_value": ("成交码洋",), "units_sold": ("成交商品件数",),
    }, ("sku", "name"), _products, _write_products),
    Kind("stores", {
        "store": _STORE, "name": ("name", "门店名称", "店名", "店铺名称"), "brand": ("brand", "品牌"), "city": ("city", "城市"),
        "city_tier": ("city_tier", "城市等级", "城市级别", "城市线级"), "region": ("region", "大区", "区域"),
        "format": ("format", "业态", "店型", "门店类型"), "timezone": ("timezone", "time_zone", "时区"),
        "opening_hours": ("opening_hours", "营业时间"), "area_m2": ("area_m2", "area", "面积", "面积(㎡)", "营业面积"),
        "entrances": ("entrances", "入口数", "出入口"), "cameras": ("cameras", "摄像头数", "摄像头"),
    }, ("store", "name"), _stores, _write_stores),
    Kind("staff", {
        "assistant": ("assistant_id", "assistant", "id", "导购编号", "工号", "员工编号", "emp_id"), "name": ("name", "姓名", "导购姓名"),
        "store": _STORE, "role": ("role", "岗位", "职位", "角色"), "active": ("active", "在职", "状态", "在职状态"),
    }, ("assistant", "name", "store"), _staff, _write_staff),
    Kind("shifts", {
        "assistant": ("assistant_id", "assistant", "导购编号", "工号", "员工编号", "emp_id"), "store": _STORE, "day": _DAY,
        "start": ("start", "上班时间", "开始时间"), "end": ("end", "下班时间", "结束时间"), "shift": ("shift", "班次时间", "班次"),
    }, ("assistant", "day"), _shifts, _write_shifts),
    Kind("targets", {
        "store": _STORE, "day": _DAY, "sales": ("sales", "sales_target", "销售目标", "目标销售额", "业绩目标"),
        "traffic": ("traffic", "traffic_target", "客流目标", "进店目标"),
        "conversion": ("conversion", "conversion_target", "转化率目标", "成交率目标"),
    }, ("store", "day", "sales"), _targets, _write_targets),
    Kind("stock", {
        "store": _STORE, "day": _DAY, "sku": _SKU, "opening": ("opening", "期初库存", "期初"),
        "received": ("received", "入库", "收货", "入库数量"),
        "sold": ("sold", "销售", "销量", "销售数量"), "wasted": ("wasted", "报损", "损耗", "报损数量"),
        "markdown_loss": ("markdown_loss", "降价损失", "折价损失"), "closing": ("closing", "期末库存", "库存", "结存"),
    }, ("store", "day", "sku"), _stock, _write_stock),
    Kind("movements", {
        "store": _STORE, "sku": _SKU, "ts": ("ts", "time", "时间", "发生时间", "单据时间"),
        "kind": ("kind", "type", "类型", "业务类型", "单据类型"),
        "qty": ("qty", "quantity", "数量"), "batch": ("batch", "批次", "批次号", "批号"),
        "ref": ("ref", "movement_id", "单号", "单据号", "流水号"),
    }, ("store", "sku", "ts", "kind", "qty"), _movements, _write_movements),
    Kind("batches", {
        "store": _STORE, "sku": _SKU, "batch": ("batch", "批次", "批次号", "批号"),
        "expires_on": ("expires_on", "expiry", "到期日", "有效期至", "过期日期", "保质期至"),
        "received_on": ("received_on", "入库日期", "收货日期", "生产日期"), "qty": ("qty", "quantity", "数量", "库存数量"),
        "floor_price": ("floor_price", "最低价", "底价"),
    }, ("store", "sku", "batch", "qty"), _batches, _write_batches),
)}


# --- the import ----------------------------------------------------------------------------------


def import_master(db: Database, kind: str, data: bytes, *, source: str, actor: str = "import") -> MasterReport:
    """Import one master-data file; bad rows are quarantined, the answer is the data-quality report."""
    spec = KINDS.get(kind)
    if spec is None:
        raise Invalid(f"unknown kind {kind!r}; one of {', '.join(KINDS)}", code="unknown_kind")
    started = time.perf_counter()
    info = tabular.read_tables(data)
    sheets = []
    for table in info.tables:
        if not table.headers:
            continue
        columns = tabular.map_columns(table.headers, spec.aliases, required=spec.required)
        if len(columns.missing) == len(spec.required):
            raise Invalid(f"sheet {table.name!r} ({', '.join(table.headers[:12])}) has none of the {kind} columns: "
                          f"{', '.join(columns.missing)}", code="unknown_layout")
        sheets.append((table, columns))
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    import_id = int(db.scalar("INSERT INTO imports (channel, source_name, started) VALUES (?, ?, ?) RETURNING id",
                              (f"master:{kind}", source, now)))
    report = MasterReport(import_id=import_id, kind=kind, source=source)
    report.file = {**info.describe(), "sheets": [
        {"sheet": t.name, "rows": len(t.rows), **c.describe()} for t, c in sheets],
        "unknown_columns": sorted({u for _, c in sheets for u in c.unknown}),
        "missing_columns": sorted({m for _, c in sheets for m in c.missing})}
    ctx = Context.load(db)
    quarantined: Counter[str] = Counter()

    def rows() -> Iterator[tuple[str, int, dict, tabular.ColumnMap]]:
        for table, columns in sheets:
            for row_no, rec in table.records():
                yield table.name, row_no, rec, columns

    batch: list[tuple[str, int, dict, tabular.ColumnMap]] = []
    for item in rows():
        batch.append(item)
        if len(batch) >= BATCH:
            _write_batch(db, spec, batch, ctx, report, quarantined)
            batch = []
    _write_batch(db, spec, batch, ctx, report, quarantined)
    report.quarantined = dict(quarantined)
    report.flagged = dict(ctx.flagged)
    report.seconds = round(time.perf_counter() - started, 3)
    db.execute("UPDATE imports SET finished = ?, rows_read = ?, orders = ?, quarantined = ?, report = ? WHERE id = ?",
               (datetime.now(UTC).isoformat(timespec="microseconds"), report.rows, report.written,
                sum(quarantined.values()), json.dumps(report.as_dict(), ensure_ascii=False), import_id))
    return report


def _write_batch(db: Database, spec: Kind, batch: list, ctx: Context, report: MasterReport,
                 quarantined: Counter[str]) -> None:
    if not batch:
        return
    good: list[dict] = []
    bad: list[tuple] = []
    for sheet, row_no, rec, columns in batch:
        report.rows += 1
        try:
            good.append(spec.parse(ctx, columns, rec))
        except Problem as problem:
            quarantined[problem.reason] += 1
            raw = dict(rec) if sheet == "csv" else {**rec, "_sheet": sheet}
            bad.append((report.import_id, row_no, problem.reason, problem.detail, json.dumps(raw, ensure_ascii=False)))
    with db.transaction() as tx:
        created, updated = spec.write(tx, good, report.import_id, ctx)
        tx.copy("quarantine", ("import_id", "row_no", "reason", "detail", "raw"), bad)
    report.written += len(good)
    report.created += created
    report.updated += updated
