"""One person's purchase lines: the only per-arrival read the recommender makes."""

from __future__ import annotations

from dataclasses import dataclass

from cloud.db import Database, Read, Tx


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
    return person_lines_read(person).run(db)


def person_lines_read(person: str) -> Read[list[Line]]:
    """``person_lines`` as a read to gather with a card's other reads about the person."""
    return Read(
        "SELECT order_id, sku, category, ts, price, qty, store FROM order_lines WHERE member_id IN "
        "(SELECT id FROM members WHERE id = ? OR merged_into = ?) AND qty > 0 AND amount > 0 ORDER BY ts, order_id",
        (person, person), _lines)


def _lines(rows: list[dict]) -> list[Line]:
    return [Line(**row) for row in rows]
