"""Recommendation and script tests run on SQLite and PostgreSQL with the cloud suite's fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.db import Database
from cloud.runtime import open_cdp
from tests.cloud.conftest import db_location, pg_database  # noqa: F401 - fixtures, re-used as they are


@pytest.fixture
def db(db_location: str) -> Iterator[Database]:  # noqa: F811
    """A fresh database with every feature's tables (the script tables are the guide's version 4)."""
    opened = open_cdp(db_location)
    yield opened
    opened.close()
