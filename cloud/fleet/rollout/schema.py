"""Version 8 of the fleet's tables (``cloud.fleet.schema``): command acknowledgements and re-sends,
rollouts, and the telemetry they judge by.

``commands`` (version 1) gains what re-sending needs: attempts so far, when the next attempt is
due, when the command stops mattering (``expires``), and the box's answer (``acked_at``,
``ack_ok``, ``ack_detail``). ``rollouts`` keeps one staged pack rollout and its decision;
``rollout_devices`` which box got the pack in which phase and what it ran before (the rollback
target); ``device_telemetry`` one row per telemetry report (fps, pack), pruned after 14 days.
"""

STATEMENTS: tuple[str, ...] = (
    "ALTER TABLE commands ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE commands ADD COLUMN next_attempt TEXT",
    "ALTER TABLE commands ADD COLUMN expires TEXT",
    "ALTER TABLE commands ADD COLUMN acked_at TEXT",
    "ALTER TABLE commands ADD COLUMN ack_ok BIGINT",
    "ALTER TABLE commands ADD COLUMN ack_detail TEXT",
    "CREATE INDEX commands_due ON commands (acked_at, next_attempt)",
    "CREATE INDEX commands_device ON commands (brand, store, device, created)",
    """CREATE TABLE rollouts (
        id TEXT PRIMARY KEY, brand TEXT NOT NULL, pack_id TEXT NOT NULL, manifest_sha256 TEXT,
        signed_manifest TEXT, canary_stores TEXT NOT NULL, state TEXT NOT NULL, created TEXT NOT NULL,
        created_by TEXT NOT NULL, started TEXT, baseline_s BIGINT NOT NULL, observe_s BIGINT NOT NULL,
        min_visits BIGINT NOT NULL, tolerances TEXT NOT NULL, decided TEXT, decision TEXT, reason TEXT,
        evaluation TEXT)""",
    "CREATE INDEX rollouts_state ON rollouts (state)",
    """CREATE TABLE rollout_devices (
        rollout_id TEXT NOT NULL, brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL,
        phase TEXT NOT NULL, previous_pack TEXT, command_id TEXT NOT NULL,
        PRIMARY KEY (rollout_id, brand, store, device, phase))""",
    """CREATE TABLE device_telemetry (
        brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL, ts TEXT NOT NULL, model_pack TEXT NOT NULL,
        fps DOUBLE PRECISION NOT NULL, received TEXT NOT NULL)""",
    "CREATE INDEX device_telemetry_store_ts ON device_telemetry (store, ts)",
)
