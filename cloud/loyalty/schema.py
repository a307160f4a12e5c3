"""The loyalty tables (issue 21).

The ledger is double-entry: a movement (earn, clawback, redeem, expire, adjust, merge) is two
entries summing to zero, one on a member's account and one on a system account of the same pool
(``issued``: the points the brand owes, ``redeemed``, ``expired``). ``(source, source_id)`` is
unique, so an order, a refund, a till's redemption or an expiry posts once however often it is
replayed. A member account keeps its balance in its row (the conditional update that makes
double spending impossible, and a CHECK that it never goes below zero); system accounts keep
none (every movement touches one: a hot row) and their balance is the sum of their entries.
Earned points are lots, spent and expired first-in-first-out.
"""

from __future__ import annotations

from cloud.db.migrations import Migration, Schema, Statement

_TABLES: tuple[Statement, ...] = (
    """CREATE TABLE loyalty_accounts (
        id {serial_pk}, pool TEXT NOT NULL, kind TEXT NOT NULL, owner TEXT NOT NULL,
        balance BIGINT NOT NULL DEFAULT 0, created TEXT NOT NULL,
        CHECK (kind <> 'member' OR balance >= 0))""",
    "CREATE UNIQUE INDEX loyalty_accounts_owner ON loyalty_accounts (pool, kind, owner)",
    "CREATE INDEX loyalty_accounts_member ON loyalty_accounts (owner)",
    """CREATE TABLE loyalty_movements (
        id TEXT PRIMARY KEY, pool TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL,
        source_id TEXT NOT NULL, person TEXT NOT NULL, points BIGINT NOT NULL, store TEXT, channel TEXT,
        ts TEXT NOT NULL, ref TEXT, detail TEXT NOT NULL DEFAULT '{}')""",
    # ref: the sale a refund's clawback refers to, the code or coupon a redemption came through
    "CREATE INDEX loyalty_movements_ref ON loyalty_movements (ref)",
    "CREATE UNIQUE INDEX loyalty_movements_source ON loyalty_movements (source, source_id)",
    "CREATE INDEX loyalty_movements_person ON loyalty_movements (person, ts)",
    """CREATE TABLE loyalty_entries (
        id {serial_pk}, movement_id TEXT NOT NULL REFERENCES loyalty_movements (id),
        account_id BIGINT NOT NULL REFERENCES loyalty_accounts (id), amount BIGINT NOT NULL)""",
    "CREATE INDEX loyalty_entries_account ON loyalty_entries (account_id)",
    "CREATE INDEX loyalty_entries_movement ON loyalty_entries (movement_id)",
    """CREATE TABLE loyalty_lots (
        id {serial_pk}, account_id BIGINT NOT NULL REFERENCES loyalty_accounts (id),
        movement_id TEXT NOT NULL REFERENCES loyalty_movements (id), earned TEXT NOT NULL, expires TEXT NOT NULL,
        points BIGINT NOT NULL, remaining BIGINT NOT NULL, CHECK (remaining >= 0 AND remaining <= points))""",
    "CREATE INDEX loyalty_lots_account ON loyalty_lots (account_id, expires, id)",
    "CREATE INDEX loyalty_lots_open ON loyalty_lots (expires) WHERE remaining > 0",
    """CREATE TABLE loyalty_notices (
        lot_id BIGINT PRIMARY KEY REFERENCES loyalty_lots (id), person TEXT NOT NULL, points BIGINT NOT NULL,
        expires TEXT NOT NULL, noticed TEXT NOT NULL)""",
    """CREATE TABLE loyalty_rules (
        pool TEXT NOT NULL, channel TEXT NOT NULL, category TEXT NOT NULL, per_yuan DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (pool, channel, category))""",
    """CREATE TABLE loyalty_tiers (
        pool TEXT NOT NULL, tier TEXT NOT NULL, rank BIGINT NOT NULL, min_spend DOUBLE PRECISION NOT NULL,
        multiplier DOUBLE PRECISION NOT NULL, discount DOUBLE PRECISION NOT NULL, PRIMARY KEY (pool, tier))""",
    """CREATE TABLE loyalty_codes (
        code TEXT PRIMARY KEY, pool TEXT NOT NULL, person TEXT NOT NULL, points BIGINT NOT NULL,
        created TEXT NOT NULL, expires TEXT NOT NULL, movement_id TEXT)""",
    # the brand's default pool: one point per yuan everywhere, and four tiers over 12 months of spend
    ("INSERT INTO loyalty_rules (pool, channel, category, per_yuan) VALUES (?, ?, ?, ?)", ("main", "*", "*", 1.0)),
    *(("INSERT INTO loyalty_tiers (pool, tier, rank, min_spend, multiplier, discount) VALUES (?, ?, ?, ?, ?, ?)",
       ("main", *t)) for t in (("普通会员", 0, 0.0, 1.0, 1.0), ("银卡会员", 1, 2000.0, 1.2, 0.98),
                              ("金卡会员", 2, 8000.0, 1.5, 0.95), ("钻石会员", 3, 20000.0, 2.0, 0.9))),
)

_COUPONS: tuple[Statement, ...] = (
    """CREATE TABLE coupon_templates (
        id TEXT PRIMARY KEY, pool TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, value DOUBLE PRECISION NOT NULL,
        gift_sku TEXT, min_spend DOUBLE PRECISION NOT NULL, valid_days BIGINT NOT NULL, stores TEXT NOT NULL,
        channels TEXT NOT NULL, created TEXT NOT NULL, created_by TEXT NOT NULL)""",
    # issued_by: what issued it (campaign:<id>, journey:<id>, screen:<store>, api:<who>), every redemption's attribution
    """CREATE TABLE coupons (
        code TEXT PRIMARY KEY, template_id TEXT NOT NULL REFERENCES coupon_templates (id), person TEXT NOT NULL,
        issued_by TEXT NOT NULL, issued_for_order TEXT, issued TEXT NOT NULL, expires TEXT NOT NULL,
        status TEXT NOT NULL, redeemed_at TEXT, redeemed_store TEXT, redeemed_channel TEXT, redeemed_order TEXT,
        discount DOUBLE PRECISION)""",
    "CREATE INDEX coupons_person ON coupons (person, status)",
    "CREATE INDEX coupons_issued_by ON coupons (issued_by, status)",
    """CREATE TABLE coupon_attempts (
        id {serial_pk}, code TEXT NOT NULL, ts TEXT NOT NULL, store TEXT, channel TEXT, outcome TEXT NOT NULL)""",
    "CREATE INDEX coupon_attempts_code ON coupon_attempts (code)",
)

SCHEMA = Schema("loyalty", (
    Migration(21, "loyalty: double-entry points ledger, lots, notices, earn rules, tiers, redemption codes", _TABLES),
    Migration(31, "coupons: templates, issued codes with their issuer, redemption attempts", _COUPONS),
    Migration(32, "loyalty: tiers computed from 12 months of spend on every channel", (
        """CREATE TABLE loyalty_member_tiers (
            pool TEXT NOT NULL, person TEXT NOT NULL, tier TEXT NOT NULL, spend DOUBLE PRECISION NOT NULL,
            since TEXT NOT NULL, updated TEXT NOT NULL, PRIMARY KEY (pool, person))""",
    )),
    Migration(49, "loyalty: expiry notices sent over the channels (when, which channel, outcome, receipt)", (
        "ALTER TABLE loyalty_notices ADD COLUMN sent_at TEXT",
        "ALTER TABLE loyalty_notices ADD COLUMN channel TEXT",
        "ALTER TABLE loyalty_notices ADD COLUMN outcome TEXT",
        "ALTER TABLE loyalty_notices ADD COLUMN receipt TEXT",
        "CREATE INDEX loyalty_notices_due ON loyalty_notices (outcome, noticed)",
    )),
))
