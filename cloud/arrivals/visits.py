"""Arrivals and visits: each arrival stored once (its event id is the idempotency key), each visit
read back per store.

An edge box re-sending after a lost PUBACK, or two cloud workers receiving the same message, leave
exactly one visit.

**Across boxes** (a store with two entrances, two boxes): the edge de-duplicates only what its own
cameras saw, so the cloud does the rest. A member's arrival at a store where the same person has a
face visit within the re-visit window (``REVISIT_WINDOW_S``, the edge's default) is that visit:
the arrival is stored against it (``arrivals.visit_id``) and no second visit or card is made,
whichever box saw them. A visitor has no id to compare, so ``RecentVisitors`` keeps each visitor
visit's embedding for a few seconds (``VISITOR_WINDOW_S``) in the worker's memory: another box's
visitor arrival at the same store within that time whose embedding is near-identical (cosine >=
``VISITOR_SAME_COSINE``) is the same visit. The vectors live only that long and never reach the
database.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from cloud.arrivals.wifi import Phone
from cloud.cdp.oneid import PERSON_OF
from cloud.clock import iso, utcnow
from cloud.db import Database, Read, Tx
from cloud.db.database import POSTGRES
from cloud.fleet.devices import register_device


@dataclass(frozen=True)
class Visit:
    id: str
    brand: str
    store: str
    member_id: str | None
    confidence: float
    ts: datetime
    arrival_event_id: str
    device: str
    camera: str
    card_id: str  # '' for a Wi-Fi-only visit: it has no card
    signals: str = "face"  # face | wifi | face+wifi
    left_ts: datetime | None = None
    dwell_s: float | None = None
    arrivals: tuple[str, ...] = ()  # every arrival stored against this visit, from any box, in capture order
    # Wi-Fi fusion (``cloud.arrivals.fusion``): the candidate's phone state when the face was decided,
    # the fused posterior and its reasons ("；"-separated); None for a visitor with no candidate
    phone: Phone | None = None
    fused_confidence: float | None = None
    fusion: str | None = None


def has_arrival(db: Database, event_id: str) -> bool:
    return db.scalar("SELECT 1 FROM arrivals WHERE event_id = ?", (event_id,)) is not None


def record_visit(db: Database, visit: Visit, *, register: bool = True) -> bool:
    """Store the arrival and its visit together; False when the arrival was already stored.
    ``register`` False: the box's ``devices`` row was written moments ago (``cloud.arrivals.ingest``
    writes it at most every ``DEVICE_SEEN_EVERY_S``), so it is left alone, and unlocked."""
    with db.transaction() as tx:
        if not _claim_arrival(tx, visit):
            return False
        tx.execute(
            "INSERT INTO visits (id, brand, store, member_id, confidence, ts, arrival_event_id, device, camera, "
            "card_id, signals, phone, fused_confidence, fusion) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (visit.id, visit.brand, visit.store, visit.member_id, visit.confidence, iso(visit.ts),
             visit.arrival_event_id, visit.device, visit.camera, visit.card_id, visit.signals, visit.phone,
             visit.fused_confidence, visit.fusion),
        )
        if register:
            register_device(tx, visit.brand, visit.store, visit.device, "edge")
    return True


def _claim_arrival(tx: Tx, visit: Visit) -> bool:
    """Record the arrival's event id; False when it was stored already (the idempotency key)."""
    inserted = tx.execute(
        "INSERT INTO arrivals (event_id, brand, store, device, camera, ts, received, visit_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (visit.arrival_event_id, visit.brand, visit.store, visit.device, visit.camera, iso(visit.ts),
         iso(utcnow()), visit.id),
    )
    return inserted != 0


#: the same member at the same store within this is one visit, whichever boxes saw them (the edge's default)
REVISIT_WINDOW_S = 600
#: a visitor seen by two boxes within this many seconds ...
VISITOR_WINDOW_S = 10.0
#: ... with embeddings at least this similar is counted once
VISITOR_SAME_COSINE = 0.85


def hold_member_visit(db: Database | Tx, member_id: str, brand: str, store: str) -> None:
    """Serialise the member visit rule for this person at this store across ingest processes, until
    the caller's transaction ends (PostgreSQL; SQLite has one writer). Two processes can each be
    storing the same person's arrival from two boxes: without this, neither sees the other's
    uncommitted visit and both open one, a window as long as an ingest batch. Under the lock the
    second waits for the first to commit and then finds its visit. Outside a transaction the lock
    is released at once, so it protects only a caller that holds one (``Database.grouped``)."""
    if db.dialect is POSTGRES:
        db.scalar(f"SELECT pg_advisory_xact_lock(hashtext(? || (SELECT {PERSON_OF} FROM members m WHERE m.id = ?)))",
                  (f"visit:{brand}:{store}:", member_id))


def member_visit_nearby(db: Database | Tx, member_id: str, brand: str, store: str, ts: datetime,
                        window_s: int = REVISIT_WINDOW_S) -> str | None:
    """The id of the person's face visit at ``store`` within ``window_s`` of ``ts`` (any box), or None.

    Wi-Fi-only visits are not counted here (a face arrival joins those, see ``cloud.arrivals.wifi``)."""
    window = timedelta(seconds=window_s)
    return db.scalar(
        f"SELECT v.id FROM visits v JOIN members m ON m.id = v.member_id WHERE v.store = ? AND v.brand = ? "
        f"AND {PERSON_OF} = (SELECT {PERSON_OF} FROM members m WHERE m.id = ?) AND v.signals != 'wifi' "
        "AND v.ts BETWEEN ? AND ? ORDER BY v.ts LIMIT 1",
        (store, brand, member_id, iso(ts - window), iso(ts + window)))


def attach_arrival(db: Database, visit: Visit, *, register: bool = True) -> bool:
    """Store an arrival as seen within the existing visit ``visit.id`` (another box's, or this box's
    after the edge forgot it); no new visit, no card. False when the arrival was stored already."""
    with db.transaction() as tx:
        if not _claim_arrival(tx, visit):
            return False
        if register:
            register_device(tx, visit.brand, visit.store, visit.device, "edge")
    return True


def boxes_of(db: Database, visit_id: str) -> list[str]:
    """The devices whose arrivals went to this visit (one per box that saw the person)."""
    return [r[0] for r in db.rows("SELECT DISTINCT device FROM arrivals WHERE visit_id = ? ORDER BY device",
                                  (visit_id,))]


class RecentVisitors:
    """Visitor visits of the last few seconds, per store, with their embeddings (memory only)."""

    def __init__(self, *, window_s: float = VISITOR_WINDOW_S, same_cosine: float = VISITOR_SAME_COSINE) -> None:
        self.window_s = window_s
        self.same_cosine = same_cosine
        self._lock = threading.Lock()
        self._recent: dict[tuple[str, str], deque[tuple[float, np.ndarray, str]]] = {}
        self._journal: list[tuple[tuple[str, str], str]] | None = None  # what was remembered, while staged

    def same_visit(self, brand: str, store: str, vector: np.ndarray, ts: datetime) -> str | None:
        """The visit id of a visitor at this store within the window whose embedding is near-identical."""
        at = ts.timestamp()
        unit = _unit(vector)
        with self._lock:
            seen = self._recent.get((brand, store))
            if not seen:
                return None
            while seen and seen[0][0] < at - 2 * self.window_s:
                seen.popleft()
            best, best_cos = None, self.same_cosine
            for when, other, visit_id in seen:
                if abs(when - at) <= self.window_s and other.shape == unit.shape:
                    cosine = float(np.dot(unit, other))
                    if cosine >= best_cos:
                        best, best_cos = visit_id, cosine
            return best

    def remember(self, brand: str, store: str, vector: np.ndarray, ts: datetime, visit_id: str) -> None:
        with self._lock:
            self._recent.setdefault((brand, store), deque(maxlen=1000)).append((ts.timestamp(), _unit(vector), visit_id))
            if self._journal is not None:
                self._journal.append(((brand, store), visit_id))

    @contextmanager
    def staged(self) -> Iterator[None]:
        """Visitors remembered within are forgotten again if it raises: their visits were rolled back
        with a batch of arrivals (``cloud.arrivals.ingest``), which is routed again one by one, and a
        remembered visit that was never stored would swallow its own arrival as "the same visit"."""
        with self._lock:
            self._journal = []
        try:
            yield
        except BaseException:
            with self._lock:
                for key, visit_id in self._journal or ():
                    seen = self._recent[key]
                    self._recent[key] = deque((e for e in seen if e[2] != visit_id), maxlen=seen.maxlen)
            raise
        finally:
            with self._lock:
                self._journal = None


def _unit(vector: np.ndarray) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def join_wifi_visit(db: Database, visit: Visit, *, register: bool = True) -> bool:
    """A face arrival joining the Wi-Fi visit ``visit.id``: one visit, now with a card, the face's score
    and the fusion's verdict; False if a duplicate."""
    with db.transaction() as tx:
        if not _claim_arrival(tx, visit):
            return False
        tx.execute("UPDATE visits SET signals = 'face+wifi', confidence = ?, camera = ?, card_id = ?, phone = ?, "
                   "fused_confidence = ?, fusion = ? WHERE id = ?",
                   (visit.confidence, visit.camera, visit.card_id, visit.phone, visit.fused_confidence, visit.fusion,
                    visit.id))
        if register:
            register_device(tx, visit.brand, visit.store, visit.device, "edge")
    return True


def visits(db: Database, store: str, *, limit: int, offset: int = 0) -> list[Visit]:
    """A store's visits, newest capture first."""
    rows = db.query(
        "SELECT * FROM visits WHERE store = ? ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?", (store, limit, offset)
    )
    seen: dict[str, list[str]] = {r["id"]: [] for r in rows}
    if seen:
        marks = ", ".join("?" for _ in seen)
        for event_id, visit_id in db.rows(
                f"SELECT event_id, visit_id FROM arrivals WHERE visit_id IN ({marks}) ORDER BY ts, event_id", list(seen)):
            seen[visit_id].append(event_id)
    return [
        Visit(
            id=r["id"], brand=r["brand"], store=r["store"], member_id=r["member_id"],
            confidence=r["confidence"], ts=datetime.fromisoformat(r["ts"]),
            arrival_event_id=r["arrival_event_id"], device=r["device"], camera=r["camera"],
            card_id=r["card_id"], signals=r["signals"],
            left_ts=datetime.fromisoformat(r["left_ts"]) if r["left_ts"] else None, dwell_s=r["dwell_s"],
            arrivals=tuple(seen[r["id"]]), phone=r["phone"], fused_confidence=r["fused_confidence"],
            fusion=r["fusion"],
        )
        for r in rows
    ]


def mark_uncertain(db: Database, visit_id: str, member_id: str, ts: datetime) -> None:
    """An uncertain match (issue 18): the visit stays a visitor visit; whom it might be is kept as
    ``corrected_member_id`` with reason ``uncertain`` until the assistant confirms or rejects it
    (``cloud.arrivals.feedback``), and erasure clears it like any correction."""
    db.execute("UPDATE visits SET corrected_member_id = ?, corrected_reason = 'uncertain', corrected_ts = ? "
               "WHERE id = ? AND member_id IS NULL", (member_id, iso(ts), visit_id))


def one(db: Database, visit_id: str) -> dict | None:
    """A visit's row as stored (the ``visits`` table's columns)."""
    return db.one("SELECT * FROM visits WHERE id = ?", (visit_id,))


def uncertain_visit_of(db: Database | Tx, person: str, store: str, ts: datetime, window_s: int) -> dict | None:
    """The person's still-uncertain visit at ``store`` in the ``window_s`` before ``ts`` (the newest)."""
    return db.one(
        f"SELECT v.* FROM visits v JOIN members m ON m.id = v.corrected_member_id WHERE {PERSON_OF} = ? "
        "AND v.store = ? AND v.member_id IS NULL AND v.corrected_reason = 'uncertain' AND v.ts BETWEEN ? AND ? "
        "ORDER BY v.ts DESC LIMIT 1", (person, store, iso(ts - timedelta(seconds=window_s)), iso(ts)))


def promote(db: Database | Tx, visit_id: str, member_id: str, *, phone: Phone, fused_confidence: float, fusion: str,
            ts: datetime) -> bool:
    """An uncertain visit that Wi-Fi fusion raised to the member after its face (the phone's ``enter``
    came later): the member's visit now, with both signals; False when it was no longer uncertain."""
    return bool(db.execute(
        "UPDATE visits SET member_id = ?, corrected_member_id = NULL, corrected_reason = 'wifi', corrected_ts = ?, "
        "signals = 'face+wifi', phone = ?, fused_confidence = ?, fusion = ? "
        "WHERE id = ? AND member_id IS NULL AND corrected_reason = 'uncertain'",
        (member_id, iso(ts), phone, fused_confidence, fusion, visit_id)))


def reissue_card(db: Database, visit_id: str, card_id: str) -> None:
    """The visit's card is now ``card_id`` (the member's full card sent after 是): the screen's later
    taps (已接待, 成交) name that card, and feedback is accepted only for the visit's current card."""
    db.execute("UPDATE visits SET card_id = ? WHERE id = ?", (card_id, visit_id))


def visit_count(db: Database, member_id: str, brand: str) -> int:
    """Visits of the person a member id belongs to, at any store of the brand (corrected visits,
    "不是本人", are visitor visits and no longer count)."""
    return visit_count_read(member_id, brand).run(db)


def visit_count_read(member_id: str, brand: str) -> Read[int]:
    """``visit_count`` as a read to gather with a card's other reads about the person."""
    return Read(
        f"SELECT COUNT(*) AS n FROM visits v JOIN members m ON m.id = v.member_id WHERE {PERSON_OF} = "
        f"(SELECT {PERSON_OF} FROM members m WHERE m.id = ?) AND v.brand = ?",
        (member_id, brand), _count)


def _count(rows: list[dict]) -> int:
    return int(rows[0]["n"])
