"""Members: sign-ups, the person a member id belongs to, the member as the guide sees them, consent.

A member id is the id of one source record (a counter sign-up, a Tmall buyer, a POS card); OneID
(``cloud.cdp.oneid``) links records into persons, and the person's id is its earliest record's id.
Every read here resolves an id to its person, so a member id handed out before a merge keeps
working after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import uuid4

from cloud.cdp import oneid
from cloud.cdp.oneid import PERSON_OF
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.db.database import IntegrityError
from cloud.errors import Conflict
from cloud.faces import enrolled, thumbnails

Gender = Literal["female", "male"]
MEMBER_SOURCE = "member"

class PhoneTaken(Conflict):
    """The phone number already belongs to a member: a phone is a OneID key, one person each."""

    code = "phone_taken"


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


def add_member(
    db: Database,
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
    with db.transaction() as tx:
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
    found = member(db, member_id)
    assert found is not None
    return found


def person_id(db: Database, member_id: str) -> str | None:
    """The person a member id belongs to now; None when unknown (or erased)."""
    return db.scalar(f"SELECT {PERSON_OF} FROM members m WHERE m.id = ?", (member_id,))


def member(db: Database, member_id: str) -> Member | None:
    with db.transaction() as tx:
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


def set_face_consent(db: Database, member_id: str, consent: bool) -> int:
    """Consent is the person's: it is set on every record; withdrawing it deletes their faces."""
    with db.transaction() as tx:
        person = tx.scalar(f"SELECT {PERSON_OF} FROM members m WHERE m.id = ?", (member_id,))
        tx.execute("UPDATE members SET face_consent = ? WHERE id = ? OR merged_into = ?", (consent, person, person))
        removed = 0
        if not consent:
            removed = tx.execute(
                "DELETE FROM faces WHERE member_id IN (SELECT id FROM members WHERE id = ? OR merged_into = ?)",
                (person, person),
            )
            if removed:
                enrolled.bump_gallery_epoch(tx)
            records = [r[0] for r in tx.rows("SELECT id FROM members WHERE id = ? OR merged_into = ?", (person, person))]
            thumbnails.delete(tx, records)  # the card's enrolled photo goes with the faces
    return removed
