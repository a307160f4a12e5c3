"""Long ``IN`` lists, mixed-type lists and NULLs in them give the same rows on both engines."""

from __future__ import annotations

from cloud.db import Database


def test_long_in_lists_mixed_lists_and_not_in_answer_alike(db: Database) -> None:
    with db.transaction() as tx:
        tx.copy("settings", ("key", "value"), [(f"k{i:03d}", str(i)) for i in range(120)])
        keys = [f"k{i:03d}" for i in range(0, 120, 2)]  # 60 keys: more than psycopg caches statements for
        marks = ", ".join("?" for _ in keys)
        found = tx.rows(f"SELECT key FROM settings WHERE key IN ({marks}) AND value <> ? ORDER BY key", (*keys, "0"))
        assert [r[0] for r in found] == keys[1:]
        others = tx.rows(f"SELECT key FROM settings WHERE key LIKE 'k%' AND key NOT IN ({marks}) ORDER BY key", keys)
        assert [r[0] for r in others] == [f"k{i:03d}" for i in range(1, 120, 2)]
        mixed = [*range(60), 2.5]  # a list of two types stays a list of placeholders
        assert tx.scalar(f"SELECT COUNT(*) FROM settings WHERE key LIKE 'k%' AND CAST(value AS DOUBLE PRECISION) IN "
                         f"({', '.join('?' for _ in mixed)})", mixed) == 60
        with_null = [*keys, None]
        assert len(tx.rows(f"SELECT key FROM settings WHERE key IN ({', '.join('?' for _ in with_null)})",
                           with_null)) == len(keys)
