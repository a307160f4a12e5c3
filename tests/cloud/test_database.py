"""The engine-neutral database handle: ``Tx.among``'s membership tests on both engines."""

from __future__ import annotations

from cloud.db import Database


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
