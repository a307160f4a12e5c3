"""The CDP's tables: members and their identifiers, OneID's links and rules, the audit trail,
channel orders and their imports, computed stats and tags, tag rules, segments, and the settings.

Bulk tables (orders, order_lines) carry no foreign keys: the importer checks references before it
writes, and 10M-line loads would pay for every key check twice. ``settings`` (key -> JSON) also
holds store health's weights. The other features' tables may reference ``members``, so this
schema comes first in ``cloud.runtime.SCHEMAS``.
"""

from __future__ import annotations

from cloud.cdp import purchases
from cloud.db.migrations import Migration, Schema

_TABLES = (
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
    """CREATE TABLE sightings (
        id {serial_pk}, member_id TEXT NOT NULL REFERENCES members (id), kind TEXT NOT NULL, value TEXT NOT NULL,
        score DOUBLE PRECISION NOT NULL, store TEXT, ts TEXT NOT NULL)""",
    "CREATE INDEX sightings_member ON sightings (member_id)",
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

_FACTS_AND_CONFLICTS = (
    # what a record says about the member beyond name and gender (CRM and counter facts), and when
    # it was last observed: survivorship (``cloud.cdp.survivorship``) picks among records by them
    "ALTER TABLE members ADD COLUMN birthday TEXT",
    "ALTER TABLE members ADD COLUMN points BIGINT",
    "ALTER TABLE members ADD COLUMN address TEXT",
    "ALTER TABLE members ADD COLUMN signed_up TEXT",
    "ALTER TABLE members ADD COLUMN seen TEXT",
    # strong identifiers that disagree (one phone on two cards): the review queue
    """CREATE TABLE identity_conflicts (
        id {serial_pk}, kind TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL,
        sides TEXT NOT NULL, floating TEXT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL,
        updated TEXT NOT NULL, decided_by TEXT, decided_at TEXT, decision TEXT)""",
    "CREATE INDEX identity_conflicts_value ON identity_conflicts (kind, value, status)",
    "CREATE INDEX identity_conflicts_status ON identity_conflicts (status, id)",
)

_VERIFICATION_AND_CONSENT = (
    # a sign-up whose phone already belongs to someone stays its own person until the phone's owner
    # proves it (a one-time code, only its hash kept) or HQ merges explicitly (cloud.cdp.verification)
    """CREATE TABLE verifications (
        id TEXT PRIMARY KEY, member_id TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
        code_hash TEXT NOT NULL, status TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0, sent BIGINT NOT NULL,
        created TEXT NOT NULL, expires TEXT NOT NULL, store TEXT, actor TEXT NOT NULL, decided TEXT)""",
    "CREATE INDEX verifications_member ON verifications (member_id)",
    # every consent given or withdrawn: for which person, on which record, when, where, by whom, how
    """CREATE TABLE consent_log (
        id {serial_pk}, person_id TEXT NOT NULL, record_id TEXT NOT NULL, kind TEXT NOT NULL,
        granted BIGINT NOT NULL, ts TEXT NOT NULL, store TEXT, actor TEXT NOT NULL, how TEXT NOT NULL)""",
    "CREATE INDEX consent_log_person ON consent_log (person_id)",
)

#: Version 80: a till's receipt numbers are its store's own, so a POS order's id names its store
#: (``canonical.order_id``: ``pos:<store>:<receipt no>``, refunds ``...:refund``). Every stored POS id
#: is rewritten wherever an order id is kept, through one old -> new table so a refund's link follows
#: its sale whichever store that was: the orders and their refund links, the order lines, the till's
#: attribution (arrivals), the points ledger's order and refund movements with their detail, and the
#: coupons given for or redeemed on an order (loyalty). One step, not each feature's share: the id is
#: the CDP's and every table naming it must change with it, or a clawback would miss its earn. Every
#: version before 80 has run by then, so those tables exist.
_REKEYED: tuple[tuple[str, str], ...] = (
    ("orders", "id"), ("orders", "refund_of"), ("order_lines", "order_id"), ("order_attribution", "order_id"),
    ("coupons", "issued_for_order"), ("coupons", "redeemed_order"),
)
_POS_IDS_PER_STORE = (
    "CREATE TABLE order_id_renames (old TEXT PRIMARY KEY, new TEXT NOT NULL)",
    "INSERT INTO order_id_renames (old, new) SELECT id, 'pos:' || store || ':' || SUBSTR(id, 5) FROM orders "
    "WHERE channel = 'pos' AND store IS NOT NULL AND id LIKE 'pos:%'",
    *(f"UPDATE {table} SET {column} = r.new FROM order_id_renames r WHERE {table}.{column} = r.old"
      for table, column in _REKEYED),
    # a movement names its order in source_id (earn, clawback) or ref (the sale a clawback returns),
    # and both in its JSON detail ("order", "refund"): the quoted id is replaced there
    "UPDATE loyalty_movements SET source_id = r.new, detail = REPLACE(detail, '\"' || r.old || '\"', "
    "'\"' || r.new || '\"') FROM order_id_renames r "
    "WHERE loyalty_movements.source IN ('order', 'refund') AND loyalty_movements.source_id = r.old",
    "UPDATE loyalty_movements SET ref = r.new, detail = REPLACE(detail, '\"' || r.old || '\"', "
    "'\"' || r.new || '\"') FROM order_id_renames r WHERE loyalty_movements.ref = r.old",
    "DROP TABLE order_id_renames",
)

_SEGMENT_STATS = (
    *(f"ALTER TABLE person_profiles ADD COLUMN {column}" for column in (
        "orders BIGINT", "ltv DOUBLE PRECISION", "r BIGINT", "f BIGINT", "m BIGINT", "value_tier TEXT",
        "lifecycle TEXT", "cycle_days DOUBLE PRECISION", "top_categories TEXT", "price_band TEXT",
        "fav_channel TEXT", "fav_store TEXT")),
    "UPDATE person_profiles SET orders = s.orders, ltv = s.ltv, r = s.r, f = s.f, m = s.m, value_tier = s.value_tier, "
    "lifecycle = s.lifecycle, cycle_days = s.cycle_days, top_categories = s.top_categories, "
    "price_band = s.price_band, fav_channel = s.fav_channel, fav_store = s.fav_store "
    "FROM person_stats AS s WHERE s.member_id = person_profiles.member_id",
    # what person_stats' own two indexes gave a lone lifecycle or value-tier segment: a start
    "CREATE INDEX person_profiles_lifecycle ON person_profiles (lifecycle)",
    "CREATE INDEX person_profiles_value_tier ON person_profiles (value_tier)",
)

SCHEMA = Schema("cdp", (
    Migration(1, "cdp schema", _TABLES),
    Migration(2, "default identity rules and blocklist", tuple(
        [("INSERT INTO link_rules (kind, hard, priority, max_per_person, max_share, enabled) VALUES (?, ?, ?, ?, ?, 1)",
          rule) for rule in _DEFAULT_RULES]
        + [("INSERT INTO blocklist (kind, pattern, reason) VALUES (?, ?, ?)", entry) for entry in _DEFAULT_BLOCKLIST]
    )),
    Migration(11, "member facts and identity conflicts", _FACTS_AND_CONFLICTS),
    Migration(12, "sign-up verification and the consent log", _VERIFICATION_AND_CONSENT),
    Migration(14, "erasure receipts", (
        "CREATE TABLE erasures (id TEXT PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL, places TEXT NOT NULL, "
        "commands TEXT NOT NULL)",
    )),
    Migration(15, "rule tags HQ marks for the guide card, with a priority", (
        "ALTER TABLE tag_rules ADD COLUMN display BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE tag_rules ADD COLUMN priority BIGINT NOT NULL DEFAULT 0",
    )),
    # the verification whose code proved the record's phone: its face consent then counts for the
    # whole person whichever record is head after later merges (cloud.cdp.members.PERSON_CONSENT)
    Migration(33, "face consent proven by a one-time code to the phone", (
        "ALTER TABLE members ADD COLUMN consent_proven TEXT",
    )),
    # the survivorship result per person (cloud.cdp.survivorship.store): what segments and portraits
    # filter on, so "tier = 钻石会员" finds the VIP whose head record is an older Tmall buyer
    Migration(43, "the surviving profile per person for segments", (
        """CREATE TABLE person_profiles (
            member_id TEXT PRIMARY KEY, name TEXT, gender TEXT, birthday TEXT, tier TEXT NOT NULL, points BIGINT,
            tags TEXT NOT NULL, home_store TEXT, phone TEXT, address TEXT, signed_up TEXT,
            face_consent BIGINT NOT NULL, updated TEXT NOT NULL)""",
        "CREATE INDEX person_profiles_tier ON person_profiles (tier)",
        "CREATE INDEX person_profiles_home_store ON person_profiles (home_store)",
    )),
    # per-record purchase facts by local day (cloud.cdp.purchases): segments sum these instead of the
    # order lines; filled from the lines already stored
    Migration(60, "purchase facts by day for segments", (*purchases.TABLE, purchases.BACKFILL)),
    # a change of the survivorship rules rewrites every stored profile in batches on the scheduler
    # (cloud.cdp.profile_rewrite): how far it got, so a restart resumes after the last batch
    Migration(63, "survivorship rewrites of the stored profiles", (
        """CREATE TABLE profile_rewrites (
            id TEXT PRIMARY KEY, rules TEXT NOT NULL, status TEXT NOT NULL, last_person TEXT NOT NULL,
            done BIGINT NOT NULL, total BIGINT NOT NULL, started TEXT NOT NULL, finished TEXT, actor TEXT NOT NULL)""",
        "CREATE INDEX profile_rewrites_status ON profile_rewrites (status, started)",
    )),
    # the purchase facts per person (OneID head) that segments read, summed from the record facts; kept
    # by the landing lines and by OneID's moves (cloud.cdp.purchases.follow)
    Migration(64, "purchase facts by day per person for segments", (*purchases.PERSON_TABLE,
                                                                     purchases.PERSON_BACKFILL)),
    # the whole base's portrait facet counts as the nightly tag batch leaves them (cloud.cdp.segments
    # .store_base): a portrait groups only its segment's persons
    Migration(65, "the base's portrait facets kept by the tag batch", (
        "CREATE TABLE portrait_base (facet TEXT NOT NULL, value TEXT NOT NULL, persons BIGINT NOT NULL, "
        "as_of TEXT NOT NULL, PRIMARY KEY (facet, value))",
    )),
    # a face-consent withdrawal is marked on each record the person has (when): a record that joins
    # later carrying its own consent (an older CRM export) cannot turn it back on; a new grant clears it
    Migration(78, "members: face-consent withdrawals outlive records that join the person later", (
        "ALTER TABLE members ADD COLUMN consent_withdrawn TEXT",
    )),
    # the digests of an erased person's identifiers and when (cloud.cdp.tombstones): data from before
    # the erasure that names them lands anonymous instead of making them a new record
    Migration(79, "erased identifiers: data from before an erasure cannot bring the person back", (
        "CREATE TABLE erased_identifiers (digest TEXT PRIMARY KEY, erased TEXT NOT NULL)",
    )),
    Migration(80, "orders: a till's receipt numbers are per store, so a POS order's id names its store",
              _POS_IDS_PER_STORE),
    # the computed stats segments test, copied into each person's profile row by survivorship.store
    # (cloud.cdp.survivorship.SEGMENT_STATS): a segment then looks a person up in one table, not two
    Migration(89, "person profiles: the stats segments test, beside the surviving values", _SEGMENT_STATS),
    # SQLite keeps both purchase fact tables in their primary key's order (cloud.cdp.purchases.CLUSTERED)
    Migration(90, "purchase facts stored by their key on SQLite", purchases.CLUSTERED),
    Migration(91, "purchase facts: no store row for a line without a store", purchases.NO_STORE),
))
