"""The API's own table: the keys callers authenticate with (``cloud.api.auth``), stored hashed."""

from __future__ import annotations

from cloud.db.migrations import Migration, Schema

SCHEMA = Schema("api", (
    Migration(1, "api keys", (
        """CREATE TABLE api_keys (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, store TEXT, key_hash TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL, revoked_at TEXT)""",
    )),
))
