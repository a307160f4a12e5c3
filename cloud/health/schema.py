"""Store health's tables: the brand's stores (version 1), what the health model needs besides the
raw rows the system already keeps (version 6) and anomaly alerts (version 7, ``alert_schema``;
device alerts and owners 22, resolved messages 35, an alert's detail in words 88).


Store attributes (region, city tier, format, time zone) define peer groups and local hours;
assistants and monthly targets come from the brand's HR and finance; ``stock_days`` is the
minimum a stock system exports (per store, local day and SKU) for stock-outs, sell-through and
markdown waste. ``store_metrics`` holds the rollup (one value per store, grain, local period and
metric); ``store_scores`` the per-metric scores of each store-day against its own history and its
peers, which do not depend on the configurable weights, so changing weights needs no rescoring.
``order_lines`` gains a (store, ts) index: the rollup and the dashboards read one store's lines;
the received-time indexes let the periodic rollup find what changed since its last run; a day of
orders of every channel is read by time for the brand's live screen; ``products.member_price``
marks the member deals it shows.
"""

from __future__ import annotations

from cloud.db.migrations import Migration, Schema
from cloud.health import alert_schema

STATEMENTS: tuple[str, ...] = (
    "ALTER TABLE stores ADD COLUMN region TEXT",
    "ALTER TABLE stores ADD COLUMN city_tier TEXT",
    "ALTER TABLE stores ADD COLUMN format TEXT",
    "ALTER TABLE stores ADD COLUMN timezone TEXT NOT NULL DEFAULT 'Asia/Shanghai'",
    """CREATE TABLE assistants (
        id TEXT PRIMARY KEY, store TEXT NOT NULL, name TEXT NOT NULL, active BIGINT NOT NULL DEFAULT 1)""",
    "CREATE INDEX assistants_store ON assistants (store)",
    """CREATE TABLE store_targets (
        store TEXT NOT NULL, month TEXT NOT NULL, sales_target DOUBLE PRECISION NOT NULL, PRIMARY KEY (store, month))""",
    """CREATE TABLE stock_days (
        store TEXT NOT NULL, day TEXT NOT NULL, sku TEXT NOT NULL, opening BIGINT NOT NULL, received BIGINT NOT NULL,
        sold BIGINT NOT NULL, wasted BIGINT NOT NULL, markdown_loss DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (store, day, sku))""",
    """CREATE TABLE store_metrics (
        store TEXT NOT NULL, grain TEXT NOT NULL, ts TEXT NOT NULL, metric TEXT NOT NULL,
        value DOUBLE PRECISION NOT NULL, PRIMARY KEY (store, grain, ts, metric))""",
    "CREATE INDEX store_metrics_grain_ts ON store_metrics (grain, ts)",
    """CREATE TABLE store_scores (
        store TEXT NOT NULL, day TEXT NOT NULL, metric TEXT NOT NULL, value DOUBLE PRECISION NOT NULL,
        own_baseline DOUBLE PRECISION, peer_median DOUBLE PRECISION, score DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (store, day, metric))""",
    # covering: the ranking reads every store's scores over 29 days without touching the table
    "CREATE INDEX store_scores_day ON store_scores (day, store, metric, score)",
    "CREATE INDEX order_lines_store_ts ON order_lines (store, ts)",
    # the brand's live screen reads one day of every channel
    "CREATE INDEX orders_ts ON orders (ts)",
    "CREATE INDEX order_lines_ts ON order_lines (ts)",
    # the member price of a product on promotion (the live screen's member deals)
    "ALTER TABLE products ADD COLUMN member_price DOUBLE PRECISION",
    # the periodic rollup finds the store-days that changed since its last run by these
    "CREATE INDEX arrivals_received ON arrivals (received)",
    "CREATE INDEX feedback_received ON feedback (received)",
    "CREATE INDEX footfall_received ON footfall (received)",
    "CREATE INDEX orders_import ON orders (import_id)",
)

SCHEMA = Schema("health", (
    Migration(1, "stores", (
        "CREATE TABLE stores (id TEXT PRIMARY KEY, brand TEXT NOT NULL, name TEXT NOT NULL, city TEXT, created TEXT NOT NULL)",
    )),
    Migration(6, "store health: store attributes, assistants, targets, stock, metrics and scores", STATEMENTS),
    Migration(7, "anomaly alerts and scan watermarks", alert_schema.STATEMENTS),
    Migration(22, "device alerts, alert owners and channels, deliveries and notes", alert_schema.STATEMENTS_V15),
    Migration(35, "resolved messages: when each owner was told an alert cleared", alert_schema.STATEMENTS_V35),
    Migration(88, "alerts: a source alert's detail in words (the assistants not signed in)", alert_schema.STATEMENTS_V88),
))
