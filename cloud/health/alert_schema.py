"""Version 7 of store health's tables (``cloud.health.schema``): anomaly alerts and how far each
store's metrics have been scanned.

One alert per store, metric, grain and period (the unique index): a re-scan of the same period
finds the row and raises nothing new. ``published_at`` is set once the broker has the alert's
MQTT message, so an alert raised while the broker was away is sent by the next scan.
``alert_scans`` keeps, per store and grain, the last period scanned: each scan reads only newer
periods.
"""

STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE alerts (
        id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, metric TEXT NOT NULL, grain TEXT NOT NULL,
        ts TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, baseline DOUBLE PRECISION NOT NULL,
        mad DOUBLE PRECISION NOT NULL, z DOUBLE PRECISION NOT NULL, direction TEXT NOT NULL, severity TEXT NOT NULL,
        status TEXT NOT NULL, created TEXT NOT NULL, acked_by TEXT, acked_at TEXT, note TEXT, published_at TEXT)""",
    "CREATE UNIQUE INDEX alerts_period ON alerts (store, metric, grain, ts)",
    "CREATE INDEX alerts_created ON alerts (created)",
    "CREATE INDEX alerts_store_created ON alerts (store, created)",
    """CREATE TABLE alert_scans (
        store TEXT NOT NULL, grain TEXT NOT NULL, last_ts TEXT NOT NULL, updated TEXT NOT NULL,
        PRIMARY KEY (store, grain))""",
)

#: Version 22 (issue 17): device alerts, owners and channels, deliveries, notes.
#: ``alerts`` gains ``kind`` (metric | device), ``device`` ('' for a metric alert: part of the
#: de-duplication key, so two devices failing in the same minute are two alerts), ``cleared_at``
#: (a device back, or a metric alert closed by its owner's fix), ``level`` (how far it was
#: escalated). ``alert_owners`` names who is told per store, region or the whole brand ('*'), at
#: which escalation level, on which channel and address, with an optional local mute window.
#: ``alert_deliveries`` is one row per alert and owner: sent once (the primary key), retried
#: while failing. ``alert_notes`` keeps every person's note on an alert.
STATEMENTS_V15: tuple[str, ...] = (
    "ALTER TABLE alerts ADD COLUMN kind TEXT NOT NULL DEFAULT 'metric'",
    "ALTER TABLE alerts ADD COLUMN device TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE alerts ADD COLUMN cleared_at TEXT",
    "ALTER TABLE alerts ADD COLUMN level BIGINT NOT NULL DEFAULT 0",
    "DROP INDEX alerts_period",
    "CREATE UNIQUE INDEX alerts_period_device ON alerts (store, metric, grain, ts, device)",
    "CREATE INDEX alerts_status ON alerts (status, kind)",
    """CREATE TABLE alert_owners (
        id {serial_pk}, scope TEXT NOT NULL, scope_id TEXT NOT NULL, level BIGINT NOT NULL, person TEXT NOT NULL,
        channel TEXT NOT NULL, address TEXT NOT NULL, min_severity TEXT NOT NULL DEFAULT 'warning',
        mute TEXT, created TEXT NOT NULL)""",
    "CREATE INDEX alert_owners_scope ON alert_owners (scope, scope_id)",
    """CREATE TABLE alert_deliveries (
        alert_id TEXT NOT NULL, owner_id BIGINT NOT NULL, level BIGINT NOT NULL, channel TEXT NOT NULL,
        status TEXT NOT NULL, attempts BIGINT NOT NULL, created TEXT NOT NULL, sent_at TEXT, next_try TEXT,
        error TEXT, PRIMARY KEY (alert_id, owner_id))""",
    "CREATE INDEX alert_deliveries_status ON alert_deliveries (status, next_try)",
    """CREATE TABLE alert_notes (
        id {serial_pk}, alert_id TEXT NOT NULL, person TEXT NOT NULL, ts TEXT NOT NULL, note TEXT NOT NULL)""",
    "CREATE INDEX alert_notes_alert ON alert_notes (alert_id, ts)",
)

#: Version 35 (issue 17): ``resolved_at``, when the owner who was sent an alert was told it cleared
#: (the "resolved" message on the same channel); NULL while not (yet) told.
STATEMENTS_V35: tuple[str, ...] = (
    "ALTER TABLE alert_deliveries ADD COLUMN resolved_at TEXT",
)

#: Version 88 (issue 17): ``detail``, what a source alert is about in words where its numbers do not say it
#: (the rostered assistants not signed in, by name); kept up to date while the alert is in force.
STATEMENTS_V88: tuple[str, ...] = (
    "ALTER TABLE alerts ADD COLUMN detail TEXT",
)
