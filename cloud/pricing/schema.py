"""The shelf-label registry table: which label hangs under which product in which store.

Registered as migration 5 in ``cloud/db/migrations.py``. Plain strings only (no imports from
cloud.db), so the migrations module can import this one. The tag's pixel size and inks follow
from ``tag_type`` (``protocol.esl.TAG_TYPES``) and are not stored twice.
"""

STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE esl_labels (
        store TEXT NOT NULL, label_id TEXT NOT NULL, sku TEXT NOT NULL, tag_type TEXT NOT NULL,
        created TEXT NOT NULL, updated TEXT NOT NULL, actor TEXT NOT NULL, PRIMARY KEY (store, label_id))""",
    "CREATE INDEX esl_labels_sku ON esl_labels (store, sku)",
)
