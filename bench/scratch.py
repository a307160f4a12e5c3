"""A throwaway database for one bench run, so every bench builds its brand from nothing and leaves
nothing behind: on a PostgreSQL server a database of its own (dropped with its connections), else a
SQLite file in a temporary directory."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4


@contextmanager
def scratch_database(server: str | None, label: str) -> Iterator[str]:
    """The location of a fresh database named for ``label``; ``server``: a PostgreSQL server URL
    without a database name, None for SQLite."""
    if server is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield str(Path(tmp) / f"{label}.db")
        return
    import psycopg

    name = f"bench_{label}_{uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
