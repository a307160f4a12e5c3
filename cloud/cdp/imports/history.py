"""What was imported: each import's row and data-quality report, and the rows it quarantined."""

from __future__ import annotations

import json

from cloud.db import Database


def imports(db: Database, *, limit: int, offset: int) -> list[dict]:
    """Imports, newest first, each ``report`` decoded (None while an import runs)."""
    rows = db.query("SELECT * FROM imports ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset))
    for row in rows:
        row["report"] = json.loads(row["report"]) if row["report"] else None
    return rows


def quarantined(db: Database, import_id: int, *, reason: str | None, limit: int, offset: int) -> tuple[list[dict], int]:
    """One import's quarantined rows in file order (optionally of one reason), each ``raw`` decoded,
    and how many there are."""
    where = "WHERE import_id = ?"
    args: list[int | str] = [import_id]
    if reason:
        where, args = where + " AND reason = ?", [*args, reason]
    with db.transaction() as tx:
        rows = tx.query(f"SELECT * FROM quarantine {where} ORDER BY row_no LIMIT ? OFFSET ?", (*args, limit, offset))
        total = tx.scalar(f"SELECT COUNT(*) FROM quarantine {where}", args)
    for row in rows:
        row["raw"] = json.loads(row["raw"])
    return rows, total
