"""Versioned schema migrations, applied in order, each in its own transaction, exactly once.

The storage layer knows no feature: each feature declares its own tables as a ``Schema`` (its
share of each schema version, in its own ``schema`` module) and whoever opens the database passes
the list (``cloud.runtime.SCHEMAS``). Version *n* of the database is every feature's share of
version *n*, run in the order of that list, so a feature may reference tables of the features
before it; ``schema_migrations`` records one row per version as it always has. A version once
applied never runs again: a table or column added later needs a new version number.

A statement is SQL written in the dialect both engines speak, or SQL with its parameters; the only
dialect words (``{blob}``, ``{serial_pk}``) are filled in from ``Dialect``. A change to one engine's
storage that the other has no equivalent of (SQLite's ``WITHOUT ROWID`` tables) is a statement
``Only`` that engine runs; the version is recorded as applied on both. Several processes
starting at once against PostgreSQL take an advisory lock first, so each migration runs once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cloud.db.database import POSTGRES, Database, connect

_MIGRATION_LOCK = 0x1D5C0  # any constant shared by every process of this product


@dataclass(frozen=True)
class Only:
    """A statement only the engine named (``Dialect.name``) runs."""

    dialect: str
    statement: str | tuple[str, tuple]


Statement = str | tuple[str, tuple] | Only  # SQL, SQL with its parameters, or either for one engine


@dataclass(frozen=True)
class Migration:
    """One feature's share of one schema version."""

    version: int
    name: str
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Schema:
    """A feature's tables: its migrations, oldest first."""

    feature: str
    migrations: tuple[Migration, ...]

    def __post_init__(self) -> None:
        versions = [m.version for m in self.migrations]
        if versions != sorted(set(versions)) or not all(v >= 1 for v in versions):
            raise ValueError(f"{self.feature}: migration versions must be distinct, positive and ascending: {versions}")


def plan(schemas: Sequence[Schema]) -> list[Migration]:
    """The database's migrations, one per version: the features' shares in the order given."""
    features = [s.feature for s in schemas]
    if len(set(features)) != len(features):
        raise ValueError(f"a feature's schema is listed twice: {features}")
    versions = sorted({m.version for s in schemas for m in s.migrations})
    merged = []
    for version in versions:
        shares = [m for s in schemas for m in s.migrations if m.version == version]
        names = list(dict.fromkeys(m.name for m in shares))
        merged.append(Migration(version, "; ".join(names), tuple(st for m in shares for st in m.statements)))
    return merged


def migrate(db: Database, schemas: Sequence[Schema]) -> list[int]:
    """Apply every migration the database lacks; the versions applied."""
    applied: list[int] = []
    with db.transaction() as tx:
        if db.dialect is POSTGRES:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
        tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)")
        done = {row[0] for row in tx.rows("SELECT version FROM schema_migrations")}
        for migration in plan(schemas):
            if migration.version in done:
                continue
            for statement in migration.statements:
                if isinstance(statement, Only):
                    if statement.dialect != db.dialect.name:
                        continue
                    statement = statement.statement
                sql, params = statement if isinstance(statement, tuple) else (statement, ())
                tx.execute(sql.replace("{blob}", db.dialect.blob).replace("{serial_pk}", db.dialect.serial_pk), params)
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
            applied.append(migration.version)
    return applied


def schema_version(db: Database) -> int:
    return int(db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))


def open_database(location: str | Path, schemas: Sequence[Schema]) -> Database:
    """A migrated database (a PostgreSQL URL, or else a SQLite file path) with the features' tables."""
    db = connect(location)
    try:
        migrate(db, schemas)
    except BaseException:
        db.close()
        raise
    return db
