"""The cloud's persistent state in one SQLite file, behind a small class.

Callers see records (dataclasses) and methods named after what the product does, never SQL, so
that a PostgreSQL store can replace this one without touching the API or the ingest worker.

One connection serves every thread, guarded by a lock: the API's worker threads and the ingest
thread each hold it for a few milliseconds per call, far below anything a single store's door
traffic can saturate, and a lock cannot leak connections the way per-thread ones can when
uvicorn's thread pool recycles threads. WAL mode lets outside readers (backups, the sqlite3 shell)
read while the service writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal
from uuid import uuid4

import numpy as np
import sqlite_utils

CATALOGUE = Path(__file__).with_name("catalog_sample.json")
Gender = Literal["female", "male"]


class PhoneTaken(ValueError):
    """The phone number already belongs to a member: a phone is a OneID key, one person each."""


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    phone: str
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
    card_id: str


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    price: float
    popularity: int
    is_new: bool


def _iso(ts: datetime) -> str:
    """UTC with fixed microseconds, so that text order is time order in SQL."""
    return ts.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Store:
    def __init__(self, path: Path, *, catalogue: Path = CATALOGUE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite_utils.Database(sqlite3.connect(path, check_same_thread=False))
        self._db.enable_wal()
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._create_schema()
        if not self._db["products"].count:
            self._db["products"].insert_all(json.loads(catalogue.read_text(encoding="utf-8")))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _create_schema(self) -> None:
        db = self._db
        db["members"].create(
            {
                "id": str, "name": str, "phone": str, "gender": str, "tier": str, "tags": str,
                "preferences": str, "face_consent": bool, "created": str,
            },
            pk="id", not_null={"name", "phone", "tier", "tags", "preferences", "face_consent", "created"},
            if_not_exists=True,
        )
        db["members"].create_index(["phone"], unique=True, if_not_exists=True)
        db["faces"].create(
            {
                "id": str, "member_id": str, "embedding": bytes, "embedding_space": str, "pack": str,
                "det_score": float, "created": str,
            },
            pk="id", foreign_keys=[("member_id", "members", "id")],
            not_null={"member_id", "embedding", "embedding_space", "pack", "created"},
            if_not_exists=True,
        )
        db["faces"].create_index(["embedding_space"], if_not_exists=True)
        db["arrivals"].create(
            {"event_id": str, "brand": str, "store": str, "device": str, "camera": str, "ts": str, "received": str},
            pk="event_id", not_null={"brand", "store", "device", "camera", "ts", "received"},
            if_not_exists=True,
        )
        db["visits"].create(
            {
                "id": str, "brand": str, "store": str, "member_id": str, "confidence": float, "ts": str,
                "arrival_event_id": str, "device": str, "camera": str, "card_id": str,
            },
            pk="id",
            foreign_keys=[("member_id", "members", "id"), ("arrival_event_id", "arrivals", "event_id")],
            not_null={"brand", "store", "confidence", "ts", "arrival_event_id", "device", "camera", "card_id"},
            if_not_exists=True,
        )
        db["visits"].create_index(["brand", "store", "ts"], if_not_exists=True)
        db["visits"].create_index(["member_id", "brand"], if_not_exists=True)
        db["products"].create(
            {"sku": str, "name": str, "category": str, "price": float, "popularity": int, "is_new": bool},
            pk="sku", not_null={"name", "category", "price", "popularity", "is_new"},
            if_not_exists=True,
        )
        db["products"].create_index(["category", "popularity"], if_not_exists=True)

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
    ) -> Member:
        member = Member(
            id=uuid4().hex, name=name, phone=phone, gender=gender, tier=tier, tags=tags,
            categories=categories, face_consent=face_consent, created=_utcnow(),
        )
        row = {
            "id": member.id, "name": name, "phone": phone, "gender": gender, "tier": tier,
            "tags": json.dumps(tags, ensure_ascii=False),
            "preferences": json.dumps({"categories": categories}, ensure_ascii=False),
            "face_consent": face_consent, "created": _iso(member.created),
        }
        with self._lock:
            try:
                self._db["members"].insert(row)
            except sqlite3.IntegrityError:
                raise PhoneTaken(f"phone {phone} already belongs to a member") from None
        return member

    def member(self, member_id: str) -> Member | None:
        with self._lock:
            rows = list(self._db["members"].rows_where("id = ?", [member_id]))
        if not rows:
            return None
        row = rows[0]
        return Member(
            id=row["id"], name=row["name"], phone=row["phone"], gender=row["gender"], tier=row["tier"],
            tags=json.loads(row["tags"]), categories=json.loads(row["preferences"]).get("categories", []),
            face_consent=bool(row["face_consent"]), created=datetime.fromisoformat(row["created"]),
        )

    # faces -----------------------------------------------------------------------------------

    def add_face(
        self, *, member_id: str, vector: np.ndarray, embedding_space: str, pack_id: str, det_score: float
    ) -> StoredFace:
        face = StoredFace(id=uuid4().hex, member_id=member_id, vector=np.asarray(vector, dtype=np.float32))
        with self._lock:
            self._db["faces"].insert({
                "id": face.id, "member_id": member_id, "embedding": face.vector.astype("<f4").tobytes(),
                "embedding_space": embedding_space, "pack": pack_id, "det_score": det_score,
                "created": _iso(_utcnow()),
            })
        return face

    def faces(self, embedding_space: str) -> list[StoredFace]:
        """Every enrolled face comparable with vectors of ``embedding_space``."""
        with self._lock:
            rows = list(self._db["faces"].rows_where(
                "embedding_space = ?", [embedding_space], select="id, member_id, embedding", order_by="rowid"
            ))
        return [
            StoredFace(id=r["id"], member_id=r["member_id"], vector=np.frombuffer(r["embedding"], dtype="<f4"))
            for r in rows
        ]

    def face_count(self, member_id: str) -> int:
        with self._lock:
            return self._db["faces"].count_where("member_id = ?", [member_id])

    # arrivals and visits ---------------------------------------------------------------------

    def has_arrival(self, event_id: str) -> bool:
        with self._lock:
            return bool(self._db["arrivals"].count_where("event_id = ?", [event_id]))

    def record_visit(self, visit: Visit) -> bool:
        """Store the arrival and its visit together; False when the arrival was already stored.

        The arrival's event id is the idempotency key: an edge box re-sending after a lost PUBACK,
        or two cloud workers receiving the same message, leave exactly one visit.
        """
        with self._lock, self._db.atomic():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO arrivals (event_id, brand, store, device, camera, ts, received) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [visit.arrival_event_id, visit.brand, visit.store, visit.device, visit.camera,
                 _iso(visit.ts), _iso(_utcnow())],
            )
            if cursor.rowcount == 0:
                return False
            self._db["visits"].insert({
                "id": visit.id, "brand": visit.brand, "store": visit.store, "member_id": visit.member_id,
                "confidence": visit.confidence, "ts": _iso(visit.ts), "arrival_event_id": visit.arrival_event_id,
                "device": visit.device, "camera": visit.camera, "card_id": visit.card_id,
            })
        return True

    def visits(self, store: str, *, limit: int, offset: int = 0) -> list[Visit]:
        """A store's visits, newest capture first."""
        with self._lock:
            rows = list(self._db["visits"].rows_where(
                "store = ?", [store], order_by="ts DESC, rowid DESC", limit=limit, offset=offset
            ))
        return [
            Visit(
                id=r["id"], brand=r["brand"], store=r["store"], member_id=r["member_id"],
                confidence=r["confidence"], ts=datetime.fromisoformat(r["ts"]),
                arrival_event_id=r["arrival_event_id"], device=r["device"], camera=r["camera"],
                card_id=r["card_id"],
            )
            for r in rows
        ]

    def visit_count(self, member_id: str, brand: str) -> int:
        with self._lock:
            return self._db["visits"].count_where("member_id = ? AND brand = ?", [member_id, brand])

    # products --------------------------------------------------------------------------------

    def best_sellers(self, limit: int, *, categories: list[str] | None = None) -> list[Product]:
        """Most popular products first, optionally only those in ``categories``."""
        where, args = None, []
        if categories is not None:
            where = f"category IN ({', '.join('?' for _ in categories)})"
            args = list(categories)
        with self._lock:
            rows = list(self._db["products"].rows_where(
                where, args, order_by="popularity DESC, sku", limit=limit
            ))
        return [
            Product(sku=r["sku"], name=r["name"], category=r["category"], price=r["price"],
                    popularity=r["popularity"], is_new=bool(r["is_new"]))
            for r in rows
        ]
