"""Tiers from a rolling 12 months of spend on every channel (issue 21, item 4).

A person's spend is what they paid in the last 365 days over every channel (store, Tmall, JD, mini
program...: the ``orders`` every import and stream lands), refunds subtracted. Their tier is the
highest of the pool's ``loyalty_tiers`` whose ``min_spend`` it reaches, so it goes up as soon as an
order takes them over a threshold (``post_order`` recomputes) and down when old spend leaves the
window (the daily ``loyalty-tiers`` job). Once computed it is what the till and online shops are
told (``GET /v1/loyalty/members/{id}``: tier, points multiplier, member price factor) and what
earning multiplies by; until then the member record's tier (CRM import, sign-up) stands.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from cloud.loyalty.balances import POOL

WINDOW_DAYS = 365


def _ladder(db: Database | Tx, pool: str) -> list[dict]:
    return db.query("SELECT tier, rank, min_spend FROM loyalty_tiers WHERE pool = ? ORDER BY rank DESC", (pool,))


def earned_by_spending(db: Database | Tx, pool: str = POOL) -> list[str]:
    """The pool's tiers a member reaches only by spending (``min_spend`` above zero): a record that
    states one says its member has bought, whether or not any of those orders is in the CDP."""
    return [t["tier"] for t in _ladder(db, pool) if t["min_spend"] > 0]


def _pick(ladder: list[dict], spend: float) -> str | None:
    return next((t["tier"] for t in ladder if spend >= t["min_spend"]), None)


def recompute(db: Database, person: str, *, now: datetime | None = None, pool: str = POOL) -> dict | None:
    """The person's tier from their 12 months of spend; ``previous`` says what it was."""
    now = now or utcnow()
    since = int((now - timedelta(days=WINDOW_DAYS)).timestamp())
    with db.transaction() as tx:
        spend = float(tx.scalar(
            "SELECT COALESCE(SUM(paid), 0) FROM orders WHERE status IN ('paid', 'refund') AND ts >= ? AND member_id IN "
            "(SELECT id FROM members WHERE id = ? OR merged_into = ?)", (since, person, person)))
        tier = _pick(_ladder(tx, pool), spend)
        if tier is None:
            return None
        return _store(tx, pool, person, tier, spend, now)


# a person's first tier, a new one (its ``since`` restarts), and the same tier with new spend
_ADD = ("INSERT INTO loyalty_member_tiers (pool, person, tier, spend, since, updated) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (pool, person) DO NOTHING")
_MOVE = "UPDATE loyalty_member_tiers SET tier = ?, spend = ?, since = ?, updated = ? WHERE pool = ? AND person = ?"
_KEEP = "UPDATE loyalty_member_tiers SET spend = ?, updated = ? WHERE pool = ? AND person = ?"


def _store(tx: Tx, pool: str, person: str, tier: str, spend: float, now: datetime) -> dict:
    previous = tx.scalar("SELECT tier FROM loyalty_member_tiers WHERE pool = ? AND person = ?", (pool, person))
    if previous is None:
        tx.execute(_ADD, (pool, person, tier, round(spend, 2), iso(now), iso(now)))
    elif previous != tier:
        tx.execute(_MOVE, (tier, round(spend, 2), iso(now), iso(now), pool, person))
    else:
        tx.execute(_KEEP, (round(spend, 2), iso(now), pool, person))
    return {"person": person, "tier": tier, "previous": previous, "spend": round(spend, 2)}


def store_many(tx: Tx, pool: str, spend: dict[str, float], previous: dict[str, str], ladder: list[dict],
               now: datetime) -> None:
    """``recompute``'s writes for many persons at once (their spend and tiers before read by the
    caller in its transaction): three statements, not three round trips a person."""
    added, moved, same = [], [], []
    for person, total in spend.items():
        tier = _pick(ladder, total)
        if tier is None:
            continue
        before = previous.get(person)
        if before is None:
            added.append((pool, person, tier, round(total, 2), iso(now), iso(now)))
        elif before != tier:
            moved.append((tier, round(total, 2), iso(now), iso(now), pool, person))
        else:
            same.append((round(total, 2), iso(now), pool, person))
    tx.executemany(_ADD, added)
    tx.executemany(_MOVE, moved)
    tx.executemany(_KEEP, same)


def recompute_all(db: Database, *, now: datetime | None = None, pool: str = POOL) -> dict[str, int]:
    """Every person with spend in the window or a computed tier: upgrades and downgrades counted."""
    now = now or utcnow()
    since = int((now - timedelta(days=WINDOW_DAYS)).timestamp())
    spend = dict(db.rows(
        "SELECT COALESCE(m.merged_into, m.id), SUM(o.paid) FROM orders o JOIN members m ON m.id = o.member_id "
        "WHERE o.status IN ('paid', 'refund') AND o.ts >= ? GROUP BY COALESCE(m.merged_into, m.id)", (since,)))
    current = dict(db.rows("SELECT person, tier FROM loyalty_member_tiers WHERE pool = ?", (pool,)))
    ladder = _ladder(db, pool)
    rank = {t["tier"]: t["rank"] for t in ladder}
    counts = {"persons": 0, "upgrades": 0, "downgrades": 0}
    with db.transaction() as tx:
        for person in set(spend) | set(current):
            tier = _pick(ladder, float(spend.get(person) or 0))
            if tier is None:
                continue
            counts["persons"] += 1
            before = current.get(person)
            if before == tier:
                continue
            _store(tx, pool, person, tier, float(spend.get(person) or 0), now)
            if before is not None:
                counts["upgrades" if rank[tier] > rank.get(before, 0) else "downgrades"] += 1
    return counts
