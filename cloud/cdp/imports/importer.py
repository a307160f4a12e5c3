"""One channel export into the CDP: buyers become records, orders land, OneID links, tags update.

Rows are written in batches, each batch one transaction: a crash leaves whole batches and the
import row says how far it got. Every row that cannot be imported is stored in ``quarantine``
with its reason and the raw row; the report counts rows in = orders + quarantined. Re-importing a
file quarantines its orders as ``duplicate_order`` rather than double-counting them.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cloud.cdp import oneid, purchases, tags, tombstones
from cloud.cdp.imports import adapters, layouts, tabular
from cloud.cdp.imports.canonical import CHANNELS, Buyer, Order
from cloud.cdp.imports.cleaning import LOCAL_ZONE, RowProblem
from cloud.cdp.survivorship import DEFAULT_TIER
from cloud.db import Database, Tx
from cloud.errors import Invalid

BATCH = 2000
#: a refund with its own number is matched to a sale of the same buyer at most this many days before
REFUND_WINDOW_DAYS = 90
PROGRESS_MIN_ROWS = 2000


@dataclass
class ImportReport:
    import_id: int
    channel: str
    source: str
    rows: int = 0
    orders: int = 0
    refunds: int = 0
    lines: int = 0
    buyers_new: int = 0
    buyers_known: int = 0
    #: orders and member rows from before an erasure naming the erased person: landed anonymous / dropped
    buyers_erased: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    blocked_identifiers: dict[str, int] = field(default_factory=dict)
    persons_changed: int = 0
    seconds: float = 0.0
    #: real layouts: the format and encoding found, each sheet's layout, mapped, unknown and missing
    #: columns, and what was flagged or defaulted (masked phones, rounded order ids, ...)
    file: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


#: A row to quarantine: its number, raw cells, the problem, and the order it became (None: it never did).
Problem = tuple[int, dict, RowProblem, Order | None]
#: A quarantined row's detail when it named an erased person (its raw content is not kept either).
_ERASED_DETAIL = "names an erased person: content not kept"

#: NUL, the other C0 controls and DEL (tab and line breaks may stand in a cell).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _has_control(value: object) -> bool:
    if isinstance(value, str):
        return _CONTROL.search(value) is not None
    if isinstance(value, dict):
        return any(_has_control(k) or _has_control(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_control(v) for v in value)
    return False


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def _signed_up(day: date) -> datetime:
    """A sign-up date as the start of that day in China Standard Time."""
    return datetime.combine(day, datetime.min.time(), tzinfo=LOCAL_ZONE)


class Importer:
    def __init__(self, db: Database, channel: str, source: str, *, actor: str = "import") -> None:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
        self._db, self._channel, self._actor = db, channel, actor
        source = _CONTROL.sub("", source)  # an upload's file name is the caller's text too
        started = datetime.now(UTC)
        import_id = db.scalar(
            "INSERT INTO imports (channel, source_name, started) VALUES (?, ?, ?) RETURNING id",
            (channel, source, _iso(started)),
        )
        self.report = ImportReport(import_id=int(import_id), channel=channel, source=source)
        self._quarantined: Counter[str] = Counter()
        self._blocked: Counter[str] = Counter()
        self._seen_orders: set[str] = set()
        # of the batch being written: the orders it names (its own, and those its refunds return)
        # that are already in the table
        self._stored: set[str] = set()
        self._persons: set[str] = set()
        # refunds with their own number, linked to the sale they return (by reference or by match)
        self._refund_links: dict[str, str] = {}
        self._sales: dict[str, list[tuple[str, datetime, float, frozenset[str]]]] = {}
        self._refunded: dict[str, float] = {}

    def run(self, text: str, *, progress: bool = False) -> ImportReport:
        return self.run_items(adapters.parse(self._channel, text), adapters.row_count(self._channel, text),
                              progress=progress)

    def run_plan(self, plan: layouts.Plan, *, progress: bool = False) -> ImportReport:
        """A file read in its real layout (``layouts.plan``): its column report goes into the report."""
        report = self.run_items(plan.items, plan.rows, progress=progress)
        report.file = plan.describe()
        self._db.execute("UPDATE imports SET report = ? WHERE id = ?",
                         (json.dumps(report.as_dict(), ensure_ascii=False), report.import_id))
        return report

    def run_items(self, items: Iterable[adapters.Parsed] | Iterable[layouts.Parsed], total: int, *,
                  progress: bool = False) -> ImportReport:
        """Write parsed rows: an item is an order, a buyer, a problem, or a tuple of them (a sale and its refund)."""
        started = time.perf_counter()
        show = progress and total >= PROGRESS_MIN_ROWS
        bar = Progress(TextColumn(f"importing {self._channel}"), BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn(), console=Console(stderr=True), transient=True, disable=not show)
        with bar:
            task = bar.add_task("rows", total=total)
            batch: list[tuple[int, dict, object]] = []
            for parsed in items:
                batch.append(parsed)
                if len(batch) >= BATCH:
                    self._write(batch)
                    bar.update(task, completed=self.report.rows)
                    batch = []
            self._write(batch)
            bar.update(task, completed=total)
        tags.refresh(self._db, sorted(self._persons))
        self.report.quarantined = dict(self._quarantined)
        self.report.blocked_identifiers = dict(self._blocked)
        self.report.persons_changed = len(self._persons)
        self.report.seconds = round(time.perf_counter() - started, 3)
        self._db.execute(
            "UPDATE imports SET finished = ?, rows_read = ?, orders = ?, quarantined = ?, report = ? WHERE id = ?",
            (_iso(datetime.now(UTC)), self.report.rows, self.report.orders,
             sum(self._quarantined.values()), json.dumps(self.report.as_dict(), ensure_ascii=False),
             self.report.import_id),
        )
        return self.report

    def _write(self, batch: list[tuple[int, dict, object]]) -> None:
        if not batch:
            return
        with self._db.transaction() as tx:
            problems: list[Problem] = []
            orders: list[Order] = []
            buyers: list[Buyer] = []
            # the batch's orders and its refunds' orders already stored, in one query (not one per order)
            named = {i for _, _, item in batch for one in (item if isinstance(item, tuple) else (item,))
                     if isinstance(one, Order) for i in (one.id, one.refund_of) if i}
            self._stored = {r[0] for test, params in tx.among(sorted(named))
                            for r in tx.rows(f"SELECT id FROM orders WHERE id {test}", params)}
            for row_no, raw, item in batch:
                self.report.rows += len(raw["rows"]) if "rows" in raw and isinstance(raw["rows"], list) else 1
                if _has_control(raw):  # PostgreSQL refuses NUL in text; no cell needs a control character
                    item = RowProblem("control_characters", "a cell holds NUL or another control character")
                for one in item if isinstance(item, tuple) else (item,):  # a sale and its refund, from one row
                    if isinstance(one, RowProblem):
                        problems.append((row_no, raw, one, None))
                    elif isinstance(one, Order):
                        problem = self._check(tx, one)
                        if problem:
                            problems.append((row_no, raw, problem, one))
                        else:
                            orders.append(one)
                    else:
                        buyers.append(one)
            # OneID's lock from the tombstone read on, not only for the resolution at the end: the
            # batch's records and their persons' purchase facts are written against what it reads
            # now, and an erasure or a rebuild meanwhile would leave a record of an erased person
            # alive, or facts under a person that is gone. The rows are parsed and checked before it,
            # beside other batches (taken at the transaction's start, it cost the order stream ~10%)
            oneid.lock(tx)
            orders, buyers = self._without_erased(tx, orders, buyers)
            first_seen: dict[str, datetime] = {}
            last_seen: dict[str, datetime] = {}
            for o in orders:
                if o.buyer:
                    first_seen[o.buyer.key] = min(o.ts, first_seen.get(o.buyer.key, o.ts))
                    last_seen[o.buyer.key] = max(o.ts, last_seen.get(o.buyer.key, o.ts))
            # a member list's row says more than an order's buyer: it goes last, so its facts win
            records = self._records(tx, [o.buyer for o in orders if o.buyer] + buyers, first_seen=first_seen,
                                    last_seen=last_seen)
            self._store_orders(tx, orders, records)
            self._quarantine(tx, problems)
            if records:
                resolution = oneid.resolve_around(tx, sorted(set(records.values())), actor=self._actor)
                self._persons |= resolution.changed_persons
                for test, params in tx.among(sorted(set(records.values()))):
                    self._persons.update(r[0] for r in tx.rows(
                        f"SELECT COALESCE(merged_into, id) FROM members WHERE id {test}", params))

    def _without_erased(self, tx: Tx, orders: list[Order], buyers: list[Buyer]) -> tuple[list[Order], list[Buyer]]:
        """An erased person's data from before their erasure (``cloud.cdp.tombstones``): an order paid
        before it lands as an anonymous sale, a member-list row signed up before it is dropped; from
        after it, the customer came back and is new."""
        erased = tombstones.erased_buyers(tx, self._channel, [o.buyer for o in orders if o.buyer] + buyers)
        if not erased:
            return orders, buyers
        kept_orders = [o.model_copy(update={"buyer": None}) if _paid_before_erasure(o, erased) else o for o in orders]
        kept_buyers = [b for b in buyers if b.key not in erased
                       or (b.signed_up is not None and _signed_up(b.signed_up) > erased[b.key])]
        self.report.buyers_erased += sum(a is not b for a, b in zip(orders, kept_orders, strict=True))
        self.report.buyers_erased += len(buyers) - len(kept_buyers)
        return kept_orders, kept_buyers

    def _check(self, tx: Tx, order: Order) -> RowProblem | None:
        if order.id in self._seen_orders or order.id in self._stored:
            return RowProblem("duplicate_order", f"order {order.id} was already imported")
        if order.refund_of and order.refund_of not in self._seen_orders and order.refund_of not in self._stored:
            original = self._refunded_order(tx, order)
            if original is None:
                return RowProblem("refund_without_order",
                                  f"refund of unknown order {order.refund_of}, and no sale of its buyer with its "
                                  f"products and at least its amount in the {REFUND_WINDOW_DAYS} days before it")
            self._refund_links[order.id] = original
        self._seen_orders.add(order.id)
        if not order.refund and order.buyer is not None:
            self._sales.setdefault(order.buyer.key, []).append(
                (order.id, order.ts, order.paid, frozenset(line.sku for line in order.lines)))
        return None

    def _refunded_order(self, tx: Tx, refund: Order) -> str | None:
        """The sale a refund with its own number returns: the same buyer's (or person's) most recent
        sale holding every refunded product, paid at least the refunded amount, not yet fully
        refunded, within ``REFUND_WINDOW_DAYS`` before the refund."""
        if refund.buyer is None:
            return None
        skus = frozenset(line.sku for line in refund.lines)
        amount = abs(refund.paid)
        earliest = refund.ts - timedelta(days=REFUND_WINDOW_DAYS)
        found: list[tuple[datetime, str, float]] = [
            (ts, order_id, paid) for order_id, ts, paid, sold in self._sales.get(refund.buyer.key, [])
            if earliest <= ts <= refund.ts and skus <= sold and paid + 0.005 >= amount]
        record = tx.scalar("SELECT COALESCE(merged_into, id) FROM members WHERE source = ? AND source_key = ?",
                           (self._channel, refund.buyer.key))
        if record is not None:
            sku_marks = ", ".join("?" for _ in skus)
            having = (f"AND o.id IN (SELECT order_id FROM order_lines WHERE sku IN ({sku_marks}) GROUP BY order_id "
                      f"HAVING COUNT(DISTINCT sku) = ?)") if skus else ""
            for order_id, ts, paid in tx.rows(
                f"SELECT o.id, o.ts, o.paid FROM orders o JOIN members m ON m.id = o.member_id "
                f"WHERE COALESCE(m.merged_into, m.id) = ? AND o.status = 'paid' AND o.ts BETWEEN ? AND ? "
                f"AND o.paid >= ? {having}",
                (record, int(earliest.timestamp()), int(refund.ts.timestamp()), amount - 0.005,
                 *((*sorted(skus), len(skus)) if skus else ())),
            ):
                found.append((datetime.fromtimestamp(ts, UTC), order_id, paid))
        for _, order_id, paid in sorted(found, reverse=True):
            refunded = self._refunded.get(order_id, 0.0) + abs(float(tx.scalar(
                "SELECT COALESCE(SUM(paid), 0) FROM orders WHERE refund_of = ? AND import_id <> ?",
                (order_id, self.report.import_id)) or 0))
            if refunded + amount <= paid + 0.005:
                self._refunded[order_id] = self._refunded.get(order_id, 0.0) + amount
                return order_id
        return None

    def _records(self, tx: Tx, buyers: Iterable[Buyer], first_seen: dict[str, datetime],
                 last_seen: dict[str, datetime] | None = None) -> dict[str, str]:
        """Buyer key -> member record id, creating records for buyers seen for the first time."""
        unique = {b.key: b for b in buyers}
        last_seen = last_seen or {}
        found: dict[str, str] = {}
        for test, params in tx.among(sorted(unique)):
            found.update(tx.rows(f"SELECT source_key, id FROM members WHERE source = ? AND source_key {test}",
                                 (self._channel, *params)))
        # a returning buyer's identifiers are mostly held already: only the others are inserted below
        # (a statement each, ON CONFLICT for a concurrent import of the same buyer)
        held = {r for test, params in tx.among(sorted(found.values()))
                for r in tx.rows(f"SELECT member_id, kind, value FROM identifiers WHERE member_id {test}", params)}
        blocklist = oneid.Blocklist.load(tx)
        now = datetime.now(UTC)
        new_rows, known_rows = [], []
        for key, buyer in unique.items():
            seen = _iso(last_seen.get(key, now))
            facts = (buyer.birthday.isoformat() if buyer.birthday else None, buyer.points, buyer.address,
                     buyer.signed_up.isoformat() if buyer.signed_up else None)
            tags_json = json.dumps(list(buyer.tags), ensure_ascii=False)
            if key not in found:
                member_id = oneid.new_record_id()
                found[key] = member_id
                # a member known since its sign-up date is that old, not as old as this import
                since = _signed_up(buyer.signed_up) if buyer.signed_up else first_seen.get(key, now)
                new_rows.append((member_id, self._channel, key, buyer.name, buyer.gender, buyer.tier or DEFAULT_TIER,
                                 tags_json, "[]", buyer.face_consent, buyer.store, _iso(since), *facts, seen))
            else:  # what this file says replaces what the record said; what it does not say stays
                known_rows.append((buyer.name, buyer.gender, buyer.tier, tags_json, tags_json, buyer.store, *facts,
                                   seen, seen, found[key]))
        tx.copy("members", ("id", "source", "source_key", "name", "gender", "tier", "tags", "preferences",
                            "face_consent", "home_store", "created", "birthday", "points", "address", "signed_up",
                            "seen"), new_rows)
        tx.executemany(
            "UPDATE members SET name = COALESCE(?, name), gender = COALESCE(?, gender), tier = COALESCE(?, tier), "
            "tags = CASE WHEN ? = '[]' THEN tags ELSE ? END, home_store = COALESCE(?, home_store), "
            "birthday = COALESCE(?, birthday), points = COALESCE(?, points), address = COALESCE(?, address), "
            "signed_up = COALESCE(?, signed_up), seen = CASE WHEN seen IS NULL OR seen < ? THEN ? ELSE seen END "
            "WHERE id = ?", known_rows)
        self.report.buyers_new += len(new_rows)
        self.report.buyers_known += len(unique) - len(new_rows)
        ids = []
        for key, buyer in unique.items():
            for kind, value in buyer.identifiers:
                reason = blocklist.reason(kind, value)
                if reason:
                    self._blocked[reason] += 1
                if (found[key], kind, value) not in held:
                    ids.append((found[key], kind, value, reason, _iso(now)))
        tx.executemany(
            "INSERT INTO identifiers (member_id, kind, value, blocked, created) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING", ids)
        return found

    def _store_orders(self, tx: Tx, orders: list[Order], records: dict[str, str]) -> None:
        order_rows, line_rows = [], []
        for o in orders:
            member_id = records[o.buyer.key] if o.buyer else None
            ts = int(o.ts.timestamp())
            order_rows.append((o.id, o.channel, o.order_no, o.store, member_id, ts, o.paid,
                               "refund" if o.refund else "paid", self._refund_links.get(o.id, o.refund_of),
                               self.report.import_id))
            sign = -1 if o.refund else 1
            line_rows += [(o.id, member_id, o.channel, o.store, ts, line.sku, line.category, sign * line.qty,
                           line.price, sign * round(line.qty * line.price, 2)) for line in o.lines]
            self.report.refunds += o.refund
        tx.copy("orders", ("id", "channel", "order_no", "store", "member_id", "ts", "paid", "status", "refund_of",
                           "import_id"), order_rows)
        purchases.add_lines(tx, line_rows)
        self.report.orders += len(orders)
        self.report.lines += len(line_rows)

    def _quarantine(self, tx: Tx, problems: list[Problem]) -> None:
        """Rows that cannot land, kept with their reason and raw content for review; a row naming an
        erased person keeps its reason only: an order's buyer erased after it was paid (the landing's
        own rule, ``_without_erased``), or a row that never became an order naming an erased
        identifier no record holds now (``tombstones.erased_rows``)."""
        for _, _, problem, _ in problems:
            self._quarantined[problem.reason] += 1
        buyers = [order.buyer for *_, order in problems if order is not None and order.buyer is not None]
        dated = tombstones.erased_buyers(tx, self._channel, buyers)
        erased = {i for i, (*_, order) in enumerate(problems) if order is not None and _paid_before_erasure(order, dated)}
        unparsed = [i for i, (*_, order) in enumerate(problems) if order is None]
        erased |= {unparsed[k] for k in tombstones.erased_rows(tx, [problems[i][1] for i in unparsed])}
        tx.copy("quarantine", ("import_id", "row_no", "reason", "detail", "raw"), [
            (self.report.import_id, row_no, p.reason, _ERASED_DETAIL, json.dumps({"erased": True})) if i in erased
            else (self.report.import_id, row_no, p.reason, p.detail, json.dumps(raw, ensure_ascii=False, default=str))
            for i, (row_no, raw, p, _) in enumerate(problems)])


def _paid_before_erasure(order: Order, erased: dict[str, datetime]) -> bool:
    """Whether the order's buyer was erased (``tombstones.erased_buyers``) after the order was paid: the
    order is theirs, and neither lands on a person nor keeps their data in the quarantine."""
    return order.buyer is not None and order.buyer.key in erased and order.ts <= erased[order.buyer.key]


def decode_upload(data: bytes) -> str:
    """An uploaded export as text: UTF-8 with or without a byte-order mark, or GBK."""
    return tabular.decode_text(data)[0]


#: the headers of the canonical single-file layouts (``adapters``) that mark a file as written in them
_CANONICAL = {
    "tmall": {"订单编号", "付款时间", "实付金额", "商品编码"},
    "jd": {"订单号", "用户PIN", "商品ID", "单价"},
    "pos": {"receipt_no", "sku"},
    "members": {"face_consent"},
}


def _canonical(channel: str, headers: Iterable[str]) -> bool:
    present = set(headers)
    if channel == "wechat":
        return True
    if channel == "members":
        return bool(present & {"member_card", "unionid", "face_consent"})
    return channel in _CANONICAL and _CANONICAL[channel] <= present


def import_file(db: Database, channel: str, data: bytes, *, source: str, companion: bytes | None = None,
                store: str | None = None, progress: bool = False, actor: str = "import") -> ImportReport:
    """Import one export as the channel wrote it: CSV (UTF-8, UTF-8 with BOM, GBK), .xls or .xlsx.

    ``companion`` is the file joined to it (宝贝报表 for a Taobao 订单报表, the order headers for POS
    lines); ``store`` is the store of a POS export that names none; a line without a category takes
    the catalogue's (``products.category``), as a streamed order's does. Files in the canonical layouts
    (``adapters``) and WeChat JSON take the canonical path.
    """
    if channel not in CHANNELS:
        raise Invalid(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}", code="unknown_channel")
    if channel == "wechat":
        return Importer(db, channel, source, actor=actor).run(decode_upload(data), progress=progress)
    info = tabular.read_tables(data)
    if (companion is None and info.format == "csv" and len(info.tables) == 1
            and _canonical(channel, info.tables[0].headers)):
        return Importer(db, channel, source, actor=actor).run(decode_upload(data), progress=progress)
    files = [info] + ([tabular.read_tables(companion)] if companion is not None else [])
    catalogue = dict(db.rows("SELECT sku, category FROM products WHERE category IS NOT NULL AND category <> ''"))
    plan = layouts.plan(channel, files, store=store, categories=catalogue)
    return Importer(db, channel, source, actor=actor).run_plan(plan, progress=progress)


def import_text(db: Database, channel: str, text: str, *, source: str, progress: bool = False,
                actor: str = "import", store: str | None = None) -> ImportReport:
    """An export already read as text: canonical layouts as before, real layouts by their headers."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    headers = [tabular.clean_header(h) for h in first.split(",")]
    if channel not in CHANNELS or _canonical(channel, headers):
        return Importer(db, channel, source, actor=actor).run(text, progress=progress)
    return import_file(db, channel, text.encode("utf-8"), source=source, store=store, progress=progress, actor=actor)
