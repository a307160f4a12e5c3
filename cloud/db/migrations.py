"""Versioned schema migrations, applied in order, each in its own transaction, exactly once.

A migration is a tuple of statements written in the SQL both engines speak; the only dialect
words (``{blob}``, ``{serial_pk}``) are filled in from ``Dialect``. Several processes starting at
once against PostgreSQL take an advisory lock first, so each migration runs once.

Bulk tables (orders, order_lines) carry no foreign keys: the importer checks references before it
writes, and 10M-line loads would pay for every key check twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from cloud.db.database import POSTGRES, Database
from cloud.pricing import schema as esl_schema
from cloud.health import alert_schema
from cloud.health import schema as health_schema
from cloud.fleet.rollout import schema as rollout_schema
from cloud.guide.sales_scripts import schema as script_schema
from cloud.faces import thumbnail_schema
from cloud.pricing import markdown_schema

_MIGRATION_LOCK = 0x1D5C0  # any constant shared by every process of this product


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str | tuple[str, tuple], ...]  # SQL, or SQL with its parameters


_V1 = (
    """CREATE TABLE members (
        id TEXT PRIMARY KEY, source TEXT NOT NULL, source_key TEXT, name TEXT, gender TEXT,
        tier TEXT NOT NULL DEFAULT '普通会员', tags TEXT NOT NULL DEFAULT '[]',
        preferences TEXT NOT NULL DEFAULT '[]', face_consent BIGINT NOT NULL DEFAULT 0, home_store TEXT,
        created TEXT NOT NULL, merged_into TEXT)""",
    "CREATE UNIQUE INDEX members_source_key ON members (source, source_key)",
    "CREATE INDEX members_merged_into ON members (merged_into)",
    # record -> person without touching the table: what every segment and profile join does
    "CREATE INDEX members_person ON members (id, merged_into)",
    """CREATE TABLE identifiers (
        id {serial_pk}, member_id TEXT NOT NULL REFERENCES members (id), kind TEXT NOT NULL,
        value TEXT NOT NULL, blocked TEXT, created TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX identifiers_member_kind_value ON identifiers (member_id, kind, value)",
    "CREATE INDEX identifiers_kind_value ON identifiers (kind, value)",
    """CREATE TABLE link_rules (
        kind TEXT PRIMARY KEY, hard BIGINT NOT NULL, priority BIGINT NOT NULL,
        max_per_person BIGINT NOT NULL, max_share BIGINT NOT NULL, enabled BIGINT NOT NULL)""",
    "CREATE TABLE blocklist (id {serial_pk}, kind TEXT NOT NULL, pattern TEXT NOT NULL, reason TEXT NOT NULL)",
    """CREATE TABLE links (
        id {serial_pk}, a TEXT NOT NULL, b TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
        rule TEXT NOT NULL, priority BIGINT NOT NULL, status TEXT NOT NULL, reason TEXT,
        created TEXT NOT NULL, actor TEXT NOT NULL)""",
    "CREATE INDEX links_a ON links (a)",
    "CREATE INDEX links_b ON links (b)",
    "CREATE TABLE cannot_link (a TEXT NOT NULL, b TEXT NOT NULL, created TEXT NOT NULL, actor TEXT NOT NULL, PRIMARY KEY (a, b))",
    """CREATE TABLE audit (
        id {serial_pk}, ts TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, person_id TEXT,
        detail TEXT NOT NULL)""",
    "CREATE INDEX audit_person ON audit (person_id)",
    """CREATE TABLE faces (
        n {serial_pk}, id TEXT NOT NULL UNIQUE, member_id TEXT NOT NULL REFERENCES members (id),
        embedding {blob} NOT NULL, embedding_space TEXT NOT NULL, pack TEXT NOT NULL, det_score DOUBLE PRECISION,
        created TEXT NOT NULL)""",
    "CREATE INDEX faces_space ON faces (embedding_space, n)",
    "CREATE INDEX faces_member ON faces (member_id)",
    "CREATE TABLE gallery_state (id BIGINT PRIMARY KEY, epoch BIGINT NOT NULL)",
    "INSERT INTO gallery_state (id, epoch) VALUES (1, 0)",
    """CREATE TABLE arrivals (
        event_id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL,
        camera TEXT NOT NULL, ts TEXT NOT NULL, received TEXT NOT NULL)""",
    """CREATE TABLE visits (
        id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, member_id TEXT REFERENCES members (id),
        confidence DOUBLE PRECISION NOT NULL, ts TEXT NOT NULL,
        arrival_event_id TEXT NOT NULL REFERENCES arrivals (event_id), device TEXT NOT NULL,
        camera TEXT NOT NULL, card_id TEXT NOT NULL)""",
    "CREATE INDEX visits_store_ts ON visits (store, ts)",
    "CREATE INDEX visits_member ON visits (member_id, ts)",
    """CREATE TABLE sightings (
        id {serial_pk}, member_id TEXT NOT NULL REFERENCES members (id), kind TEXT NOT NULL, value TEXT NOT NULL,
        score DOUBLE PRECISION NOT NULL, store TEXT, ts TEXT NOT NULL)""",
    "CREATE INDEX sightings_member ON sightings (member_id)",
    """CREATE TABLE devices (
        brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL, role TEXT NOT NULL,
        last_seen TEXT NOT NULL, PRIMARY KEY (brand, store, device))""",
    """CREATE TABLE products (
        sku TEXT PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, price DOUBLE PRECISION NOT NULL,
        popularity BIGINT NOT NULL, is_new BIGINT NOT NULL)""",
    "CREATE INDEX products_category ON products (category, popularity)",
    "CREATE TABLE stores (id TEXT PRIMARY KEY, brand TEXT NOT NULL, name TEXT NOT NULL, city TEXT, created TEXT NOT NULL)",
    """CREATE TABLE orders (
        id TEXT PRIMARY KEY, channel TEXT NOT NULL, order_no TEXT NOT NULL, store TEXT, member_id TEXT,
        ts BIGINT NOT NULL, paid DOUBLE PRECISION NOT NULL, status TEXT NOT NULL, refund_of TEXT,
        import_id BIGINT)""",
    "CREATE INDEX orders_member ON orders (member_id, ts)",
    "CREATE INDEX orders_store ON orders (store, ts)",
    "CREATE INDEX orders_channel ON orders (channel, member_id)",
    """CREATE TABLE order_lines (
        order_id TEXT NOT NULL, member_id TEXT, channel TEXT NOT NULL, store TEXT, ts BIGINT NOT NULL,
        sku TEXT NOT NULL, category TEXT NOT NULL, qty BIGINT NOT NULL, price DOUBLE PRECISION NOT NULL,
        amount DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX order_lines_category ON order_lines (category, ts, member_id)",
    "CREATE INDEX order_lines_sku ON order_lines (sku, ts, member_id)",
    "CREATE INDEX order_lines_member ON order_lines (member_id)",
    """CREATE TABLE imports (
        id {serial_pk}, channel TEXT NOT NULL, source_name TEXT NOT NULL, started TEXT NOT NULL,
        finished TEXT, rows_read BIGINT NOT NULL DEFAULT 0, orders BIGINT NOT NULL DEFAULT 0,
        quarantined BIGINT NOT NULL DEFAULT 0, report TEXT)""",
    """CREATE TABLE quarantine (
        id {serial_pk}, import_id BIGINT NOT NULL REFERENCES imports (id), row_no BIGINT NOT NULL,
        reason TEXT NOT NULL, detail TEXT NOT NULL, raw TEXT NOT NULL)""",
    "CREATE INDEX quarantine_import ON quarantine (import_id, reason)",
    """CREATE TABLE person_stats (
        member_id TEXT PRIMARY KEY, orders BIGINT NOT NULL, ltv DOUBLE PRECISION NOT NULL, first_ts BIGINT,
        last_ts BIGINT, r BIGINT, f BIGINT, m BIGINT, value_tier TEXT, lifecycle TEXT NOT NULL,
        cycle_days DOUBLE PRECISION, top_categories TEXT NOT NULL, price_band TEXT, fav_channel TEXT,
        fav_store TEXT, updated TEXT NOT NULL)""",
    "CREATE INDEX person_stats_lifecycle ON person_stats (lifecycle)",
    "CREATE INDEX person_stats_tier ON person_stats (value_tier)",
    """CREATE TABLE person_tags (
        member_id TEXT NOT NULL, tag TEXT NOT NULL, value TEXT NOT NULL, source TEXT NOT NULL,
        PRIMARY KEY (member_id, tag))""",
    "CREATE INDEX person_tags_tag ON person_tags (tag, value)",
    "CREATE TABLE tag_rules (name TEXT PRIMARY KEY, value TEXT NOT NULL, condition TEXT NOT NULL, created TEXT NOT NULL)",
    """CREATE TABLE segments (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, condition TEXT NOT NULL, created TEXT NOT NULL,
        created_by TEXT NOT NULL)""",
    """CREATE TABLE api_keys (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, store TEXT, key_hash TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL, revoked_at TEXT)""",
    """CREATE TABLE commands (
        id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL, name TEXT NOT NULL,
        payload TEXT NOT NULL, created TEXT NOT NULL, sent_at TEXT)""",
    "CREATE INDEX commands_unsent ON commands (sent_at)",
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

_DEFAULT_RULES = (
    # kind, hard, priority, max per person, max records sharing one value
    ("unionid", 1, 100, 1, 5),
    ("member_card", 1, 90, 1, 5),
    ("phone", 1, 80, 2, 20),
    ("tmall_buyer", 1, 70, 2, 5),
    ("jd_pin", 1, 70, 2, 5),
    ("openid", 1, 60, 5, 5),
    ("face", 0, 0, 0, 0),
    ("mac", 0, 0, 0, 0),
)
_DEFAULT_BLOCKLIST = (
    ("*", r"^\s*$", "empty"),
    ("*", r"\*", "masked"),
    ("phone", r"^(\d)\1{10}$", "placeholder"),
    ("phone", r"^1(2345678910|2345678901)$", "placeholder"),
    ("phone", r"^(?!1[3-9]\d{9}$)", "invalid"),
    ("*", r"^(null|none|unknown|n/?a|test|-+|0+)$", "placeholder"),
)

_V3 = (
    # Wi-Fi: a visit may be opened by a presence event (no card) and joined by the other signal
    "ALTER TABLE visits ADD COLUMN signals TEXT NOT NULL DEFAULT 'face'",
    "ALTER TABLE visits ADD COLUMN left_ts TEXT",
    "ALTER TABLE visits ADD COLUMN dwell_s DOUBLE PRECISION",
    """CREATE TABLE presence_events (
        event_id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL,
        member_id TEXT, visit_id TEXT, phase TEXT NOT NULL, ts TEXT NOT NULL, dwell_s DOUBLE PRECISION NOT NULL,
        received TEXT NOT NULL)""",
    "CREATE INDEX presence_member ON presence_events (member_id, store, ts)",
    """CREATE TABLE footfall (
        brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL, minute TEXT NOT NULL, people BIGINT NOT NULL,
        passing BIGINT NOT NULL, visits_started BIGINT NOT NULL, distinct_macs BIGINT NOT NULL,
        background BIGINT NOT NULL, probes BIGINT NOT NULL, event_id TEXT NOT NULL, received TEXT NOT NULL,
        PRIMARY KEY (store, device, minute))""",
    "CREATE INDEX footfall_store_minute ON footfall (store, minute)",
    # device registry imported from provisioning; devices keeps what was observed
    """CREATE TABLE device_registry (
        brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL, role TEXT NOT NULL, serial TEXT NOT NULL,
        model_pack TEXT, state TEXT NOT NULL, revoked_at TEXT, not_after TEXT, imported TEXT NOT NULL,
        PRIMARY KEY (brand, store, device))""",
    "ALTER TABLE devices ADD COLUMN conn_state TEXT",
    "ALTER TABLE devices ADD COLUMN model_pack TEXT",
    # guide-screen feedback, and the negative evidence it carries
    """CREATE TABLE feedback (
        feedback_id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, screen TEXT NOT NULL,
        card_id TEXT NOT NULL, visit_id TEXT NOT NULL, member_id TEXT, confidence DOUBLE PRECISION,
        action TEXT NOT NULL, assistant TEXT, amount DOUBLE PRECISION, ts TEXT NOT NULL, received TEXT NOT NULL)""",
    "CREATE INDEX feedback_store_ts ON feedback (store, ts)",
    "CREATE INDEX feedback_visit ON feedback (visit_id)",
    """CREATE TABLE member_doubts (
        member_id TEXT PRIMARY KEY, not_this_person BIGINT NOT NULL, updated TEXT NOT NULL)""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "cdp schema", _V1),
    Migration(2, "default identity rules and blocklist", tuple(
        [("INSERT INTO link_rules (kind, hard, priority, max_per_person, max_share, enabled) VALUES (?, ?, ?, ?, ?, 1)",
          rule) for rule in _DEFAULT_RULES]
        + [("INSERT INTO blocklist (kind, pattern, reason) VALUES (?, ?, ?)", entry) for entry in _DEFAULT_BLOCKLIST]
    )),
    Migration(3, "wifi presence and footfall, device registry, feedback", _V3),
    Migration(4, "sales script templates and outcomes", script_schema.STATEMENTS),
    Migration(5, "e-shelf label registry", esl_schema.STATEMENTS),
    Migration(6, "store health: store attributes, assistants, targets, stock, metrics and scores", health_schema.STATEMENTS),
    Migration(7, "anomaly alerts and scan watermarks", alert_schema.STATEMENTS),
    Migration(8, "command acks and re-sends, pack rollouts, device telemetry", rollout_schema.STATEMENTS),
    Migration(9, "enrolment thumbnails for the guide card; perishables and markdown price changes",
              thumbnail_schema.STATEMENTS + markdown_schema.STATEMENTS),
)


def migrate(db: Database) -> list[int]:
    """Apply every migration the database lacks; the versions applied."""
    applied: list[int] = []
    with db.transaction() as tx:
        if db.dialect is POSTGRES:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
        tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)")
        done = {row[0] for row in tx.rows("SELECT version FROM schema_migrations")}
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            for statement in migration.statements:
                sql, params = statement if isinstance(statement, tuple) else (statement, ())
                tx.execute(sql.replace("{blob}", db.dialect.blob).replace("{serial_pk}", db.dialect.serial_pk), params)
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
                (migration.version, migration.name, datetime.now(timezone.utc).isoformat()),
            )
            applied.append(migration.version)
    return applied


def schema_version(db: Database) -> int:
    return int(db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
