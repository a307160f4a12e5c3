"""Arrivals and visits: each arrival stored once (its event id is the idempotency key), each visit
read back per store.

An edge box re-sending after a lost PUBACK, or two cloud workers receiving the same message, leave
exactly one visit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cloud.cdp.oneid import PERSON_OF
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
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


def has_arrival(db: Database, event_id: str) -> bool:
    return db.scalar("SELECT 1 FROM arrivals WHERE event_id = ?", (event_id,)) is not None


def record_visit(db: Database, visit: Visit) -> bool:
    """Store the arrival and its visit together; False when the arrival was already stored."""
    with db.transaction() as tx:
        if not _claim_arrival(tx, visit):
            return False
        tx.execute(
            "INSERT INTO visits (id, brand, store, member_id, confidence, ts, arrival_event_id, device, camera, "
            "card_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (visit.id, visit.brand, visit.store, visit.member_id, visit.confidence, iso(visit.ts),
             visit.arrival_event_id, visit.device, visit.camera, visit.card_id),
        )
        register_device(tx, visit.brand, visit.store, visit.device, "edge")
    return True


def _claim_arrival(tx: Tx, visit: Visit) -> bool:
    """Record the arrival's event id; False when it was stored already (the idempotency key)."""
    inserted = tx.execute(
        "INSERT INTO arrivals (event_id, brand, store, device, camera, ts, received) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (visit.arrival_event_id, visit.brand, visit.store, visit.device, visit.camera, iso(visit.ts),
         iso(utcnow())),
    )
    return inserted != 0


def join_wifi_visit(db: Database, visit: Visit, confidence: float) -> bool:
    """A face arrival joining the Wi-Fi visit ``visit.id``: one visit, now with a card; False if a duplicate."""
    with db.transaction() as tx:
        if not _claim_arrival(tx, visit):
            return False
        tx.execute("UPDATE visits SET signals = 'face+wifi', confidence = ?, camera = ?, card_id = ? WHERE id = ?",
                   (confidence, visit.camera, visit.card_id, visit.id))
        register_device(tx, visit.brand, visit.store, visit.device, "edge")
    return True


def visits(db: Database, store: str, *, limit: int, offset: int = 0) -> list[Visit]:
    """A store's visits, newest capture first."""
    rows = db.query(
        "SELECT * FROM visits WHERE store = ? ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?", (store, limit, offset)
    )
    return [
        Visit(
            id=r["id"], brand=r["brand"], store=r["store"], member_id=r["member_id"],
            confidence=r["confidence"], ts=datetime.fromisoformat(r["ts"]),
            arrival_event_id=r["arrival_event_id"], device=r["device"], camera=r["camera"],
            card_id=r["card_id"], signals=r["signals"],
            left_ts=datetime.fromisoformat(r["left_ts"]) if r["left_ts"] else None, dwell_s=r["dwell_s"],
        )
        for r in rows
    ]


def visit_count(db: Database, member_id: str, brand: str) -> int:
    """Visits of the person a member id belongs to, at any store of the brand."""
    return int(db.scalar(
        f"SELECT COUNT(*) FROM visits v JOIN members m ON m.id = v.member_id WHERE {PERSON_OF} = "
        f"(SELECT {PERSON_OF} FROM members m WHERE m.id = ?) AND v.brand = ?",
        (member_id, brand),
    ))
