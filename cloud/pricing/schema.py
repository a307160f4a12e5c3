"""Pricing's tables: the shelf-label registry (version 5), markdowns (version 9, ``markdown_schema``)
and what each label last showed (version 34).

``esl_labels``: which label hangs under which product in which store. The tag's pixel size and
inks follow from ``tag_type`` (``protocol.esl.TAG_TYPES``) and are not stored twice. ``drawn`` is
the ``LabelProduct`` last sent to the label ('' for never, or for a label just moved), so
``cloud.pricing.shelf`` redraws exactly the labels whose product, price, member price or markdown
changed since.
"""

from __future__ import annotations

from cloud.db.migrations import Migration, Schema
from cloud.pricing import markdown_schema

STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE esl_labels (
        store TEXT NOT NULL, label_id TEXT NOT NULL, sku TEXT NOT NULL, tag_type TEXT NOT NULL,
        created TEXT NOT NULL, updated TEXT NOT NULL, actor TEXT NOT NULL, PRIMARY KEY (store, label_id))""",
    "CREATE INDEX esl_labels_sku ON esl_labels (store, sku)",
)

SCHEMA = Schema("pricing", (
    Migration(5, "e-shelf label registry", STATEMENTS),
    Migration(9, "perishables and markdown price changes", markdown_schema.STATEMENTS),
    Migration(34, "what each shelf label last showed", (
        "ALTER TABLE esl_labels ADD COLUMN drawn TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE esl_labels ADD COLUMN drawn_at TEXT",
    )),
))
