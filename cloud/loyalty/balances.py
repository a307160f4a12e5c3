"""A person's points as the profile, the guide card and the scripts show them: the read side of the
ledger, importing nothing but the database (so ``cloud.cdp.profile`` may call it without a cycle)."""

from __future__ import annotations

from datetime import datetime, timedelta

from cloud.clock import iso, utcnow
from cloud.db import Database, Tx

POOL = "main"
NOTICE_DAYS = 30  # members are told, and the scripts mention it, this long before points expire


def balance(db: Database | Tx, person: str, *, pool: str = POOL, now: datetime | None = None,
            notice_days: int = NOTICE_DAYS) -> dict | None:
    """``{"balance", "expiring", "expires_on"}`` for the person (their merged records' accounts
    included), or None when the person has no points account. ``expiring`` counts the points of the
    lots expiring within ``notice_days``, ``expires_on`` the first of those lots' day (ISO date)."""
    now = now or utcnow()
    accounts = db.rows("SELECT id, balance FROM loyalty_accounts WHERE pool = ? AND kind = 'member' AND owner = ? "
                       "UNION ALL SELECT a.id, a.balance FROM members m JOIN loyalty_accounts a ON a.owner = m.id "
                       "AND a.pool = ? AND a.kind = 'member' WHERE m.merged_into = ?", (pool, person, pool, person))
    if not accounts:
        return None
    ids = [a[0] for a in accounts]
    marks = ", ".join("?" for _ in ids)
    soon = db.one(f"SELECT COALESCE(SUM(remaining), 0) AS points, MIN(expires) AS first FROM loyalty_lots "
                  f"WHERE account_id IN ({marks}) AND remaining > 0 AND expires > ? AND expires <= ?",
                  (*ids, iso(now), iso(now + timedelta(days=notice_days))))
    out = {"balance": int(sum(a[1] for a in accounts)), "expiring": int(soon["points"] if soon else 0),
           "expires_on": soon["first"][:10] if soon and soon["first"] else None}
    return out
