"""One arrival per visit: a face seen again within the re-visit window is the visit already announced.

Kept in the state file so that a restarted box does not announce everyone in the store again.
Only the face vector and times are stored (no image), and no row outlives the visitor TTL: a
non-member's face is forgotten after the visit, or after ``visitor_ttl_s`` at most.
"""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np

from edge.state import StateFile
from protocol.device import VisitSettings


class VisitRegistry:
    def __init__(self, state: StateFile, settings: VisitSettings, default_similarity: float) -> None:
        self.state = state
        self.default_similarity = default_similarity
        self.apply(settings)
        with state.lock:
            state.db.table("visits").create(
                {"event_id": str, "vector": bytes, "last_seen": float}, pk="event_id", if_not_exists=True
            )

    def apply(self, settings: VisitSettings) -> None:
        self.settings = settings
        self.min_similarity = settings.min_similarity if settings.min_similarity is not None else self.default_similarity

    def _purge(self) -> None:
        keep = min(self.settings.visitor_ttl_s, self.settings.revisit_window_s)
        self.state.db.execute("DELETE FROM visits WHERE last_seen < ?", [time.time() - keep])

    def same_visit(self, vector: np.ndarray, ts: datetime) -> str | None:
        """The event id of the visit this face belongs to, or None (a new visit, now recorded)."""
        seen = ts.timestamp()
        with self.state.lock:
            self._purge()
            rows = self.state.db.execute(
                "SELECT event_id, vector FROM visits WHERE last_seen >= ?", [seen - self.settings.revisit_window_s]
            ).fetchall()
            best, best_sim = None, self.min_similarity
            for event_id, blob in rows:
                sim = float(np.frombuffer(blob, dtype=np.float16).astype(np.float32) @ vector)
                if sim >= best_sim:
                    best, best_sim = event_id, sim
            if best is not None:
                self.state.db.table("visits").update(best, {"last_seen": seen})
            return best

    def record(self, event_id: str, vector: np.ndarray, ts: datetime) -> None:
        if self.settings.revisit_window_s <= 0:
            return  # nothing to compare against later: keep nothing
        with self.state.lock:
            self.state.db.table("visits").insert(
                {"event_id": event_id, "vector": vector.astype(np.float16).tobytes(), "last_seen": ts.timestamp()}
            )

    def use_pack(self, match_threshold: float, same_space: bool) -> None:
        """Another model pack runs: its threshold applies, and vectors of another embedding space
        are worthless to compare against, so they go."""
        self.default_similarity = match_threshold
        self.apply(self.settings)
        if not same_space:
            with self.state.lock:
                self.state.db.execute("DELETE FROM visits")

    def forget(self, event_ids: list[str]) -> int:
        """Erase the cached faces of these arrivals (a member's erasure reaching the box); how many went."""
        if not event_ids:
            return 0
        with self.state.lock:
            marks = ", ".join("?" for _ in event_ids)
            return self.state.db.execute(f"DELETE FROM visits WHERE event_id IN ({marks})", event_ids).rowcount
