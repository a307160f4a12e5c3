"""Store-and-forward: every event the box must deliver is on disk before anyone sees it.

paho keeps QoS 1 messages in flight only in memory, so an arrival made while the broker is down,
or just before the process dies, would be lost. Producers (the face pipeline, the Wi-Fi presence
counter) call ``put(topic, message)``; the publisher drains rows in sequence order and deletes a
row only when the broker acknowledged it. Each message keeps its own event id, so a row sent twice
(acknowledged, but the process died before the delete) is dropped by the cloud as a duplicate.
The outbox is bounded: past ``max_messages`` the oldest rows go first, and that is logged.

**Group commit** (issue 19). A commit used to wait for its own fsync (``synchronous=FULL``, ~5 ms on
this disk, 15 ms under load), on the camera thread, once for the row and once more for each
delivered row's delete, all under the state file's lock. Now the state file runs in WAL mode with
``synchronous=NORMAL``, so a commit only writes the WAL (atomic, survives a crashed process), and
the outbox's committer thread makes the WAL durable with one ``fsync`` for every commit made since
the last one: events arriving within one fsync's time share it. ``put`` returns without waiting for
the disk, and the publisher may send the row at once, while the fsync runs.

A crashed process loses nothing committed (the WAL is in the operating system's hands). A power cut
loses the commits the last fsync did not cover; since the publisher may send a row before its
fsync, that can be an arrival the broker already has, which the box then forgets together with its
visit-cache row (docs/EDGE.md, "What a crash can do"); ``Publisher(durable_first=True)`` sends only
rows up to ``durable_seq``. SQLite's WAL checksums make what survives a prefix of the commits, so a
row and its delete can never reappear out of order; in NORMAL mode SQLite itself syncs the WAL
before every checkpoint and the WAL header when it is reused, so the fsync of the WAL file is all
that was missing for durability. ``sync()`` waits for the fsync (a clean shutdown, tests).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from edge import metrics
from edge.state import StateFile
from protocol.codec import encode
from protocol.messages import Message, now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    seq: int
    topic: str
    payload: bytes


#: Told of each row as its commit returns, with the sequence number of the row put before it; True
#: if it took the row (the publisher sends it at once from the producer's thread when it has handed
#: over everything before), so that nobody waiting on ``changed`` needs waking for it.
PutListener = Callable[[Row, int], bool]


class Outbox:
    def __init__(self, state: StateFile, max_messages: int = 10_000, *, group_commit: bool = True) -> None:
        """``group_commit=False``: every commit waits for its own fsync (``synchronous=FULL``), as
        before issue 19; kept for the benchmarks' before/after in one run."""
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
            # Kept in memory: a count(*) per put and a sequence read per row would be two more
            # statements under the lock on every arrival's path.
            self._count = state.db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            self._last_seq = self._highest_seq()
            wal = group_commit and state.db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
            state.db.execute(f"PRAGMA synchronous={'NORMAL' if wal else 'FULL'}")
        self._wal = Path(f"{state.path}-wal") if wal else None
        self._sync = threading.Condition()
        self._written = 0  # commits made (outbox writes counted), and the count the last fsync covered
        self._synced = 0
        # For the metrics: an arrival's put (monotonic) and its ms from capture, until its row is
        # acknowledged (by seq) and until the fsync covering it (by write number).
        self._timed: dict[int, tuple[float, float]] = {}
        self._to_commit: deque[tuple[int, float, float]] = deque()
        self._closed = False
        self._listeners: list[PutListener] = []
        self._durable_listeners: list[Callable[[int], None]] = []
        self._written_seq = self._durable = self._last_seq  # the highest seq written / covered by an fsync
        self.fsync_ms_total = 0.0
        if self._wal is not None:
            self._fsync_dir()
            # what a killed process left in the WAL may never have been fsynced: it is now
            self._fsync_wal(self._wal)
            threading.Thread(target=self._commit_loop, name="outbox-commit", daemon=True).start()

    # --- group commit ---------------------------------------------------------------------

    def _fsync_dir(self) -> None:
        """The WAL file's directory entry must be durable too (once: the WAL is kept while open)."""
        try:
            fd = os.open(self.state.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("could not fsync %s: %s", self.state.path.parent, exc)

    def _highest_seq(self) -> int:
        """The last number AUTOINCREMENT gave out (kept in sqlite_sequence even after its row went)."""
        row = self.state.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return int(row[0]) if row else 0

    def on_put(self, listener: PutListener) -> None:
        """Call ``listener(row, previous_seq)`` after each put's commit, on the producer's thread
        (before the committer is woken for its fsync: the send is what a reader waits for)."""
        self._listeners.append(listener)

    def on_durable(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(durable_seq)`` from the committer thread after each group fsync."""
        self._durable_listeners.append(listener)

    @property
    def last_seq(self) -> int:
        """The number of the last row put."""
        return self._last_seq

    @property
    def durable_seq(self) -> int:
        """Every row up to this number is on disk against a power cut (not only a crashed process)."""
        return self._last_seq if self._wal is None else self._durable

    def _wrote(self, timed: tuple[float, float] | None = None, seq: int | None = None) -> None:
        with self._sync:
            self._written += 1
            if seq is not None:
                self._written_seq = seq
            if timed is not None and self._wal is not None:
                self._to_commit.append((self._written, *timed))
            self._sync.notify_all()

    def _commit_loop(self) -> None:
        wal = self._wal
        if wal is None:  # no write-ahead log: every commit synced itself
            return
        while True:
            with self._sync:
                if not self._sync.wait_for(lambda: self._written > self._synced or self._closed, 5.0):
                    if self._state_closed():
                        return
                    continue
                if self._closed and self._written == self._synced:
                    return
                target, target_seq = self._written, self._written_seq
            started = time.perf_counter()
            self._fsync_wal(wal)
            done = time.monotonic()
            metrics.COMMITS.inc()
            metrics.COMMITTED_ROWS.inc(target - self._synced)
            with self._sync:
                while self._to_commit and self._to_commit[0][0] <= target:
                    _, put, offset = self._to_commit.popleft()
                    metrics.ARRIVAL.labels("committed").observe(offset / 1000 + (done - put))
                self._synced, self._durable = target, target_seq
                self._sync.notify_all()
            for listener in self._durable_listeners:
                listener(target_seq)
            self.fsync_ms_total += (time.perf_counter() - started) * 1000

    @staticmethod
    def _fsync_wal(wal: Path) -> None:
        try:
            fd = os.open(wal, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except FileNotFoundError:
            pass  # the connection was closed, which checkpointed the WAL into the database and synced it
        except OSError as exc:
            log.error("outbox fsync failed: %s", exc)

    def _state_closed(self) -> bool:
        """True once the state file's connection was closed (sqlite3 raises on any use of it then)."""
        try:
            _ = self.state.db.conn.total_changes
        except sqlite3.ProgrammingError:
            return True
        return False

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until every write made so far is durable (fsynced); False on timeout."""
        if self._wal is None:
            return True
        with self._sync:
            target = self._written
            return self._sync.wait_for(lambda: self._synced >= target, timeout)

    def close(self) -> None:
        """Make what was written durable and stop the committer (the state file closes separately)."""
        self.sync()
        with self._sync:
            self._closed = True
            self._sync.notify_all()

    # --- the queue ------------------------------------------------------------------------

    def put(self, topic: str, message: Message) -> int:
        """Store one message for delivery, in order; returns its sequence number.

        The row is committed (visible to the publisher, safe from a crashed process) on return; it is
        durable against a power cut a few milliseconds later, at the next group fsync (``sync``).
        A message with ``timings`` (an ``Arrival``) gets its ``queued_ms`` stamped here."""
        timings = getattr(message, "timings", None)
        offset = None
        if timings is not None and timings.queued_ms is None:
            offset = timings.at(now())
            message = message.model_copy(update={"timings": timings.model_copy(update={"queued_ms": offset})})
            metrics.ARRIVAL.labels("queued").observe(offset / 1000)
        payload = encode(message)
        with self.state.lock:
            # plain SQL: sqlite-utils' insert reads the table's schema first, 3x the time of the insert itself
            inserted = self.state.db.conn.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", [topic, payload])
            seq = int(inserted.lastrowid or 0)  # SQLite always gives an INSERT its rowid
            previous, self._last_seq = self._last_seq, seq
            self._count += 1
            excess = self._count - self.max_messages
            if excess > 0:
                self.state.db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", [excess]
                )
                self._count -= excess
                self.dropped += excess
                log.warning("outbox full (%d messages): dropped the %d oldest", self.max_messages, excess)
        timed = None
        if offset is not None:
            timed = (time.monotonic(), offset)
            with self._sync:
                self._timed[seq] = timed
                while len(self._timed) > self.max_messages:  # rows the bound dropped
                    del self._timed[next(iter(self._timed))]
        row = Row(seq, topic, payload)
        taken = [listener(row, previous) for listener in self._listeners]
        self._wrote(timed, seq)
        if not any(taken):
            with self.changed:
                self.changed.notify_all()
        return seq

    def pending(self, after: int, limit: int, upto: int | None = None) -> list[Row]:
        """Rows after ``after`` in order, at most ``limit``, none past ``upto`` if given."""
        with self.state.lock:
            rows = self.state.db.execute(
                "SELECT seq, topic, payload FROM outbox WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                [after, self._last_seq if upto is None else upto, limit],
            ).fetchall()
        return [Row(*row) for row in rows]

    def ack(self, seqs: Collection[int], heard: Mapping[int, float] | None = None) -> None:
        """Delete delivered rows; ``heard``: when each one's PUBACK came (monotonic), default now."""
        seqs = list(seqs)
        with self.state.lock:
            deleted = self.state.db.execute(f"DELETE FROM outbox WHERE seq IN ({','.join('?' * len(seqs))})", seqs)
            self._count -= deleted.rowcount
        acked = time.monotonic()
        with self._sync:
            for seq in seqs:
                if (timed := self._timed.pop(seq, None)) is not None:
                    at = heard.get(seq, acked) if heard else acked
                    metrics.ARRIVAL.labels("published").observe(timed[1] / 1000 + (at - timed[0]))
        self._wrote()
        with self.changed:
            self.changed.notify_all()

    @property
    def depth(self) -> int:
        with self.state.lock:
            return self._count

    def wait_empty(self, timeout: float) -> int:
        """Block until everything was delivered or ``timeout`` passed; return what is left."""
        with self.changed:
            self.changed.wait_for(lambda: self.depth == 0, timeout)
        return self.depth
