"""Per-record purchase facts by local day (``purchase_days``): what segments sum instead of order lines.

A segment's purchase dimensions (``cloud.cdp.dimensions``: bought, order count, amount, units,
refunds, first/last purchase, by any / channel / store / category) used to group every order line
in the window at each count; at 1M members and 10M lines that is most of the table per condition.
Here each record's lines are pre-summed per local day (Asia/Shanghai) and per scope -- ``any`` (all
lines), one row per ``channel``, ``store`` (NULL store as ''), ``category`` -- with the net units,
the net amount, the distinct sale orders (an order lies in one day, so days add up), the refund
lines, and the first and last sale instant. A window is then whole days read from these rows plus,
when it starts or ends inside a day (a "last 90 days" window starts at the current instant 90 days
ago), that day's part read from the order lines, so every answer is the one the lines give.

The facts are per **record** (``members.id``), not per person: OneID merges and splits re-point
records to persons and the segment joins records to persons as before, so the facts follow without
being touched. They change with the lines, in the same transaction: ``add_lines`` (the one way
lines are written) adds the landing lines' sums; ``refresh`` recomputes the facts of records whose
lines were re-keyed or deleted (erasure re-keys them to an anonymous id). SKU scopes are not summed here: one SKU is a small slice the
``(sku, ts, member_id)`` index finds, and a per-SKU summary would be as large as the lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta, timezone
from typing import Literal

from cloud.db import Tx

LOCAL = timezone(timedelta(hours=8))  # the brand's days (Asia/Shanghai has no DST)
_OFFSET = 8 * 3600
_DAY = 86400

LINE_COLUMNS = ("order_id", "member_id", "channel", "store", "ts", "sku", "category", "qty", "price", "amount")
Measure = Literal["qty", "amount", "orders", "refunds", "first", "last"]
#: a measure over the order lines ``l`` of one record; the facts store each per day and scope
LINE_AGG: dict[str, str] = {
    "qty": "SUM(l.qty)",
    "amount": "SUM(l.amount)",
    "orders": "COUNT(DISTINCT CASE WHEN l.qty > 0 THEN l.order_id END)",
    "refunds": "SUM(CASE WHEN l.qty < 0 THEN 1 ELSE 0 END)",
    "first": "MIN(CASE WHEN l.qty > 0 THEN l.ts END)",
    "last": "MAX(CASE WHEN l.qty > 0 THEN l.ts END)",
}
#: the same measure over the facts ``f`` of several days
FACT_AGG: dict[str, str] = {"qty": "SUM(f.qty)", "amount": "SUM(f.amount)", "orders": "SUM(f.orders)",
                            "refunds": "SUM(f.refunds)", "first": "MIN(f.first_ts)", "last": "MAX(f.last_ts)"}
#: how per-record values (and the facts' and the lines' parts of one record) add up
COMBINE: dict[str, str] = {"qty": "SUM", "amount": "SUM", "orders": "SUM", "refunds": "SUM", "first": "MIN",
                           "last": "MAX"}
LINE_SCOPE: dict[str | None, str | None] = {None: None, "channel": "l.channel", "store": "l.store",
                                            "category": "l.category", "sku": "l.sku"}
_SUMMED = {None: ("'any'", "''"), "channel": ("'channel'", "l.channel"),
           "store": ("'store'", "COALESCE(l.store, '')"), "category": ("'category'", "l.category")}
_DAY_OF = f"(l.ts + {_OFFSET}) / {_DAY}"
_FACT_COLUMNS = "member_id, scope, value, day, qty, amount, orders, refunds, first_ts, last_ts"

TABLE = (
    """CREATE TABLE purchase_days (
        member_id TEXT NOT NULL, scope TEXT NOT NULL, value TEXT NOT NULL, day BIGINT NOT NULL,
        qty BIGINT NOT NULL, amount DOUBLE PRECISION NOT NULL, orders BIGINT NOT NULL, refunds BIGINT NOT NULL,
        first_ts BIGINT, last_ts BIGINT, PRIMARY KEY (member_id, scope, value, day))""",
    # a segment reads one scope's value over a window of days and sums per record: every column it
    # reads is in the index (PostgreSQL: an index-only scan; SQLite never visits the table), and the
    # records come in order, so the sum per record streams instead of sorting. Record before day: a
    # year's window reads every row of the scope anyway, and day first would sort them all (4.3 s
    # against 2.3 s at 100k members, load 13-16); a 30-day window costs about the same either way.
    "CREATE INDEX purchase_days_scan ON purchase_days (scope, value, member_id, day, qty, amount, orders, refunds, "
    "first_ts, last_ts)",
)


def _summing(where: str) -> str:
    """INSERT of the facts of the lines ``where`` selects (one pass per scope)."""
    measures = ", ".join(LINE_AGG[m] for m in ("qty", "amount", "orders", "refunds", "first", "last"))
    parts = [f"SELECT l.member_id, {scope}, {value}, {_DAY_OF}, {measures} FROM order_lines l "
             f"WHERE l.member_id IS NOT NULL{where} GROUP BY l.member_id, "
             + ("" if value == "''" else f"{value}, ") + _DAY_OF
             for scope, value in _SUMMED.values()]
    return f"INSERT INTO purchase_days ({_FACT_COLUMNS}) " + " UNION ALL ".join(parts)


#: the migration that creates the facts fills them from every line already stored
BACKFILL = _summing("")


def refresh(tx: Tx, records: Iterable[str]) -> None:
    """Recompute the facts of these records from their order lines (after their lines changed)."""
    for test, chunk in tx.among(sorted({r for r in records if r is not None})):
        tx.execute(f"DELETE FROM purchase_days WHERE member_id {test}", chunk)
        tx.execute(_summing(f" AND l.member_id {test}"), chunk * len(_SUMMED))


def add_lines(tx: Tx, rows: Iterable[Sequence]) -> None:
    """Store new order lines (``LINE_COLUMNS``; every line of an order in one call) and add them to
    their records' facts: the one way lines are written. The lines in hand are summed here and added
    to the stored days (an upsert through a staging table), so a landing batch costs its own size, not
    a re-read of its records' history (re-reading by record made PostgreSQL's bulk loads quadratic)."""
    rows = list(rows)
    tx.copy("order_lines", LINE_COLUMNS, rows)
    cells: dict[tuple, list] = {}
    for order_id, member_id, channel, store, ts, _sku, category, qty, _price, amount in rows:
        if member_id is None:
            continue
        day = (ts + _OFFSET) // _DAY
        for scope, value in (("any", ""), ("channel", channel), ("store", store or ""), ("category", category)):
            cell = cells.get((member_id, scope, value, day))
            if cell is None:
                cell = cells[(member_id, scope, value, day)] = [0, 0.0, set(), 0, None, None]
            cell[0] += qty
            cell[1] += amount
            if qty > 0:
                cell[2].add(order_id)
                cell[4] = ts if cell[4] is None else min(cell[4], ts)
                cell[5] = ts if cell[5] is None else max(cell[5], ts)
            else:
                cell[3] += qty < 0
    if not cells:
        return
    tx.execute(f"CREATE TEMP TABLE IF NOT EXISTS purchase_days_new AS SELECT {_FACT_COLUMNS} FROM purchase_days "
               "WHERE 1 = 0")
    tx.copy("purchase_days_new", _FACT_COLUMNS.split(", "), (
        (*key, qty, amount, len(orders), refunds, first, last)
        for key, (qty, amount, orders, refunds, first, last) in cells.items()))
    tx.execute(f"INSERT INTO purchase_days ({_FACT_COLUMNS}) SELECT {_FACT_COLUMNS} FROM purchase_days_new WHERE 1 = 1 "
               "ON CONFLICT (member_id, scope, value, day) DO UPDATE SET qty = purchase_days.qty + excluded.qty, "
               "amount = purchase_days.amount + excluded.amount, orders = purchase_days.orders + excluded.orders, "
               "refunds = purchase_days.refunds + excluded.refunds, "
               "first_ts = CASE WHEN purchase_days.first_ts IS NULL OR excluded.first_ts < purchase_days.first_ts "
               "THEN excluded.first_ts ELSE purchase_days.first_ts END, "
               "last_ts = CASE WHEN purchase_days.last_ts IS NULL OR excluded.last_ts > purchase_days.last_ts "
               "THEN excluded.last_ts ELSE purchase_days.last_ts END")
    tx.execute("DELETE FROM purchase_days_new")


def day_start(day: int) -> int:
    return day * _DAY - _OFFSET


def _days(start: int | None, end: int | None) -> tuple[int | None, int | None]:
    """The whole local days inside [start, end): first (inclusive) and last (exclusive) day numbers."""
    first = None if start is None else -(-(start + _OFFSET) // _DAY)
    last = None if end is None else (end + _OFFSET) // _DAY
    return first, last


def _bounded(column: str, lo: int | None, hi: int | None, where: list[str], args: list) -> None:
    """``lo <= column < hi`` for whichever bounds are given."""
    for bound, cmp in ((lo, ">="), (hi, "<")):
        if bound is not None:
            where.append(f"{column} {cmp} ?")
            args.append(bound)


def per_record(measure: Measure, scope: str | None, value: str | None, start: int | None, end: int | None,
               params: list) -> str:
    """SQL giving ``(member_id, v)`` rows: the measure over the record's lines in scope (``value`` of
    the ``scope`` column) with ``start <= ts < end`` (epoch seconds, either open). A record may appear
    in several rows (whole days, a partial first or last day); ``COMBINE[measure]`` adds them up."""
    column = LINE_SCOPE[scope]
    lines_where = [] if column is None else [f"{column} = ?"]
    lines_args: list = [] if column is None else [value]

    def from_lines(lo: int | None, hi: int | None) -> str:
        where, args = list(lines_where), list(lines_args)
        _bounded("l.ts", lo, hi, where, args)
        params.extend(args)
        return (f"SELECT l.member_id, {LINE_AGG[measure]} AS v FROM order_lines l "
                f"WHERE {' AND '.join(where) or '1 = 1'} GROUP BY l.member_id")

    if scope == "sku":
        return from_lines(start, end)
    first, last = _days(start, end)
    if first is not None and last is not None and last <= first:  # inside one day: the lines alone
        return from_lines(start, end)
    where = ["f.scope = ?", "f.value = ?"]
    params += [scope or "any", value if scope else ""]
    _bounded("f.day", first, last, where, params)
    parts = [f"SELECT f.member_id, {FACT_AGG[measure]} AS v FROM purchase_days f WHERE {' AND '.join(where)} "
             "GROUP BY f.member_id"]
    if first is not None and start is not None and start < day_start(first):
        parts.append(from_lines(start, day_start(first)))
    if last is not None and end is not None and end > day_start(last):
        parts.append(from_lines(day_start(last), end))
    return " UNION ALL ".join(parts)
