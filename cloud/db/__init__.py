"""Storage behind one small interface: SQLite (one file, the default) or PostgreSQL (a URL).

Everything above this package writes portable SQL with ``?`` placeholders and never builds SQL
text from values. This package imports no feature: each feature declares its tables as a
``Schema``, and ``open_database(location, schemas)`` picks the engine from the location and applies
the versioned migrations before anyone reads (``cloud.runtime.open_cdp`` passes every feature's).
"""

from cloud.db.database import TRANSIENT_ERRORS, Database, Tx, retrying
from cloud.db.migrations import Migration, Schema, open_database
from cloud.db.reads import Gather, Read

__all__ = ["TRANSIENT_ERRORS", "Database", "Gather", "Migration", "Read", "Schema", "Tx", "open_database", "retrying"]
