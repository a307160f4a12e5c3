"""Enrolled face embeddings: stored per source record, read as the person who owns them now.

The gallery index (``cloud.faces.gallery``) reads these incrementally by insertion order ``n`` and
rebuilds when the gallery epoch moves: the epoch is bumped whenever faces leave or change owner
(erasure, consent withdrawal, merge, split, a template replaced), which an append-only read could not see.

A person keeps at most ``MAX_TEMPLATES`` faces per embedding space: enrolment photos (``source``
``enrolment``, or ``reembedded`` from its thumbnail for a new pack, ``cloud.faces.reembed``) and faces
learned from arrivals the assistant confirmed (``arrival``, with the visit
and score, ``cloud.faces.learning``). Past the cap the oldest learned face goes first (appearance
drifts; the newest confirmed look is worth more), then the enrolment photo the detector trusted least.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Literal
from uuid import uuid4

import numpy as np

from cloud.cdp.oneid import PERSON_OF
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx

#: Faces kept per person and embedding space: more photos help less each (the mean template settles)
#: and every one is a stored biometric template.
MAX_TEMPLATES = 5
Source = Literal["enrolment", "arrival", "reembedded"]


@dataclass(frozen=True)
class StoredFace:
    id: str
    member_id: str
    vector: np.ndarray
    n: int = 0  # insertion order, for incremental gallery refresh


def add_face(
    db: Database | Tx, *, member_id: str, vector: np.ndarray, embedding_space: str, pack_id: str,
    det_score: float | None, source: Source = "enrolment", visit_id: str | None = None, score: float | None = None,
) -> StoredFace:
    """Store one face; past ``MAX_TEMPLATES`` for the person in that space, the weakest/oldest goes
    (in the same transaction)."""
    if isinstance(db, Database):
        with db.transaction() as tx:
            return add_face(tx, member_id=member_id, vector=vector, embedding_space=embedding_space, pack_id=pack_id,
                            det_score=det_score, source=source, visit_id=visit_id, score=score)
    face_id, vec = uuid4().hex, np.asarray(vector, dtype=np.float32)
    n = db.scalar(
        "INSERT INTO faces (id, member_id, embedding, embedding_space, pack, det_score, created, source, visit_id, "
        "score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING n",
        (face_id, member_id, vec.astype("<f4").tobytes(), embedding_space, pack_id, det_score, iso(utcnow()),
         source, visit_id, score),
    )
    owner = db.scalar(f"SELECT {PERSON_OF} FROM members m WHERE m.id = ?", (member_id,)) or member_id
    _keep_cap(db, owner, embedding_space)
    return StoredFace(id=face_id, member_id=owner, vector=vec, n=int(n))


def _keep_cap(db: Tx, person: str, embedding_space: str) -> None:
    """Drop the person's faces past ``MAX_TEMPLATES``: oldest learned ones first, then the enrolment
    photos with the lowest detector score, never the newest face."""
    rows = db.rows(
        f"SELECT f.id, f.n FROM faces f JOIN members m ON m.id = f.member_id WHERE f.embedding_space = ? AND {PERSON_OF} = ? "
        "ORDER BY CASE WHEN f.source = 'arrival' THEN 0 ELSE 1 END, "
        "CASE WHEN f.source = 'arrival' THEN f.n ELSE 0 END, COALESCE(f.det_score, 0), f.n",
        (embedding_space, person))
    if len(rows) <= MAX_TEMPLATES:
        return
    newest = max(rows, key=lambda r: r[1])[0]
    extra = [face for face, _ in rows if face != newest][:len(rows) - MAX_TEMPLATES]
    db.execute(f"DELETE FROM faces WHERE id IN ({', '.join('?' for _ in extra)})", extra)
    bump_gallery_epoch(db)


def catch_up(db: Database, embedding_space: str, *, after: int = 0, known: Container[str] = (),
             seen: tuple[int, int] | None = None) -> tuple[int, list[StoredFace]]:
    """The gallery's epoch (bumped whenever faces leave or change owner: erasure, consent withdrawal,
    merge, split) and the enrolled faces comparable with ``embedding_space`` numbered after
    ``after``, owned by the person, except those in ``known``.
    The gallery calls it on every arrival, with ``seen``: the epoch it last saw and how many of the
    faces it knows are numbered after ``after``. Faces only leave with an epoch bump, so the same
    epoch and as many faces in the window mean nothing is new: one statement returning one row
    (reading the window's thousand ids and checking each in Python was 14 % of an arrival's CPU,
    docs/PERFORMANCE.md, ninth pass). Otherwise the window's ids are read, and embeddings only
    when some face is not known (reading a thousand each time was most of an arrival's work)."""
    window = (embedding_space, after)
    if seen is not None:
        counted = db.rows("SELECT g.epoch, COUNT(f.id) FROM gallery_state g LEFT JOIN faces f "
                          "ON f.embedding_space = ? AND f.n > ? WHERE g.id = 1 GROUP BY g.epoch", window)
        if (int(counted[0][0]), int(counted[0][1])) == seen:
            return seen[0], []
    ids = db.rows("SELECT g.epoch, f.id FROM gallery_state g LEFT JOIN faces f ON f.embedding_space = ? AND f.n > ? "
                  "WHERE g.id = 1", window)
    epoch = int(ids[0][0])
    if all(face_id is None or face_id in known for _, face_id in ids):
        return epoch, []
    rows = db.rows(
        f"SELECT f.id, {PERSON_OF}, f.embedding, f.n FROM faces f JOIN members m ON m.id = f.member_id "
        "WHERE f.embedding_space = ? AND f.n > ? ORDER BY f.n", window,
    )
    return epoch, [StoredFace(id=r[0], member_id=r[1], vector=np.frombuffer(r[2], dtype="<f4"), n=r[3])
                   for r in rows if r[0] not in known]


def face_owners(db: Database, embedding_space: str) -> dict[str, str]:
    """Face id -> the live person owning it now (no embeddings read)."""
    return dict(db.rows(
        f"SELECT f.id, {PERSON_OF} FROM faces f JOIN members m ON m.id = f.member_id "
        "WHERE f.embedding_space = ?", (embedding_space,)))


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
