"""Bounded template updates: a member's gallery learns from arrivals the assistant confirmed.

An enrolment photo is taken once, at a counter; the door sees the member months later, from above,
in other light. A face the assistant confirmed (``served`` or ``sold`` on the member's card) is the
best evidence of how the member looks at that door now, so it may join the member's templates.
Every bound is there because a wrong template makes every later arrival worse:

- only arrivals shown as the member (never an uncertain one, whatever the assistant answered), with
  a score ``LEARN_ABOVE`` (a MobileFaceNet cosine, scaled per pack) over the pack's threshold;
- only for a member whose face consent counts when the confirmation arrives (the one rule,
  ``survivorship.face_consent``: a withdrawal holds over an older record's own flag);
- at most one learned face per visit and per person per ``LEARN_EVERY``;
- the embedding waits in ``face_pending`` until the confirmation, at most ``PENDING_FOR``; without
  one it is deleted, never learned;
- a "不是本人" on a visit deletes what was learned from it;
- the cap (``enrolled.MAX_TEMPLATES``) drops the oldest learned face first.

Learned faces are ``faces`` rows (``source = 'arrival'``, with visit and score): erasure and consent
withdrawal delete them with the enrolment photos, and the pending rows with them (``forget``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

from cloud.cdp import survivorship
from cloud.cdp.oneid import PERSON_OF
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from cloud.faces import calibration, enrolled
from protocol.facepack import PackError, get_pack

LEARN_ABOVE = 0.05
LEARN_EVERY = timedelta(days=1)
PENDING_FOR = timedelta(days=1)


def min_score(pack_id: str) -> float | None:
    """The score an arrival of this pack needs to be learned from; None for an unknown pack."""
    try:
        pack = get_pack(pack_id)
    except PackError:
        return None
    threshold = max(pack.bounds(1)[0], pack.bounds(2)[0])
    return threshold + LEARN_ABOVE * calibration.scale(pack)


def hold(db: Database, *, visit_id: str, member_id: str, vector: np.ndarray, pack_id: str, score: float,
         now: datetime | None = None) -> bool:
    """Keep a member arrival's embedding until the assistant confirms the visit, if it is high enough
    to be learned at all (``learn`` takes none older than ``PENDING_FOR``; ``expire`` drops those).
    True when held."""
    now = now or utcnow()
    floor = min_score(pack_id)
    if floor is None or score < floor:
        return False
    space = get_pack(pack_id).recogniser.embedding_space
    return bool(db.execute(
        "INSERT INTO face_pending (visit_id, member_id, embedding, embedding_space, pack, score, ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (visit_id, member_id, np.asarray(vector, dtype="<f4").tobytes(), space, pack_id, score, iso(now))))


#: How often each cloud process drops held faces past ``PENDING_FOR``.
EXPIRE_EVERY_S = 600.0


def expire(db: Database, now: datetime | None = None) -> int:
    """Drop held faces older than ``PENDING_FOR``, never confirmed; the rows dropped. A scheduler job
    (``cloud.runtime``), not part of every member arrival: there a range delete was a statement more
    and, with arrivals stored in batches by several ingest processes, rows locked by two of them at once."""
    return db.execute("DELETE FROM face_pending WHERE ts < ?", (iso((now or utcnow()) - PENDING_FOR),))


def learn(tx: Tx, visit_id: str, member_id: str, *, now: datetime | None = None) -> str | None:
    """The assistant confirmed the visit's member: learn its held face if every bound allows; the
    new face's id, else None. The pending row is used up either way."""
    now = now or utcnow()
    pending = tx.one("SELECT member_id, embedding, embedding_space, pack, score, ts FROM face_pending "
                     "WHERE visit_id = ?", (visit_id,))
    if pending is None:
        return None
    tx.execute("DELETE FROM face_pending WHERE visit_id = ?", (visit_id,))
    person = tx.scalar(f"SELECT {PERSON_OF} FROM members m WHERE m.id = ?", (member_id,))
    held_for = tx.scalar(f"SELECT {PERSON_OF} FROM members m WHERE m.id = ?", (pending["member_id"],))
    if person is None or person != held_for or datetime.fromisoformat(pending["ts"]) < now - PENDING_FOR:
        return None
    if not survivorship.face_consent_of(tx, person):
        return None
    recent = tx.scalar(
        f"SELECT COUNT(*) FROM faces f JOIN members m ON m.id = f.member_id WHERE f.source = 'arrival' "
        f"AND {PERSON_OF} = ? AND f.created >= ?", (person, iso(now - LEARN_EVERY)))
    if recent:
        return None
    face = enrolled.add_face(
        tx, member_id=person, vector=np.frombuffer(pending["embedding"], dtype="<f4"),
        embedding_space=pending["embedding_space"], pack_id=pending["pack"], det_score=None, source="arrival",
        visit_id=visit_id, score=float(pending["score"]))
    return face.id


def unlearn(tx: Tx, visit_id: str) -> int:
    """"不是本人" on a visit: forget its held face and any face learned from it; how many faces went."""
    tx.execute("DELETE FROM face_pending WHERE visit_id = ?", (visit_id,))
    removed = tx.execute("DELETE FROM faces WHERE source = 'arrival' AND visit_id = ?", (visit_id,))
    if removed:
        enrolled.bump_gallery_epoch(tx)
    return removed


def forget(tx: Tx, member_ids: Sequence[str]) -> int:
    """Erasure or consent withdrawal: the held arrival faces of these records go with their faces."""
    if not member_ids:
        return 0
    marks = ", ".join("?" for _ in member_ids)
    return tx.execute(f"DELETE FROM face_pending WHERE member_id IN ({marks})", list(member_ids))
