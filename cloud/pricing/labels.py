"""The label registry, persisted: register (or re-bind), list and remove a store's shelf labels.

``cloud.pricing.registry`` holds the pure model and the command builders; this module reads and
writes the ``esl_labels`` rows (migration 5) and loads just the rows an arrival needs into a
``LabelRegistry``, so the "which labels flash" rule stays in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from cloud.db import Database
from cloud.pricing.registry import Label, LabelRegistry

Registered = Literal["created", "rebound", "unchanged"]
_COLUMNS = "label_id, store, sku, tag_type"


def _label(row: dict) -> Label:
    return Label(label_id=row["label_id"], store=row["store"], sku=row["sku"], tag_type=row["tag_type"])


def register(db: Database, label: Label, *, actor: str) -> Registered:
    """Hang a new label, or move an existing one to another product or tag type."""
    stamp = datetime.now(UTC).isoformat()
    with db.transaction() as tx:
        current = tx.one(f"SELECT {_COLUMNS} FROM esl_labels WHERE store = ? AND label_id = ?",
                         (label.store, label.label_id))
        if current is None:
            tx.execute("INSERT INTO esl_labels (store, label_id, sku, tag_type, created, updated, actor) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (label.store, label.label_id, label.sku, label.tag_type, stamp, stamp, actor))
            return "created"
        if _label(current) == label:
            return "unchanged"
        # drawn = '': the moved label shows nothing of its new product yet (cloud.pricing.shelf draws it)
        tx.execute("UPDATE esl_labels SET sku = ?, tag_type = ?, updated = ?, actor = ?, drawn = '' "
                   "WHERE store = ? AND label_id = ?",
                   (label.sku, label.tag_type, stamp, actor, label.store, label.label_id))
        return "rebound"


def of_store(db: Database, store: str, *, limit: int = 1000, offset: int = 0) -> list[Label]:
    return [_label(row) for row in db.query(
        f"SELECT {_COLUMNS} FROM esl_labels WHERE store = ? ORDER BY label_id LIMIT ? OFFSET ?", (store, limit, offset))]


def count(db: Database, store: str) -> int:
    return int(db.scalar("SELECT COUNT(*) FROM esl_labels WHERE store = ?", (store,)))


def remove(db: Database, store: str, label_id: str) -> bool:
    """False when the store has no such label."""
    return db.execute("DELETE FROM esl_labels WHERE store = ? AND label_id = ?", (store, label_id)) > 0


def registry_for(db: Database, store: str, skus: Sequence[str]) -> LabelRegistry:
    """The store's labels of these products only: one indexed read per arrival."""
    wanted = list(dict.fromkeys(skus))
    if not wanted:
        return LabelRegistry()
    marks = ", ".join("?" for _ in wanted)
    rows = db.query(f"SELECT {_COLUMNS} FROM esl_labels WHERE store = ? AND sku IN ({marks})", (store, *wanted))
    return LabelRegistry(_label(row) for row in rows)
