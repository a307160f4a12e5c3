"""One person's purchase lines: the only per-arrival read the recommender makes."""

from __future__ import annotations

from dataclasses import dataclass

from cloud.db import Database, Tx


@dataclass(frozen=True)
class Line:
    order_id: str
    sku: str
    category: str
    ts: int  # epoch seconds, UTC
    price: float
    qty: int
    store: str | None


def person_lines(db: Database | Tx, person: str) -> list[Line]:
    """Paid lines of every record of ``person`` (refund lines carry negative amounts and are left out)."""
    records = [r[0] for r in db.rows("SELECT id FROM members WHERE id = ? OR merged_into = ?", (person, person))]
    if not records:
        return []
    marks = ", ".join("?" for _ in records)
    rows = db.rows(
        f"SELECT order_id, sku, category, ts, price, qty, store FROM order_lines "
        f"WHERE member_id IN ({marks}) AND qty > 0 AND amount > 0 ORDER BY ts, order_id", records)
    return [Line(*row) for row in rows]
