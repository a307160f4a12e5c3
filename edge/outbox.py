"""Store-and-forward: every event the box must deliver is on disk before anyone sees it.

paho keeps QoS 1 messages in flight only in memory, so an arrival made while the broker is down,
or just before the process dies, would be lost. Producers (the face pipeline, the Wi-Fi presence
counter) call ``put(topic, message)``; the publisher drains rows in sequence order and deletes a
row only when the broker acknowledged it. Each message keeps its own event id, so a row sent twice
(acknowledged, but the process died before the delete) is dropped by the cloud as a duplicate.
The outbox is bounded: past ``max_messages`` the oldest rows go first, and that is logged.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from protocol.codec import encode
from protocol.messages import Message

from edge.state import StateFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    seq: int
    topic: str
    payload: bytes


class Outbox:
    def __init__(self, state: StateFile, max_messages: int = 10_000) -> None:
        self.state = state
        self.max_messages = max_messages
        self.dropped = 0
        self.changed = threading.Condition()
        with state.lock:
            # AUTOINCREMENT: a plain rowid would reuse the number of a just-delivered last row, and
            # the publisher, which remembers the highest number it handed over, would skip it.
            state.db.execute(
                "CREATE TABLE IF NOT EXISTS outbox "
                "(seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL)"
            )
            self._table = state.db["outbox"]

    def put(self, topic: str, message: Message) -> int:
        """Store one message for delivery, in order; returns its sequence number."""
        payload = encode(message)
        with self.state.lock:
            seq = self._table.insert({"topic": topic, "payload": payload}).last_pk
            excess = self._depth() - self.max_messages
            if excess > 0:
                self.state.db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", [excess]
                )
                self.dropped += excess
                log.warning("outbox full (%d messages): dropped the %d oldest", self.max_messages, excess)
        with self.changed:
            self.changed.notify_all()
        return seq

    def pending(self, after: int, limit: int) -> list[Row]:
        with self.state.lock:
            rows = self.state.db.execute(
                "SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", [after, limit]
            ).fetchall()
        return [Row(*row) for row in rows]

    def ack(self, seqs: list[int]) -> None:
        with self.state.lock:
            self.state.db.execute(f"DELETE FROM outbox WHERE seq IN ({','.join('?' * len(seqs))})", seqs)
        with self.changed:
            self.changed.notify_all()

    def _depth(self) -> int:
        return self.state.db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    @property
    def depth(self) -> int:
        with self.state.lock:
            return self._depth()

    def wait_empty(self, timeout: float) -> int:
        """Block until everything was delivered or ``timeout`` passed; return what is left."""
        with self.changed:
            self.changed.wait_for(lambda: self.depth == 0, timeout)
        return self.depth
