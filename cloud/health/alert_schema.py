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
