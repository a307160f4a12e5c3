"""Recommendation and script tests run on SQLite and PostgreSQL with the cloud suite's fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.guide.sales_scripts.schema import STATEMENTS
from cloud.store import Store
from tests.cloud.conftest import db_location, pg_database  # noqa: F401 - fixtures, re-used as they are


@pytest.fixture
def store(db_location: str) -> Iterator[Store]:  # noqa: F811
    """A fresh store with the script tables (until their migration is registered, see schema.py)."""
    opened = Store(db_location)
    with opened.db.transaction() as tx:
        for statement in STATEMENTS:
            tx.execute(statement)
    yield opened
    opened.close()
