"""The engine-neutral database handle: ``Tx.among``'s membership tests, ``Tx.values``' relations and
``Tx.stream``'s reads and ``Tx.aside``'s work on both engines."""

from __future__ import annotations

import threading

import pytest

from cloud.db import Database
from cloud.db.database import IntegrityError


def test_among_finds_exactly_the_listed_values_however_many_and_however_often(db: Database) -> None:
    with db.transaction() as tx:
        tx.copy("stores", ("id", "brand", "name", "city", "created", "timezone"),
                [(f"s-{n:04d}", "b", f"store {n}", "上海", "2026-01-01T00:00:00+00:00", "Asia/Shanghai")
                 for n in range(1500)])
    wanted = [f"s-{n:04d}" for n in range(0, 3000, 2)]  # half of them exist; more than one SQLite chunk
    # seven runs of the same statement: on PostgreSQL a prepared one would get a generic plan by then
    for _ in range(7):
        with db.transaction() as tx:
            found = [r[0] for test, params in tx.among(wanted)
                     for r in tx.rows(f"SELECT id FROM stores WHERE id {test} AND brand = ?", (*params, "b"))]
        assert sorted(found) == [f"s-{n:04d}" for n in range(0, 1500, 2)]
    with db.transaction() as tx:
        assert list(tx.among([])) == []  # no values, no statement
        assert [r[0] for test, params in tx.among(["s-0002"])  # one value: an equality
                for r in tx.rows(f"SELECT id FROM stores WHERE id {test}", params)] == ["s-0002"]
        deleted = sum(tx.execute(f"DELETE FROM stores WHERE id {test}", params)
                      for test, params in tx.among(["s-0001", "s-0003", "nope"]))
    assert deleted == 2
    assert db.scalar("SELECT COUNT(*) FROM stores WHERE id IN ('s-0001', 's-0003')") == 0


def test_values_is_one_statement_that_gives_back_every_row_as_written(db: Database) -> None:
    """Rows of text (quotes, CJK, a JSON-looking string), integers past 2^53, reals, NULLs and
    booleans (stored as 0/1) come back as given, in one statement however many rows (SQLite's JSON
    array keeps each value's type); an ``UPDATE ... FROM`` the relation and no rows at all work too."""
    rows = [(f"s-{n:04d}", "上海 'quoted' \"x\"" if n % 3 else '["not", "json"]', 2**53 + n, n / 7,
             None if n % 2 else n, n % 4 == 0) for n in range(1200)]
    types = ("text", "text", "bigint", "double precision", "bigint", "bigint")
    with db.transaction() as tx:
        relations = list(tx.values(rows, types))
        assert len(relations) == 1
        (relation, params), = relations
        back = tx.rows(f"SELECT column1, column2, column3, column4, column5, column6 FROM {relation} "
                       "ORDER BY column1", params)
        assert [tuple(r) for r in back] == [(a, b, c, d, e, int(f)) for a, b, c, d, e, f in rows]
        tx.copy("stores", ("id", "brand", "name", "city", "created", "timezone"),
                [(r[0], "b", "old", "上海", "2026-01-01T00:00:00+00:00", "Asia/Shanghai") for r in rows[:5]])
        for relation, params in tx.values([(f"s-{n:04d}", f"店 {n}") for n in (1, 3, 9999)], ("text", "text")):
            assert tx.execute(f"UPDATE stores AS s SET name = v.column2 FROM {relation} WHERE s.id = v.column1",
                              params) == 2
        assert list(tx.values([], types)) == []
    assert dict(db.rows("SELECT id, name FROM stores ORDER BY id")) == {
        "s-0000": "old", "s-0001": "店 1", "s-0002": "old", "s-0003": "店 3", "s-0004": "old"}


def test_stream_hands_over_every_row_of_a_read_in_batches_and_the_transaction_goes_on(db: Database) -> None:
    """``Tx.stream`` gives the rows ``rows`` gives, in order, across many batches (PostgreSQL: libpq's
    chunks of ``batch`` rows), with parameters; the transaction is usable again once they run out,
    and a read of nothing streams nothing."""
    with db.transaction() as tx:
        tx.copy("stores", ("id", "brand", "name", "city", "created", "timezone"),
                [(f"s-{n:04d}", "b", f"店 {n}", "上海", "2026-01-01T00:00:00+00:00", "Asia/Shanghai")
                 for n in range(250)])
        read = "SELECT id, name FROM stores WHERE brand = ? AND id >= ? ORDER BY id"
        streamed = tx.stream(read, ("b", "s-0010"), batch=7)
        assert next(streamed) == ("s-0010", "店 10")
        assert [tuple(r) for r in streamed] == [tuple(r) for r in tx.rows(read, ("b", "s-0011"))]
        assert list(tx.stream(read, ("nobody", ""))) == []
        assert tx.execute("DELETE FROM stores WHERE id < ?", ("s-0100",)) == 100
    assert db.scalar("SELECT COUNT(*) FROM stores") == 150


def test_aside_runs_its_statements_while_the_block_runs_and_raises_their_error_at_its_end(db: Database) -> None:
    """``Tx.aside``: the work runs at the same time as the block (it waits for the block to have
    started), is done when the block ends, and its error comes out there, undoing the transaction."""
    rows = [(f"s-{n:04d}", "b", f"店 {n}", "上海", "2026-01-01T00:00:00+00:00", "Asia/Shanghai") for n in range(300)]
    columns = ("id", "brand", "name", "city", "created", "timezone")
    in_block = threading.Event()

    def work() -> None:
        assert in_block.wait(10), "the block never ran while the work waited"
        tx.copy("stores", columns, rows)

    with db.transaction() as tx:
        with tx.aside(work):
            in_block.set()
        assert tx.scalar("SELECT COUNT(*) FROM stores") == 300
    with pytest.raises(IntegrityError), db.transaction() as tx:
        with tx.aside(lambda: tx.execute(f"INSERT INTO stores ({', '.join(columns)}) VALUES (?, ?, ?, ?, ?, ?)",
                                         rows[0])):
            pass
        tx.execute("DELETE FROM stores")  # never reached
    assert db.scalar("SELECT COUNT(*) FROM stores") == 300


def test_copying_takes_rows_while_the_block_runs_and_a_failed_block_writes_none(db: Database) -> None:
    """``Tx.copying``: rows handed over one at a time during the block (enough for PostgreSQL's queued
    writer to send several buffers from its thread) are all stored when it ends, and the transaction
    goes on; a block that fails midway leaves none of its rows."""
    columns = ("id", "brand", "name", "city", "created", "timezone")
    rows = [(f"s-{n:05d}", "b", f"店 {n}", "上海", "2026-01-01T00:00:00+00:00", "Asia/Shanghai") for n in range(3000)]

    with db.transaction() as tx:
        with tx.copying("stores", columns) as write:
            for row in rows[:2000]:
                write(row)
        assert tx.scalar("SELECT COUNT(*) FROM stores") == 2000
    with pytest.raises(RuntimeError), db.transaction() as tx, tx.copying("stores", columns) as write:
        for row in rows[2000:]:
            write(row)
        raise RuntimeError("the block failed")
    assert db.scalar("SELECT COUNT(*) FROM stores") == 2000
