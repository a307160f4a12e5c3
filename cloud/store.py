"""Members, faces, arrivals, visits, devices and the catalogue, over the storage interface.

Callers see records (dataclasses) and methods named after what the product does, never SQL. A
member id is the id of one source record (a counter sign-up, a Tmall buyer, a POS card); OneID
(``cloud.cdp.oneid``) links records into persons, and the person's id is its earliest record's id.
Every read here resolves an id to its person, so a member id handed out before a merge keeps
working after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal
from uuid import uuid4

import numpy as np

from cloud.cdp import oneid

from cloud.faces import thumbnails
from cloud.db import Database, open_database
from cloud.db.database import IntegrityError

CATALOGUE = Path(__file__).parent / "synthetic" / "catalog_sample.json"
Gender = Literal["female", "male"]
MEMBER_SOURCE = "member"


class PhoneTaken(ValueError):
    """The phone number already belongs to a member: a phone is a OneID key, one person each."""


@dataclass(frozen=True)
class Member:
    id: str  # the person's id (its earliest record)
    name: str
    phone: str | None
    gender: Gender | None
    tier: str
    tags: list[str]
    categories: list[str]
    face_consent: bool
    created: datetime


@dataclass(frozen=True)
class StoredFace:
    id: str
    member_id: str
    vector: np.ndarray
    n: int = 0  # insertion order, for incremental gallery refresh


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


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    price: float
    popularity: int
    is_new: bool


def iso(ts: datetime) -> str:
    """UTC with fixed microseconds, so that text order is time order in SQL."""
    return ts.astimezone(timezone.utc).isoformat(timespec="microseconds")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


#: The person a stored member id belongs to now.
PERSON_OF = "COALESCE(m.merged_into, m.id)"


class Store:
    def __init__(self, location: str | Path, *, catalogue: Path = CATALOGUE) -> None:
        self.db: Database = open_database(location)
        with self.db.transaction() as tx:
            if not tx.scalar("SELECT COUNT(*) FROM products"):
                products = json.loads(catalogue.read_text(encoding="utf-8"))
                tx.executemany(
                    "INSERT INTO products (sku, name, category, price, popularity, is_new) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    [(p["sku"], p["name"], p["category"], p["price"], p["popularity"], p["is_new"]) for p in products],
                )

    def close(self) -> None:
        self.db.close()

    # members ---------------------------------------------------------------------------------

    def add_member(
        self,
        *,
        name: str,
        phone: str,
        gender: Gender | None,
        tier: str,
        tags: list[str],
        categories: list[str],
        face_consent: bool,
        store: str | None = None,
    ) -> Member:
        """A counter or HQ sign-up: one record keyed by its phone, then linked by OneID."""
        member_id, created = uuid4().hex, utcnow()
        with self.db.transaction() as tx:
            try:
                tx.execute(
                    "INSERT INTO members (id, source, source_key, name, gender, tier, tags, preferences, face_consent, "
                    "home_store, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (member_id, MEMBER_SOURCE, phone, name, gender, tier, json.dumps(tags, ensure_ascii=False),
                     json.dumps(categories, ensure_ascii=False), face_consent, store, iso(created)),
                )
            except IntegrityError:
                raise PhoneTaken(f"phone {phone} already belongs to a member") from None
            oneid.add_identifiers(tx, member_id, [("phone", phone)])
            oneid.resolve_around(tx, [member_id], actor="api")
        found = self.member(member_id)
        assert found is not None
        return found

    def person_id(self, member_id: str) -> str | None:
        """The person a member id belongs to now; None when unknown (or erased)."""
        return self.db.scalar(f"SELECT {PERSON_OF} FROM members m WHERE m.id = ?", (member_id,))

    def member(self, member_id: str) -> Member | None:
        with self.db.transaction() as tx:
            head = tx.one(
                "SELECT h.* FROM members m JOIN members h ON h.id = COALESCE(m.merged_into, m.id) WHERE m.id = ?",
                (member_id,),
            )
            if head is None:
                return None
            cluster = tx.query(
                "SELECT face_consent, name, gender FROM members WHERE id = ? OR merged_into = ? ORDER BY created, id",
                (head["id"], head["id"]),
            )
            phone = tx.scalar(
                "SELECT i.value FROM identifiers i JOIN members m ON m.id = i.member_id "
                "WHERE (m.id = ? OR m.merged_into = ?) AND i.kind = 'phone' AND i.blocked IS NULL "
                "ORDER BY m.created, m.id, i.id LIMIT 1",
                (head["id"], head["id"]),
            )
        return Member(
            id=head["id"], name=next((r["name"] for r in cluster if r["name"]), ""), phone=phone,
            gender=next((r["gender"] for r in cluster if r["gender"]), None), tier=head["tier"],
            tags=json.loads(head["tags"]), categories=json.loads(head["preferences"]),
            face_consent=any(r["face_consent"] for r in cluster), created=datetime.fromisoformat(head["created"]),
        )

    def set_face_consent(self, member_id: str, consent: bool) -> int:
        """Consent is the person's: it is set on every record; withdrawing it deletes their faces."""
        with self.db.transaction() as tx:
            person = tx.scalar(f"SELECT {PERSON_OF} FROM members m WHERE m.id = ?", (member_id,))
            tx.execute("UPDATE members SET face_consent = ? WHERE id = ? OR merged_into = ?", (consent, person, person))
            removed = 0
            if not consent:
                removed = tx.execute(
                    "DELETE FROM faces WHERE member_id IN (SELECT id FROM members WHERE id = ? OR merged_into = ?)",
                    (person, person),
                )
                if removed:
                    bump_gallery_epoch(tx)
                records = [r[0] for r in tx.rows("SELECT id FROM members WHERE id = ? OR merged_into = ?", (person, person))]
                thumbnails.delete(tx, records)  # the card's enrolled photo goes with the faces
        return removed

    # faces -----------------------------------------------------------------------------------

    def add_face(
        self, *, member_id: str, vector: np.ndarray, embedding_space: str, pack_id: str, det_score: float
    ) -> StoredFace:
        face_id, vec = uuid4().hex, np.asarray(vector, dtype=np.float32)
        n = self.db.scalar(
            "INSERT INTO faces (id, member_id, embedding, embedding_space, pack, det_score, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING n",
            (face_id, member_id, vec.astype("<f4").tobytes(), embedding_space, pack_id, det_score, iso(utcnow())),
        )
        return StoredFace(id=face_id, member_id=self.person_id(member_id) or member_id, vector=vec, n=int(n))

    def faces(self, embedding_space: str, *, after: int = 0) -> list[StoredFace]:
        """Enrolled faces comparable with ``embedding_space``, owned by the person."""
        rows = self.db.rows(
            f"SELECT f.id, {PERSON_OF}, f.embedding, f.n FROM faces f JOIN members m ON m.id = f.member_id "
            "WHERE f.embedding_space = ? AND f.n > ? ORDER BY f.n",
            (embedding_space, after),
        )
        return [StoredFace(id=r[0], member_id=r[1], vector=np.frombuffer(r[2], dtype="<f4"), n=r[3]) for r in rows]

    def face_owners(self, embedding_space: str) -> dict[str, str]:
        """Face id -> the live person owning it now (no embeddings read)."""
        return dict(self.db.rows(
            f"SELECT f.id, {PERSON_OF} FROM faces f JOIN members m ON m.id = f.member_id "
            "WHERE f.embedding_space = ?", (embedding_space,)))

    def gallery_epoch(self) -> int:
        """Bumped whenever faces leave or change owner (erasure, consent withdrawal, merge, split)."""
        return int(self.db.scalar("SELECT epoch FROM gallery_state WHERE id = 1"))

    def face_count(self, member_id: str) -> int:
        return int(self.db.scalar(
            f"SELECT COUNT(*) FROM faces f JOIN members m ON m.id = f.member_id WHERE {PERSON_OF} = ?",
            (self.person_id(member_id),),
        ))

    # arrivals, visits, devices ----------------------------------------------------------------

    def has_arrival(self, event_id: str) -> bool:
        return self.db.scalar("SELECT 1 FROM arrivals WHERE event_id = ?", (event_id,)) is not None

    def record_visit(self, visit: Visit) -> bool:
        """Store the arrival and its visit together; False when the arrival was already stored.

        The arrival's event id is the idempotency key: an edge box re-sending after a lost PUBACK,
        or two cloud workers receiving the same message, leave exactly one visit.
        """
        with self.db.transaction() as tx:
            if not self._claim_arrival(tx, visit):
                return False
            tx.execute(
                "INSERT INTO visits (id, brand, store, member_id, confidence, ts, arrival_event_id, device, camera, "
                "card_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (visit.id, visit.brand, visit.store, visit.member_id, visit.confidence, iso(visit.ts),
                 visit.arrival_event_id, visit.device, visit.camera, visit.card_id),
            )
            self.register_device(visit.brand, visit.store, visit.device, "edge", tx=tx)
        return True

    @staticmethod
    def _claim_arrival(tx, visit: Visit) -> bool:  # noqa: ANN001
        """Record the arrival's event id; False when it was stored already (the idempotency key)."""
        inserted = tx.execute(
            "INSERT INTO arrivals (event_id, brand, store, device, camera, ts, received) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (visit.arrival_event_id, visit.brand, visit.store, visit.device, visit.camera, iso(visit.ts),
             iso(utcnow())),
        )
        return inserted != 0

    def join_wifi_visit(self, visit: Visit, confidence: float) -> bool:
        """A face arrival joining the Wi-Fi visit ``visit.id``: one visit, now with a card; False if a duplicate."""
        with self.db.transaction() as tx:
            if not self._claim_arrival(tx, visit):
                return False
            tx.execute("UPDATE visits SET signals = 'face+wifi', confidence = ?, camera = ?, card_id = ? WHERE id = ?",
                       (confidence, visit.camera, visit.card_id, visit.id))
            self.register_device(visit.brand, visit.store, visit.device, "edge", tx=tx)
        return True

    def visits(self, store: str, *, limit: int, offset: int = 0) -> list[Visit]:
        """A store's visits, newest capture first."""
        rows = self.db.query(
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

    def visit_count(self, member_id: str, brand: str) -> int:
        return int(self.db.scalar(
            f"SELECT COUNT(*) FROM visits v JOIN members m ON m.id = v.member_id WHERE {PERSON_OF} = ? AND v.brand = ?",
            (self.person_id(member_id), brand),
        ))

    def register_device(self, brand: str, store: str, device: str, role: str, *, tx=None) -> None:  # noqa: ANN001
        """Remember an edge box, so that commands (erase) can reach every box of the brand."""
        sql = ("INSERT INTO devices (brand, store, device, role, last_seen) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (brand, store, device) DO UPDATE SET last_seen = excluded.last_seen, role = excluded.role")
        params = (brand, store, device, role, iso(utcnow()))
        (tx or self.db).execute(sql, params)

    # products --------------------------------------------------------------------------------

    def best_sellers(self, limit: int, *, categories: list[str] | None = None) -> list[Product]:
        """Most popular products first, optionally only those in ``categories``."""
        where, args = "", []
        if categories is not None:
            where = f"WHERE category IN ({', '.join('?' for _ in categories)})"
            args = list(categories)
        rows = self.db.query(f"SELECT * FROM products {where} ORDER BY popularity DESC, sku LIMIT ?", (*args, limit))
        return [
            Product(sku=r["sku"], name=r["name"], category=r["category"], price=r["price"],
                    popularity=r["popularity"], is_new=bool(r["is_new"]))
            for r in rows
        ]


def bump_gallery_epoch(tx) -> None:  # noqa: ANN001
    tx.execute("UPDATE gallery_state SET epoch = epoch + 1 WHERE id = 1")
