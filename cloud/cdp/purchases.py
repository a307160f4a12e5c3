"""Per-record purchase facts by local day (``purchase_days``): what segments sum instead of order lines.

A segment's purchase dimensions (``cloud.cdp.dimensions``: bought, order count, amount, units,
refunds, first/last purchase, by any / channel / store / category) used to group every order line
in the window at each count; at 1M members and 10M lines that is most of the table per condition.
Here each record's lines are pre-summed per local day (Asia/Shanghai) and per scope -- ``any`` (all
lines), one row per ``channel``, ``store`` (only lines with a store: a dimension's store is never
empty, so a row for an online order's missing store answered nothing, and it was a fifth of the rows
OneID moves when online buyers join their members), ``category`` -- with the net units, the net
amount, the distinct sale orders (an order lies in one day, so days add up), the refund lines, and
the first and last sale instant. A window is then whole days read from these rows plus,
when it starts or ends inside a day (a "last 90 days" window starts at the current instant 90 days
ago), that day's part read from the order lines, so every answer is the one the lines give.

The facts are kept twice: per **record** (``purchase_days``, ``members.id``), the source, and per
**person** (``person_purchase_days``, the OneID head ``COALESCE(merged_into, id)``), which segments
read: a condition then groups one table once, in index order, instead of joining every buying
record to its person and grouping again (the year-wide amount condition at 1M persons spent most of
its 2.5 s CPU in that join and second grouping). Both change with the lines, in the same
transaction: ``add_lines`` (the one way lines are written) adds the landing lines' sums to both;
``refresh`` recomputes the facts of records whose lines were re-keyed or deleted (erasure re-keys
them to an anonymous id) and of their persons. When OneID moves records between persons it calls
``follow``, which re-sums the persons that lost a record and adds the moved records' facts to
the persons that only gained (a full rebuild too: its work is the records that moved, each step one
statement). A record without a ``members`` row counts as its own person, as ``COALESCE`` gives. SKU
scopes are not summed here: one SKU is a small slice the ``(sku, ts, member_id)`` index finds, and a
per-SKU summary would be as large as the lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta, timezone
from typing import Literal

from cloud.db import Tx
from cloud.db.database import SQLITE
from cloud.db.migrations import Only

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
#: scope -> (its name, its value, which lines have one)
_SUMMED = {None: ("'any'", "''", ""), "channel": ("'channel'", "l.channel", ""),
           "store": ("'store'", "l.store", " AND l.store <> ''"), "category": ("'category'", "l.category", "")}
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

PERSON_TABLE = (
    """CREATE TABLE person_purchase_days (
        person_id TEXT NOT NULL, scope TEXT NOT NULL, value TEXT NOT NULL, day BIGINT NOT NULL,
        qty BIGINT NOT NULL, amount DOUBLE PRECISION NOT NULL, orders BIGINT NOT NULL, refunds BIGINT NOT NULL,
        first_ts BIGINT, last_ts BIGINT, PRIMARY KEY (person_id, scope, value, day))""",
    # what a segment condition reads (the record facts' scan index, now keyed by person): one scope's
    # value over a window, every column in the index, persons in order so the sum per person streams
    "CREATE INDEX person_purchase_days_scan ON person_purchase_days (scope, value, person_id, day, qty, amount, "
    "orders, refunds, first_ts, last_ts)",
    # the record facts are now read only by record (their primary key), to re-sum persons
    "DROP INDEX purchase_days_scan",
)


def _clustered(create: str, table: str, key: str, indexes: tuple[str, ...] = ()) -> tuple[str, ...]:
    """SQLite's rebuild of a fact table (``create``: its CREATE TABLE; ``key``: its primary key's
    columns; ``indexes``: its other indexes, made again) as a ``WITHOUT ROWID`` table, stored in its
    primary key's order: the key is the table, not an index beside it pointing into a third B-tree."""
    return (
        create.replace(f"CREATE TABLE {table} (", f"CREATE TABLE {table}_clustered (", 1) + " WITHOUT ROWID",
        f"INSERT INTO {table}_clustered SELECT * FROM {table} ORDER BY {key}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_clustered RENAME TO {table}",
        *indexes,
        f"ANALYZE {table}",  # the dropped table's statistics went with it
    )


#: both fact tables kept by their primary key alone on SQLite (a ``WITHOUT ROWID`` table is its key's
#: B-tree). Every write and most reads go by that key: OneID's first resolution of a 1M brand deletes
#: the 679k moved records' person rows and upserts 2.1M summed rows, each a write to the table, its key
#: and the scan index, and reads the moved records' 2.1M record rows through the key and then the
#: table by rowid. Clustered, it wrote two B-trees instead of three and read one: the rebuild took
#: 54.2 s against 62.1 s (the delete 2.8 against 5.9 s, the upsert 13.9 against 18.3 s; PERFORMANCE.md,
#: sixth pass). A probe of one person's days reads its amounts from the key's own rows. PostgreSQL has
#: no such table (its heap is always beside the key; CLUSTER orders it once and is not kept).
CLUSTERED = tuple(Only("sqlite", statement) for statement in (
    *_clustered(TABLE[0], "purchase_days", "member_id, scope, value, day"),
    *_clustered(PERSON_TABLE[0], "person_purchase_days", "person_id, scope, value, day", (PERSON_TABLE[1],)),
))


def _summing(where: str, scopes: Iterable[tuple[str, str, str]] = _SUMMED.values()) -> str:
    """INSERT of the facts of the lines ``where`` selects (one pass per scope)."""
    measures = ", ".join(LINE_AGG[m] for m in ("qty", "amount", "orders", "refunds", "first", "last"))
    parts = [f"SELECT l.member_id, {scope}, {value}, {_DAY_OF}, {measures} FROM order_lines l "
             f"WHERE l.member_id IS NOT NULL{where}{lines_with_one} GROUP BY l.member_id, "
             + ("" if value == "''" else f"{value}, ") + _DAY_OF
             for scope, value, lines_with_one in scopes]
    return f"INSERT INTO purchase_days ({_FACT_COLUMNS}) " + " UNION ALL ".join(parts)


#: the migration that creates the facts fills them from every line already stored, as it shipped (a
#: store row for lines without a store, as store ''; the next migration deletes those)
BACKFILL = _summing("", [*(_SUMMED[s] for s in (None, "channel")), ("'store'", "COALESCE(l.store, '')", ""),
                         _SUMMED["category"]])
#: the store rows of lines without a store, which earlier code kept (as store '')
NO_STORE = tuple(f"DELETE FROM {table} WHERE scope = 'store' AND value = ''"
                 for table in ("purchase_days", "person_purchase_days"))

_PERSON_COLUMNS = "person_id, scope, value, day, qty, amount, orders, refunds, first_ts, last_ts"
#: adds rows to stored days (``excluded`` is the row being added); an order lies in one record and one
#: day, so distinct orders add up across days and records
_ADD = ("DO UPDATE SET qty = {t}.qty + excluded.qty, amount = {t}.amount + excluded.amount, "
        "orders = {t}.orders + excluded.orders, refunds = {t}.refunds + excluded.refunds, "
        "first_ts = CASE WHEN {t}.first_ts IS NULL OR excluded.first_ts < {t}.first_ts "
        "THEN excluded.first_ts ELSE {t}.first_ts END, "
        "last_ts = CASE WHEN {t}.last_ts IS NULL OR excluded.last_ts > {t}.last_ts "
        "THEN excluded.last_ts ELSE {t}.last_ts END")


def _person_summing(where: str, order: str = "") -> str:
    """INSERT of the person facts summed from the record facts ``where`` selects (added to the rows
    already there, so the records of one person may come in several statements); ``order``: an
    ORDER BY of the rows to add, with a trailing space."""
    return (f"INSERT INTO person_purchase_days ({_PERSON_COLUMNS}) SELECT COALESCE(m.merged_into, f.member_id), "
            "f.scope, f.value, f.day, SUM(f.qty), SUM(f.amount), SUM(f.orders), SUM(f.refunds), MIN(f.first_ts), "
            f"MAX(f.last_ts) FROM purchase_days f LEFT JOIN members m ON m.id = f.member_id WHERE {where} "
            f"GROUP BY COALESCE(m.merged_into, f.member_id), f.scope, f.value, f.day {order}"
            "ON CONFLICT (person_id, scope, value, day) " + _ADD.format(t="person_purchase_days"))


#: every person's facts from every record's, in one statement: the migration's fill
PERSON_BACKFILL = _person_summing("1 = 1")


def restate(tx: Tx, persons: Iterable[str]) -> None:
    """Re-sum these persons' facts from the facts of the records that are theirs now (a person's id
    is its head record's; an id no longer in ``members`` just loses its facts)."""
    persons = sorted(set(persons))
    if not persons:
        return
    wanted = set(persons)
    with _all_of(tx, persons) as (test, args):
        tx.execute(f"DELETE FROM person_purchase_days WHERE person_id {test}", args)
        merged = dict(tx.rows(f"SELECT id, merged_into FROM members WHERE id {test} AND merged_into IS NOT NULL",
                              args))
        records = [r[0] for r in tx.rows(f"SELECT id FROM members WHERE merged_into {test}", args)]
    # a listed id that is itself merged into someone else is not its own person any more; one merged
    # into a listed person is found by both reads above, and must be summed once
    records += [p for p in persons if merged.get(p, p) in wanted]
    _add_to_persons(tx, sorted(set(records)))


def _add_to_persons(tx: Tx, records: Sequence[str]) -> None:
    """Add these records' facts to the facts of the persons they belong to now, in one statement whose
    rows reach the upsert in key order, so it walks the person facts' index once (in statements of a
    few hundred records, each wrote all over it: at 1M persons a first rebuild's 679k moved records
    took 237 s). The order is asked for: SQLite's grouping sorts anyway, but PostgreSQL groups the
    2.1M rows of a first rebuild in a hash and handed them over in its order; sorted, that upsert took
    28.7 s instead of 43.0 s (the rebuild 74.8 s against 89.3 s)."""
    if records:
        with _all_of(tx, records) as (test, args):
            tx.execute(_person_summing(f"f.member_id {test}", "ORDER BY 1, 2, 3, 4 "), args)


@contextmanager
def _all_of(tx: Tx, ids: Sequence[str]) -> Iterator[tuple[str, tuple]]:
    """A membership test over every one of ``ids`` (at least one) in one statement, for the ``with``
    block: PostgreSQL's is ``Tx.among``'s one array parameter. On SQLite, where ``among`` cuts a list
    into ``IN`` lists of 500, the ids go to a temporary table with a primary key (one statement,
    ``Tx.values``; an ``executemany`` of one row per id cost 4 us of Python an id, 0.7 s CPU for a
    250k first rebuild's 170k moved records, filled twice), emptied when the block ends: one test
    at a time."""
    if tx.dialect is not SQLITE:
        yield next(tx.among(ids))
        return
    tx.execute("CREATE TEMP TABLE IF NOT EXISTS purchases_ids (id TEXT PRIMARY KEY)")
    for relation, params in tx.values([(i,) for i in ids], ("text",)):
        tx.execute(f"INSERT OR IGNORE INTO purchases_ids (id) SELECT column1 FROM {relation}", params)
    try:
        yield "IN (SELECT id FROM purchases_ids)", ()
    finally:
        tx.execute("DELETE FROM purchases_ids")


def follow(tx: Tx, old: Mapping[str, str], new: Mapping[str, str], moved: Sequence[str]) -> None:
    """OneID moved records between persons (``old``/``new``: record -> head, for the records not
    their own head; ``moved``: the records whose head differs, which the resolution has worked out
    already for its members update and audit). A person that lost a record is re-summed from the records it has now; a person
    that only gained records gets the moved records' facts added to the rows it has (sums, minima
    and maxima only grow by a union). So the work follows the records that moved, not the persons
    they moved to nor the brand: a first rebuild at 100k persons moved 68k records, and re-summing
    every person instead (1.9M rows deleted and written again) was 94 s of a 116 s rebuild on
    PostgreSQL, where each re-inserted key met its deleted twin in the primary key's index. On SQLite
    too the moved records' rows, grouped in one statement, cost a third of refilling every person's
    (250k persons, 170k records moved: 7.7 s CPU against 23 s)."""
    if not moved:  # most resolutions (a sign-up, an import batch of new buyers) move nobody
        return
    losers = {old.get(r, r) for r in moved}
    with _all_of(tx, sorted(losers)) as (test, args):
        tx.execute(f"DELETE FROM person_purchase_days WHERE person_id {test}", args)
    # the maps hold every record of the persons concerned (a resolution's scope is whole persons), so
    # the records a loser still heads are known here without reading ``members`` again (at 1M persons
    # a first rebuild's two reads of 679k ids took 1.7 s on PostgreSQL and found that none are)
    kept = [r for r, head in new.items() if head in losers] + [p for p in losers if p not in new]
    _add_to_persons(tx, sorted({*kept, *(r for r in moved if new.get(r, r) not in losers)}))


def refresh(tx: Tx, records: Iterable[str]) -> None:
    """Recompute the facts of these records from their order lines (after their lines changed), and
    of their persons (the records' ids themselves too: an erased head's facts go with it)."""
    records = sorted({r for r in records if r is not None})
    persons = set(records)
    for test, chunk in tx.among(records):
        tx.execute(f"DELETE FROM purchase_days WHERE member_id {test}", chunk)
        tx.execute(_summing(f" AND l.member_id {test}"), chunk * len(_SUMMED))
        persons.update(r[0] for r in tx.rows(f"SELECT merged_into FROM members WHERE id {test} "
                                             "AND merged_into IS NOT NULL", chunk))
    restate(tx, persons)


def add_lines(tx: Tx, rows: Iterable[Sequence]) -> None:
    """Store new order lines (``LINE_COLUMNS``; every line of an order in one call) and add them to
    their records' and their persons' facts: the one way lines are written. The lines in hand are
    summed here and added to the stored days (an upsert through a staging table), so a landing batch
    costs its own size, not a re-read of its records' history (re-reading by record made PostgreSQL's
    bulk loads quadratic)."""
    rows = list(rows)
    tx.copy("order_lines", LINE_COLUMNS, rows)
    cells: dict[tuple, list] = {}
    for order_id, member_id, channel, store, ts, _sku, category, qty, _price, amount in rows:
        if member_id is None:
            continue
        day = (ts + _OFFSET) // _DAY
        for scope, value in (("any", ""), ("channel", channel), ("store", store), ("category", category)):
            if not value and scope == "store":  # an online line has no store
                continue
            cell = cells.get((member_id, scope, value, day))
            if cell is None:
                cell = cells[(member_id, scope, value, day)] = [0, 0.0, set(), 0, None, None]
            _add_line(cell, order_id, ts, qty, amount)
    if not cells:
        return
    _upsert(tx, "purchase_days", _FACT_COLUMNS, cells)
    person = {r: r for r, *_ in cells}
    for test, chunk in tx.among(sorted(person)):
        person.update(tx.rows(f"SELECT id, merged_into FROM members WHERE id {test} AND merged_into IS NOT NULL",
                              chunk))
    summed: dict[tuple, list] = {}
    for (record, *key), (qty, amount, orders, refunds, first, last) in cells.items():
        cell = summed.setdefault((person[record], *key), [0, 0.0, set(), 0, None, None])
        cell[0] += qty
        cell[1] += amount
        cell[2] |= orders
        cell[3] += refunds
        cell[4] = _either(cell[4], first, min)
        cell[5] = _either(cell[5], last, max)
    _upsert(tx, "person_purchase_days", _PERSON_COLUMNS, summed)


def _either(a: int | None, b: int | None, pick: Callable[[int, int], int]) -> int | None:
    """``pick`` of two instants either of which may be missing."""
    return b if a is None else a if b is None else pick(a, b)


def _add_line(cell: list, order_id: str, ts: int, qty: int, amount: float) -> None:
    """One line into a day's cell: net units and amount, its sale order, a refund line, the sale's instant."""
    cell[0] += qty
    cell[1] += amount
    if qty > 0:
        cell[2].add(order_id)
        cell[4] = _either(cell[4], ts, min)
        cell[5] = _either(cell[5], ts, max)
    else:
        cell[3] += qty < 0


def _upsert(tx: Tx, table: str, columns: str, cells: dict[tuple, list]) -> None:
    """Add the cells (key -> [qty, amount, orders, refunds, first, last]) to ``table``'s stored days."""
    key = ", ".join(columns.split(", ")[:4])
    staging = f"{table}_new"
    tx.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} AS SELECT {columns} FROM {table} WHERE 1 = 0")
    tx.copy(staging, columns.split(", "), (
        (*k, qty, amount, len(orders), refunds, first, last)
        for k, (qty, amount, orders, refunds, first, last) in cells.items()))
    tx.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} WHERE 1 = 1 "
               f"ON CONFLICT ({key}) " + _ADD.format(t=table))
    tx.execute(f"DELETE FROM {staging}")


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


#: a HAVING test over an aggregate's SQL, appending its parameters
Test = Callable[[str, list], str]
_LINE_PERSON = "COALESCE(m.merged_into, m.id)"
#: how a condition is asked (``holds``): ``set``, the persons that pass, gathered once; ``drive``, the
#: same persons as one ``SELECT`` of their ids (column ``id``), which ``segments`` starts the AND from;
#: ``probe``, each person that reaches the condition looked up alone
Role = Literal["set", "drive", "probe"]
#: the measures a probe sums: a person without rows has 0, as absence from the set says
PROBED = frozenset({"qty", "amount", "orders", "refunds"})


def holds(measure: Measure, scope: str | None, value: str | None, start: int | None, end: int | None, test: Test,
          params: list, *, role: Role = "set") -> str:
    """SQL true for the person ``p`` whose measure over its lines in scope (``value`` of the ``scope``
    column) with ``start <= ts < end`` (epoch seconds, either open) passes ``test`` (to ``drive``: the
    SELECT of those persons' ids, column ``id``).

    Whole days come from the person facts. A window that starts or ends inside a day (every "last N
    days" does) also needs that day's lines; only the few persons with such lines are summed again
    with them (facts and lines together), everyone else is decided by the facts alone, so the large
    grouping never meets a join or a second grouping.

    As a ``set`` (the default) every person's days are grouped once, in index order. A set reads
    every row of its scope whatever the window (the facts are ordered by person, then day), so the
    year-wide "spent >= 300" read every buyer's year to keep nine in ten of them: inside an AND,
    ``segments`` asks the narrowest condition to ``drive`` (a person is in the facts' verdict minus
    the edge persons, or in the edge persons' re-summed verdict: one ``IN`` list, so the engine reads
    only those persons instead of testing every person against three sets) and the others to
    ``probe`` (the person's whole days summed by the facts' primary key; an edge person's verdict
    from the re-summed set), which costs only the persons the driver and the cheaper tests leave."""
    column = LINE_SCOPE[scope]

    def from_lines(lo: int | None, hi: int | None, measured: bool) -> str:
        where = [] if column is None else [f"{column} = ?"]
        params.extend([] if column is None else [value])
        _bounded("l.ts", lo, hi, where, params)
        v = f", {LINE_AGG[measure]} AS v" if measured else ""
        return (f"SELECT {_LINE_PERSON} AS id{v} FROM order_lines l JOIN members m ON m.id = l.member_id "
                f"WHERE {' AND '.join(where) or '1 = 1'} GROUP BY {_LINE_PERSON}")

    def passing(persons: str) -> str:  # the condition, from the SELECT of the persons that pass
        return persons if role == "drive" else f"p.id IN ({persons})"

    first, last = _days(start, end)
    if scope == "sku" or (first is not None and last is not None and last <= first):  # the lines alone
        return passing(f"{from_lines(start, end, False)} HAVING {test(LINE_AGG[measure], params)}")
    edges = [(start, day_start(first))] if first is not None and start is not None and start < day_start(first) else []
    if last is not None and end is not None and end > day_start(last):
        edges.append((day_start(last), end))

    def edge_persons() -> str:
        return " UNION ".join(from_lines(lo, hi, False) for lo, hi in edges)

    def facts(persons: str = "") -> str:
        """The facts in scope and window (``persons``: ``IN``, ``NOT IN`` the edge persons, or ``= p.id``)."""
        where = ["f.scope = ?", "f.value = ?"]
        params.extend([scope or "any", value if scope else ""])
        _bounded("f.day", first, last, where, params)
        if persons == "= p.id":
            where.append("f.person_id = p.id")
        elif persons:
            where.append(f"f.person_id {persons} ({edge_persons()})")
        return f"FROM person_purchase_days f WHERE {' AND '.join(where)}"

    def resummed() -> str:  # the edge persons' verdict from their facts and their edge days' lines
        parts = [f"SELECT f.person_id AS id, {FACT_AGG[measure]} AS v "
                 f"{facts('IN')} GROUP BY f.person_id"]
        parts += [from_lines(lo, hi, True) for lo, hi in edges]
        return (f"SELECT x.id FROM ({' UNION ALL '.join(parts)}) x GROUP BY x.id "
                f"HAVING {test(f'{COMBINE[measure]}(x.v)', params)}")

    if role == "probe" and measure in PROBED:
        guard = f"p.id IN ({edge_persons()})" if edges else ""
        known = f"p.id IN ({resummed()})" if edges else ""
        looked_up = test(f"COALESCE((SELECT {FACT_AGG[measure]} {facts('= p.id')}), 0)", params)
        return f"(CASE WHEN {guard} THEN {known} ELSE {looked_up} END)" if edges else f"({looked_up})"
    if role == "drive" and edges:
        decided = (f"SELECT f.person_id AS id {facts('NOT IN')} GROUP BY f.person_id "
                   f"HAVING {test(FACT_AGG[measure], params)}")
        return f"{decided} UNION ALL {resummed()}"
    verdict = passing(f"SELECT f.person_id AS id {facts()} GROUP BY f.person_id HAVING {test(FACT_AGG[measure], params)}")
    if not edges:
        return verdict
    return f"(({verdict} AND p.id NOT IN ({edge_persons()})) OR p.id IN ({resummed()}))"
