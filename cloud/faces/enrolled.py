"""Enrolled face embeddings: stored per source record, read as the person who owns them now.

The gallery index (``cloud.faces.gallery``) reads these incrementally by insertion order ``n`` and
rebuilds when the gallery epoch moves: the epoch is bumped whenever faces leave or change owner
(erasure, consent withdrawal, merge, split), which an append-only read could not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4

import numpy as np

from cloud.cdp.oneid import PERSON_OF
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx


@dataclass(frozen=True)
class StoredFace:
    id: str
    member_id: str
    vector: np.ndarray
    n: int = 0  # insertion order, for incremental gallery refresh


def add_face(
    db: Database, *, member_id: str, vector: np.ndarray, embedding_space: str, pack_id: str,
    det_score: float | None,
) -> StoredFace:
    face_id, vec = uuid4().hex, np.asarray(vector, dtype=np.float32)
    n = db.scalar(
        "INSERT INTO faces (id, member_id, embedding, embedding_space, pack, det_score, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING n",
        (face_id, member_id, vec.astype("<f4").tobytes(), embedding_space, pack_id, det_score, iso(utcnow())),
    )
    owner = db.scalar(f"SELECT {PERSON_OF} FROM members m WHERE m.id = ?", (member_id,))
    return StoredFace(id=face_id, member_id=owner or member_id, vector=vec, n=int(n))


def faces(db: Database, embedding_space: str, *, after: int = 0) -> list[StoredFace]:
    """Enrolled faces comparable with ``embedding_space``, owned by the person."""
    rows = db.rows(
        f"SELECT f.id, {PERSON_OF}, f.embedding, f.n FROM faces f JOIN members m ON m.id = f.member_id "
        "WHERE f.embedding_space = ? AND f.n > ? ORDER BY f.n",
        (embedding_space, after),
    )
    return [StoredFace(id=r[0], member_id=r[1], vector=np.frombuffer(r[2], dtype="<f4"), n=r[3]) for r in rows]


def face_owners(db: Database, embedding_space: str) -> dict[str, str]:
    """Face id -> the live person owning it now (no embeddings read)."""
    return dict(db.rows(
        f"SELECT f.id, {PERSON_OF} FROM faces f JOIN members m ON m.id = f.member_id "
        "WHERE f.embedding_space = ?", (embedding_space,)))


def gallery_epoch(db: Database) -> int:
    """Bumped whenever faces leave or change owner (erasure, consent withdrawal, merge, split)."""
    return int(db.scalar("SELECT epoch FROM gallery_state WHERE id = 1"))


def face_count(db: Database, member_id: str) -> int:
    """Faces enrolled for the person a member id belongs to."""
    return int(db.scalar(
        f"SELECT COUNT(*) FROM faces f JOIN members m ON m.id = f.member_id WHERE {PERSON_OF} = "
        f"(SELECT {PERSON_OF} FROM members m WHERE m.id = ?)",
        (member_id,),
    ))


def member_vectors(db: Database, member_id: str, embedding_space: str) -> list[np.ndarray]:
    """The embeddings already enrolled (in ``embedding_space``) for the person a member id belongs to."""
    rows = db.rows(
        f"SELECT f.embedding FROM faces f JOIN members m ON m.id = f.member_id WHERE f.embedding_space = ? "
        f"AND {PERSON_OF} = (SELECT {PERSON_OF} FROM members m WHERE m.id = ?) ORDER BY f.n",
        (embedding_space, member_id),
    )
    return [np.frombuffer(r[0], dtype="<f4") for r in rows]


def mean_template(vectors: list[np.ndarray]) -> np.ndarray | None:
    """The L2-normalised mean of unit-normalised embeddings (the bench's ``mean`` enrolment mode)."""
    if not vectors:
        return None
    units = [np.asarray(v, dtype=np.float64) / (np.linalg.norm(v) or 1.0) for v in vectors]
    mean = np.sum(units, axis=0)
    return (mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32)


def bump_gallery_epoch(tx: Tx) -> None:
    tx.execute("UPDATE gallery_state SET epoch = epoch + 1 WHERE id = 1")
