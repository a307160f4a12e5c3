"""Each feature declares its own tables; the database's versions are their shares, run in order.

A version already applied never runs again, so the statements of every version that has shipped
are pinned here: changing one would leave existing databases and fresh ones different. A new table
or column is a new version (add its pin).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import pytest

import cloud
from cloud.cdp import purchases
from cloud.db import Database
from cloud.db.migrations import Migration, Only, Schema, migrate, open_database, plan, schema_version
from cloud.runtime import SCHEMAS

SHIPPED = {
    1: "f8ca6ea048a712bb", 2: "787953ec6c414ab1", 3: "a6e5d70b06fded30", 4: "2a7ff94e90b88e83",
    5: "824db46463bda3bb", 6: "179fe5dd0d6d0995", 7: "0ca129dbe8e3aa9e", 8: "536ffa2e7898a991",
    9: "24ffd519362da5c7", 10: "b90f2c1c51432285", 11: "6718a5f0633da391", 12: "31cbabe6acba0f0c",
    13: "d5e637434f854338", 14: "fc3d400a7060d00c", 15: "122c52f38bab56ca", 21: "192b6841ebd4c779",
    22: "f81b08fc9174066f", 24: "621d0f69c052c123", 27: "3ab6dc037e6c593f", 31: "caa295a113aac22e",
    32: "0dc909503a948383", 33: "82556e7baffbc240", 34: "c420220e93772030", 35: "ec04bdc7c9448f94",
    36: "68173e983861318f", 38: "62d059f2ad2cae78", 39: "1ac40a81b1e2fdd0", 40: "2d9beffa7054e790",
    43: "ead16e118d44dc49", 48: "bc95b99d679d876d", 49: "d559fe168adfac87", 50: "2ae644141d1fd8c0",
    58: "281ea5af8f092ad8", 60: "744303a8b32ed5d8", 63: "297b0bceec984137", 64: "925155fcbed91239",
    65: "ee95a40d0f0bd968", 77: "5549fdc4f491aeff", 78: "2c4a529225c43916", 79: "56138d96ab920ba1",
    80: "4918f915b79d77c2", 87: "dcc1ff82e717394d", 88: "27eed51cde7e697d", 89: "af715e2a0daeb672",
    90: "c4d3c69425910ef6", 91: "59dc41867a99d1da",
}


def _digest(migration: Migration) -> str:
    return hashlib.sha256(json.dumps(migration.statements, ensure_ascii=False,
                                     default=lambda only: [only.dialect, only.statement]).encode()).hexdigest()[:16]


def test_shipped_versions_are_unchanged() -> None:
    planned = {m.version: _digest(m) for m in plan(SCHEMAS)}
    assert {v: planned.get(v) for v in SHIPPED} == SHIPPED


def test_a_version_is_every_feature_share_in_schema_order() -> None:
    a = Schema("a", (Migration(1, "a one", ("A1",)), Migration(3, "a three", ("A3",))))
    b = Schema("b", (Migration(1, "b one", ("B1", "B1b")), Migration(2, "b two", ("B2",))))
    assert plan([a, b]) == [Migration(1, "a one; b one", ("A1", "B1", "B1b")), Migration(2, "b two", ("B2",)),
                            Migration(3, "a three", ("A3",))]
    with pytest.raises(ValueError):
        plan([a, a])
    with pytest.raises(ValueError):
        Schema("c", (Migration(2, "two", ()), Migration(1, "one", ())))


def test_a_migrated_database_migrates_to_nothing(db: Database) -> None:
    assert schema_version(db) == max(SHIPPED)
    assert migrate(db, SCHEMAS) == []
    names = dict(db.rows("SELECT version, name FROM schema_migrations"))
    assert names[9] == "enrolment thumbnails for the guide card; perishables and markdown price changes"


def test_every_feature_schema_is_opened() -> None:
    """A feature's ``SCHEMA`` left out of ``cloud.runtime.SCHEMAS`` would never be created."""
    root = Path(cloud.__file__).parent
    declared = set()
    for path in root.rglob("*.py"):
        if "SCHEMA = Schema(" in path.read_text(encoding="utf-8"):
            module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
            declared.add(importlib.import_module(module).SCHEMA)
    assert declared == set(SCHEMAS)


def test_a_statement_for_one_engine_runs_only_there(db: Database) -> None:
    """``Only``: the version is recorded on both engines, its statement runs on the one named."""
    mine = db.dialect.name
    other = "postgresql" if mine == "sqlite" else "sqlite"
    extra = Schema("extra", (Migration(9001, "one engine's storage", (
        "CREATE TABLE engine_marks (engine TEXT NOT NULL)",
        Only(mine, ("INSERT INTO engine_marks (engine) VALUES (?)", (mine,))),
        Only(other, "INSERT INTO engine_marks (engine) VALUES ('the other')"))),))
    assert migrate(db, (*SCHEMAS, extra)) == [9001]
    assert db.rows("SELECT engine FROM engine_marks") == [(mine,)]


def test_the_purchase_facts_keep_their_rows_when_sqlite_stores_them_by_key(tmp_path: Path) -> None:
    """Version 90 rebuilds both fact tables of an existing SQLite database as ``WITHOUT ROWID``
    tables: every row stays as it was, the scan index is there again, and a write still upserts."""
    before = tuple(Schema(s.feature, tuple(m for m in s.migrations if m.version < 90)) for s in SCHEMAS)
    db = open_database(tmp_path / "cloud.db", before)
    facts = {"purchase_days": [("r1", "any", "", 20000, 2, 30.0, 1, 0, 1, 2), ("r1", "category", "护肤", 20000, 1, 10.0, 1, 0, 1, 1),
                               ("r2", "any", "", 20001, -1, -5.0, 0, 1, None, None)],
             "person_purchase_days": [("r1", "any", "", 20000, 1, 25.0, 1, 1, 1, 2), ("r1", "any", "", 20001, 1, 9.5, 1, 0, 3, 3)]}
    try:
        with db.transaction() as tx:
            for table, rows in facts.items():
                tx.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in rows[0])})", rows)
        assert migrate(db, SCHEMAS) == [90, 91]
        for table, rows in facts.items():
            assert "WITHOUT ROWID" in db.scalar("SELECT sql FROM sqlite_master WHERE name = ?", (table,))
            assert sorted(db.rows(f"SELECT * FROM {table}"), key=repr) == sorted(rows, key=repr)
        assert db.scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'person_purchase_days_scan'") == 1
        with db.transaction() as tx:
            purchases.add_lines(tx, [("o9", "r1", "pos", "s1", 20000 * 86400 - 8 * 3600 + 60, "SKU-1", "护肤", 1, 7.0, 7.0)])
        assert db.rows("SELECT qty, amount, orders FROM person_purchase_days WHERE person_id = 'r1' AND scope = 'any' "
                       "AND day = 20000") == [(2, 32.0, 2)]
    finally:
        db.close()


def test_lines_without_a_store_lose_their_store_rows(tmp_path: Path) -> None:
    """Version 91 deletes the store rows the facts kept, as store '', for lines without a store (an
    online order's): no dimension asks for an empty store. Every other row stays."""
    before = tuple(Schema(s.feature, tuple(m for m in s.migrations if m.version < 91)) for s in SCHEMAS)
    db = open_database(tmp_path / "cloud.db", before)
    kept = [("r1", "any", "", 20000, 2, 30.0, 1, 0, 1, 2), ("r1", "store", "sh-001", 20000, 1, 10.0, 1, 0, 1, 1),
            ("r1", "channel", "tmall", 20000, 1, 20.0, 1, 0, 2, 2)]
    try:
        with db.transaction() as tx:
            for table in ("purchase_days", "person_purchase_days"):
                tx.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               [*kept, ("r1", "store", "", 20000, 1, 20.0, 1, 0, 2, 2)])
        assert migrate(db, SCHEMAS) == [91]
        for table in ("purchase_days", "person_purchase_days"):
            assert sorted(db.rows(f"SELECT * FROM {table}"), key=repr) == sorted(kept, key=repr)
    finally:
        db.close()
