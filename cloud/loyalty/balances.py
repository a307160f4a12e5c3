"""A person's points as the profile, the guide card and the scripts show them: the read side of the
ledger, importing nothing but the database (so ``cloud.cdp.profile`` may call it without a cycle)."""

from __future__ import annotations

from datetime import datetime, timedelta

from cloud.clock import iso, utcnow
from cloud.db import Database, Read, Tx

POOL = "main"
NOTICE_DAYS = 30  # members are told, and the scripts mention it, this long before points expire


def balance(db: Database | Tx, person: str, *, pool: str = POOL, now: datetime | None = None,
            notice_days: int = NOTICE_DAYS) -> dict | None:
    """``{"balance", "expiring", "expires_on"}`` for the person (their merged records' accounts
    included), or None when the person has no points account. ``expiring`` counts the points of the
    lots expiring within ``notice_days``, ``expires_on`` the first of those lots' day (ISO date)."""
    return balance_read(person, pool=pool, now=now, notice_days=notice_days).run(db)


def balance_read(person: str, *, pool: str = POOL, now: datetime | None = None,
                 notice_days: int = NOTICE_DAYS) -> Read[dict | None]:
    """``balance`` as one statement (the accounts and their soon-expiring lots together), for a
    guide card to read with the person's other reads (``cloud.db.Gather``)."""
    now = now or utcnow()
    return Read(
        "WITH a AS (SELECT id, balance FROM loyalty_accounts WHERE pool = ? AND kind = 'member' AND owner = ? "
        "UNION ALL SELECT a.id, a.balance FROM members m JOIN loyalty_accounts a ON a.owner = m.id "
        "AND a.pool = ? AND a.kind = 'member' WHERE m.merged_into = ?), "
        "soon AS (SELECT COALESCE(SUM(remaining), 0) AS points, MIN(expires) AS first FROM loyalty_lots "
        "WHERE account_id IN (SELECT id FROM a) AND remaining > 0 AND expires > ? AND expires <= ?) "
        "SELECT (SELECT COUNT(*) FROM a) AS accounts, (SELECT COALESCE(SUM(balance), 0) FROM a) AS balance, "
        "soon.points, soon.first FROM soon",
        (pool, person, pool, person, iso(now), iso(now + timedelta(days=notice_days))), _balance)


def _balance(rows: list[dict]) -> dict | None:
    found = rows[0]
    if not found["accounts"]:
        return None
    return {"balance": int(found["balance"]), "expiring": int(found["points"]),
            "expires_on": found["first"][:10] if found["first"] else None}
