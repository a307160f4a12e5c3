"""The box's one on-disk state file (SQLite through sqlite-utils): the outbox and recent visits.

One connection shared by the box's threads behind one lock: writes are tiny and rare next to
face detection, and a single writer keeps SQLite free of "database is locked" retries.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import sqlite_utils


class StateFile:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        self.db = sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False, isolation_level=None))
        self.db.enable_wal()

    def remembered(self, key: str) -> str | None:
        """A small value the box keeps across restarts (the model pack a command switched it to)."""
        with self.lock:
            if not self.db["box"].exists():
                return None
            row = self.db.execute("SELECT value FROM box WHERE key = ?", [key]).fetchone()
            return row[0] if row else None

    def remember(self, key: str, value: str) -> None:
        with self.lock:
            self.db.table("box").upsert({"key": key, "value": value}, pk="key")

    def close(self) -> None:
        with self.lock:
            self.db.conn.close()
