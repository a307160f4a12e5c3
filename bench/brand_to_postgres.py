"""Copy a brand stored in a SQLite file into a fresh PostgreSQL database, for benchmarks at a scale
the generator is too slow to load into PostgreSQL (a 1M brand: over an hour through
``cloud.synthetic.bulk``; as a copy of the SQLite file, minutes).

    uv run python bench/brand_to_postgres.py brand1m.db postgresql://postgres@127.0.0.1:5432
    uv run python bench/brand_to_postgres.py brand1m.db postgresql://postgres@127.0.0.1:5432/mine

With a server URL a database with a random name is created; with a database name that database is
created (it must not exist). The schema is the product's own (``open_cdp``, the migrations both
engines share), so every table and column the SQLite file holds has the same name here. Copied:
every table with rows in the SQLite file, columns by name, in foreign-key order, with ``COPY``
streamed from a SQLite cursor (never a whole table in memory). Not copied: ``schema_migrations``
(the open wrote its own) and any table the open already filled (the seeded link rules, blocklist,
loyalty rules and tiers, gallery state), whose rows are the same seeds on both engines.

The SQLite file is opened read-only. Values go as SQLite stored them; SQLite's typing is loose (a
float ``5.0`` in an integer column, a number in a text one), so a table whose COPY is refused is
copied again with the refused column converted by its PostgreSQL type. Before a table's copy its
indexes that back no constraint are dropped and afterwards recreated from their own ``pg_indexes``
definitions (one sorted build each is faster than ten million inserts into each B-tree); primary
keys and foreign keys stay, so the copy is checked as it lands. Then identity sequences are moved
past the copied ids and the database is analysed. Progress goes to stderr; the last stdout line is
JSON: the database URL, rows per table, seconds per table and in all.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud.runtime import open_cdp

#: rows fetched from SQLite at a time
FETCH = 10_000
#: a progress line every this many rows of one table
PROGRESS = 1_000_000
#: per-session settings for the copy's own connection (the server's configuration is left alone)
SESSION = ("SET maintenance_work_mem = '256MB'", "SET synchronous_commit = off")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _integer(value: Any) -> Any:
    """SQLite may hold ``5.0`` or ``'5'`` in an integer column; PostgreSQL's bigint takes ``5``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (str, bytes)):
        return int(float(value))
    return value


def _real(value: Any) -> Any:
    return float(value) if isinstance(value, (str, bytes)) else value


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else str(value)


def _blob(value: Any) -> Any:
    return value.encode() if isinstance(value, str) else value


#: a converter per PostgreSQL column type, applied only to a column whose COPY was refused
CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "bigint": _integer, "integer": _integer, "smallint": _integer, "double precision": _real, "real": _real,
    "numeric": _real, "text": _text, "bytea": _blob,
}


def _pg_columns(conn: psycopg.Connection) -> dict[str, dict[str, str]]:
    """Each public table's columns and their PostgreSQL types."""
    out: dict[str, dict[str, str]] = {}
    for table, column, kind in conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"):
        out.setdefault(table, {})[column] = kind
    return out


def _fk_order(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """``tables`` with every table after the tables its foreign keys reference."""
    refs: dict[str, set[str]] = {t: set() for t in tables}
    for child, parent in conn.execute(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND connamespace = 'public'::regnamespace"):
        if child in refs and parent in refs and parent != child:
            refs[child].add(parent)
    ordered: list[str] = []

    def visit(table: str, path: tuple[str, ...]) -> None:
        if table in ordered:
            return
        if table in path:
            raise ValueError(f"foreign keys in a cycle: {path + (table,)}")
        for parent in sorted(refs[table]):
            visit(parent, path + (table,))
        ordered.append(table)

    for table in sorted(tables):
        visit(table, ())
    return ordered


def _free_indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """The table's indexes that back no constraint, with their definitions as the server prints them."""
    return [(name, definition) for name, definition in conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' AND i.tablename = %s "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = "
        "format('%%I.%%I', i.schemaname, i.indexname)::regclass) ORDER BY i.indexname", (table,))]


def _sqlite_rows(source: sqlite3.Connection, table: str, columns: list[str],
                 convert: dict[int, Callable[[Any], Any]]) -> Iterator[tuple]:
    cursor = source.execute(f'SELECT {", ".join(f"[{c}]" for c in columns)} FROM [{table}]')
    while batch := cursor.fetchmany(FETCH):
        if not convert:
            yield from batch
            continue
        for row in batch:
            yield tuple(convert[i](v) if i in convert and v is not None else v for i, v in enumerate(row))


def _refused_column(error: psycopg.Error, columns: list[str]) -> str | None:
    """The column a refused COPY names in its context (``COPY t, line 9, column qty: "5.0"``)."""
    found = re.search(r"column (\w+)", error.diag.context or "")
    return found.group(1) if found and found.group(1) in columns else None


def _copy_table(conn: psycopg.Connection, source: sqlite3.Connection, table: str, columns: list[str],
                types: dict[str, str]) -> int:
    """Stream one table in; on a refused value, start the table again with that column converted."""
    converted: set[str] = set()
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    while True:
        convert = {i: CONVERTERS[types[c]] for i, c in enumerate(columns) if c in converted}
        rows, started = 0, time.perf_counter()
        try:
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
                for row in _sqlite_rows(source, table, columns, convert):
                    copy.write_row(row)
                    rows += 1
                    if rows % PROGRESS == 0:
                        log(f"  {table}: {rows:,} rows, {time.perf_counter() - started:.0f} s")
            return rows
        except (psycopg.errors.DataError, psycopg.errors.InvalidTextRepresentation) as error:
            column = _refused_column(error, columns)
            if column is None or column in converted or types[column] not in CONVERTERS:
                raise
            log(f"  {table}.{column} refused ({str(error).splitlines()[0]}): again, converted as {types[column]}")
            converted.add(column)


def _reset_sequences(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """Move every identity or serial sequence of the copied tables past the largest copied id."""
    moved = []
    for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND (is_identity = 'YES' OR column_default LIKE 'nextval(%%') AND table_name = ANY(%s)", (tables,)).fetchall():
        [(value,)] = conn.execute(sql.SQL("SELECT setval(pg_get_serial_sequence(%s, %s), MAX({})) FROM {}").format(
            sql.Identifier(column), sql.Identifier(table)), (table, column)).fetchall()
        if value is not None:  # setval of no rows' NULL leaves the sequence alone
            moved.append(f"{table}.{column} -> {value}")
    return moved


def copy_brand(source_path: str, url: str) -> dict:
    """Copy every filled table of the SQLite brand at ``source_path`` into the new database ``url``."""
    started = time.perf_counter()
    open_cdp(url, sample_catalogue=False).close()  # the product's schema, by its own migrations
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    out: dict[str, Any] = {"db": url, "rows": {}, "seconds": {}, "skipped": {}}
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for setting in SESSION:
                conn.execute(setting)
            pg = _pg_columns(conn)
            filled = []
            for (table,) in source.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall():
                if source.execute(f"SELECT 1 FROM [{table}] LIMIT 1").fetchone() is None:
                    continue
                if table == "schema_migrations":
                    out["skipped"][table] = "the open wrote its own"
                elif table not in pg:
                    raise SystemExit(f"{table}: in the SQLite file, not in the PostgreSQL schema")
                elif conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(table))).fetchone():
                    out["skipped"][table] = "the open filled it"
                else:
                    filled.append(table)
            log(f"skipped: {out['skipped']}")
            for table in _fk_order(conn, filled):
                columns = [r[1] for r in source.execute(f"PRAGMA table_info([{table}])")]
                missing = [c for c in columns if c not in pg[table]]
                if missing:
                    raise SystemExit(f"{table}: columns {missing} not in the PostgreSQL schema")
                t0 = time.perf_counter()
                indexes = _free_indexes(conn, table)
                for name, _ in indexes:
                    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
                rows = _copy_table(conn, source, table, columns, pg[table])
                copied = time.perf_counter() - t0
                for _, definition in indexes:
                    conn.execute(definition)
                out["rows"][table], out["seconds"][table] = rows, round(time.perf_counter() - t0, 1)
                log(f"{table}: {rows:,} rows in {copied:.1f} s, {len(indexes)} indexes rebuilt in "
                    f"{time.perf_counter() - t0 - copied:.1f} s")
            out["sequences"] = _reset_sequences(conn, filled)
            log(f"sequences: {out['sequences']}")
            t0 = time.perf_counter()
            conn.execute("ANALYZE")
            out["seconds"]["analyze"] = round(time.perf_counter() - t0, 1)
    finally:
        source.close()
    out["total_s"] = round(time.perf_counter() - started, 1)
    log(f"copied {sum(out['rows'].values()):,} rows in {out['total_s']} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sqlite", help="the brand's SQLite file (opened read-only)")
    parser.add_argument("postgres", help="a PostgreSQL server URL (a database with a random name is made) "
                                         "or a URL with the name of a database to make")
    args = parser.parse_args()
    scheme, _, rest = args.postgres.rstrip("/").partition("://")
    host, _, name = rest.partition("/")
    server, name = f"{scheme}://{host}", name or f"instore_bench_{uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    log(f"created database {name}")
    print(json.dumps(copy_brand(args.sqlite, f"{server}/{name}"), ensure_ascii=False))


if __name__ == "__main__":
    main()
