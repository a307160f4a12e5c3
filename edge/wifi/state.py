"""The box's Wi-Fi memory on disk (sqlite-utils): learned equipment and closed sessions.

Only keys are stored, never a MAC; randomised phones are stored without any key at all, since
their day-salted keys would be meaningless after the salt is gone.
"""

from __future__ import annotations

import sqlite3
import statistics
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from edge.wifi.grouping import Phone
from protocol.messages import new_id


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class WifiState:
    def __init__(self, path: Path | str) -> None:
        # Opened by whoever builds the runner, then used only by the Wi-Fi thread.
        self.db = sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False))
        self.db.table("background").create({"device_key": str, "source": str, "learned_at": str},
                                      pk="device_key", if_not_exists=True)
        self.db.table("sessions").create(
            {"id": str, "kind": str, "device_key": str, "first_seen": str, "last_seen": str,
             "dwell_s": float, "frames": int, "rssi_max": int, "rssi_median": int, "in_store": int},
            pk="id", if_not_exists=True,
        )

    def background_keys(self) -> set[str]:
        return {row["device_key"] for row in self.db.table("background").rows}

    def add_background(self, key: str, source: str, ts: float) -> None:
        self.db.table("background").upsert({"device_key": key, "source": source, "learned_at": iso(ts)}, pk="device_key")

    def add_sessions(self, phones: list[Phone], in_store: set[int]) -> None:
        rows = [{
            "id": new_id(),
            "kind": "randomised" if p.randomised else "stable",
            "device_key": p.stable_key,
            "first_seen": iso(p.first),
            "last_seen": iso(p.last),
            "dwell_s": round(p.dwell_s, 3),
            "frames": p.frames,
            "rssi_max": max(p.rssi_all) if p.rssi_all else None,
            "rssi_median": round(statistics.median(p.rssi_all)) if p.rssi_all else None,
            "in_store": int(p.id in in_store),
        } for p in phones]
        if rows:
            self.db.table("sessions").insert_all(rows)
