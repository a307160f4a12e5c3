"""The fleet's tables: devices as observed, the registry imported from provisioning, the commands
sent to them, and (version 8, ``cloud.fleet.rollout.schema``) acks, re-sends and pack rollouts.
"""

from __future__ import annotations

from cloud.db.migrations import Migration, Schema
from cloud.fleet.rollout import schema as rollout_schema

SCHEMA = Schema("fleet", (
    Migration(1, "devices and commands", (
        """CREATE TABLE devices (
        brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL, role TEXT NOT NULL,
        last_seen TEXT NOT NULL, PRIMARY KEY (brand, store, device))""",
        """CREATE TABLE commands (
        id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL, name TEXT NOT NULL,
        payload TEXT NOT NULL, created TEXT NOT NULL, sent_at TEXT)""",
        "CREATE INDEX commands_unsent ON commands (sent_at)",
    )),
    Migration(3, "device registry", (
        # device registry imported from provisioning; devices keeps what was observed
        """CREATE TABLE device_registry (
        brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL, role TEXT NOT NULL, serial TEXT NOT NULL,
        model_pack TEXT, state TEXT NOT NULL, revoked_at TEXT, not_after TEXT, imported TEXT NOT NULL,
        PRIMARY KEY (brand, store, device))""",
        "ALTER TABLE devices ADD COLUMN conn_state TEXT",
        "ALTER TABLE devices ADD COLUMN model_pack TEXT",
    )),
    Migration(8, "command acks and re-sends, pack rollouts, device telemetry", rollout_schema.STATEMENTS),
))
