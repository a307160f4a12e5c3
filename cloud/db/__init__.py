"""Storage behind one small interface: SQLite (one file, the default) or PostgreSQL (a URL).

Everything above this package writes portable SQL with ``?`` placeholders and never builds SQL
text from values; ``open_database`` picks the engine from the location and applies the versioned
migrations before anyone reads.
"""

from cloud.db.database import Database, Tx, open_database

__all__ = ["Database", "Tx", "open_database"]
