"""Store health tests reuse the cloud tests' database fixtures: every test taking ``db_location``
runs on a SQLite file and on PostgreSQL (skipped, with the reason, when no server answers)."""

from tests.cloud.conftest import db_location, face_engine, pg_database  # noqa: F401 - fixtures, by name
