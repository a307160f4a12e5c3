"""Members: sign-ups, the person a member id belongs to, the member as the guide sees them, consent.

A member id is the id of one source record (a counter sign-up, a Tmall buyer, a POS card); OneID
(``cloud.cdp.oneid``) links records into persons, and the person's id is its earliest record's id.
Every read here resolves an id to its person, so a member id handed out before a merge keeps
working after it.

A sign-up never attaches to an existing person without proof. When its phone already belongs to
someone (a counter sign-up, a Tmall/JD/WeChat/CRM record), the sign-up is its own *unverified*
person: its identifiers are stored blocked (``unverified``), so OneID links nobody through them,
until the phone's owner enters the one-time code sent to it or HQ merges explicitly
(``cloud.cdp.verification``).

Face consent is the person's own. It counts for the whole person in two cases only: it is the
flag of the person's head record, or it was given on a record whose phone was then *proven* by the
one-time code sent to it (``consent_proven``, ``cloud.cdp.verification``): a VIP who signed up at
the counter, entered the code and enrolled a face keeps their consent when an older Tmall record
becomes the person's head. Unproven consent on any other record never counts, so a merge never
turns consent on (someone signing up a stranger's phone before the stranger's orders arrive gains
nothing); a withdrawal on any record clears every record's consent and proof. Every grant, proof and
withdrawal is logged with when, where (store), who (the key's person) and how (``consent_log``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import uuid4

from cloud.cdp import oneid, survivorship
from cloud.cdp.oneid import PERSON_OF
from cloud.clock import iso, utcnow
from cloud.db import Database, Read, Tx
from cloud.errors import Conflict
from cloud.faces import enrolled, learning, thumbnails

Gender = Literal["female", "male"]
MEMBER_SOURCE = "member"
UNVERIFIED = oneid.UNVERIFIED

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
    verified: bool = True  # False: a sign-up held apart until its phone's owner proves it
    birthday: str | None = None  # ISO date, when a source knows it
    points: int | None = None
    home_store: str | None = None
    #: the person's records as ``member`` read them for this arrival's card, so the card's profile
    #: reads them once (``cloud.cdp.profile.profile_reads``); a Member lives one arrival or one
    #: request, never longer, so consent and erasure are read again by the next
    records: survivorship.PersonRecords | None = field(default=None, compare=False, repr=False)


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
    actor: str = "api",
    proof_first: bool = False,
) -> Member:
    """A counter or HQ sign-up: one record keyed by its phone, linked by OneID only when the phone
    belongs to nobody yet; else an unverified person of its own (``Member.verified`` False).
    ``proof_first``: unverified whoever holds the phone (a sign-up on the customer's own phone, where
    nobody at a counter saw who typed the number): only the one-time code releases it."""
    member_id, created = uuid4().hex, utcnow()
    with db.transaction() as tx:
        oneid.lock(tx)
        taken = proof_first or bool(
            tx.scalar("SELECT 1 FROM identifiers WHERE kind = 'phone' AND value = ? AND blocked IS NULL LIMIT 1",
                      (phone,))
            or tx.scalar("SELECT 1 FROM members WHERE source = ? AND source_key = ?", (MEMBER_SOURCE, phone)))
        tx.execute(
            "INSERT INTO members (id, source, source_key, name, gender, tier, tags, preferences, face_consent, "
            "home_store, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (member_id, MEMBER_SOURCE, None if taken else phone, name, gender, tier,
             json.dumps(tags, ensure_ascii=False), json.dumps(categories, ensure_ascii=False), face_consent,
             store, iso(created)),
        )
        if taken:
            tx.execute("INSERT INTO identifiers (member_id, kind, value, blocked, created) VALUES (?, 'phone', ?, ?, ?)",
                       (member_id, phone, UNVERIFIED, iso(created)))
        else:
            oneid.add_identifiers(tx, member_id, [("phone", phone)])
        log_consent(tx, member_id, member_id, face_consent, store=store, actor=actor, how="sign_up")
        if not taken:
            oneid.resolve_around(tx, [member_id], actor=actor)
        survivorship.store(tx, [tx.scalar(f"SELECT {PERSON_OF} FROM members m WHERE m.id = ?", (member_id,))])
    found = member(db, member_id)
    assert found is not None
    return found


def log_consent(tx: Tx, person: str, record: str, granted: bool, *, store: str | None, actor: str, how: str) -> None:
    """One consent decision: for which person, on which record, when, where, by whom and how."""
    tx.execute("INSERT INTO consent_log (person_id, record_id, kind, granted, ts, store, actor, how) "
               "VALUES (?, ?, 'face', ?, ?, ?, ?, ?)", (person, record, bool(granted), iso(utcnow()), store, actor, how))


def consent_history(records: list[str]) -> Read[list[dict]]:
    """The consent decisions recorded for these records (a person's: one or more), oldest first, each
    with its ``kind`` (``face``, or ``marketing:<channel>`` from ``cloud.activation.consent``): one log
    holds both, and an SMS "no" must not read as a face withdrawal."""
    marks = ", ".join("?" for _ in records)
    return Read.rows(f"SELECT record_id, kind, granted, ts, store, actor, how FROM consent_log "
                     f"WHERE record_id IN ({marks}) OR person_id IN ({marks}) ORDER BY id", (*records, *records))


def person_id(db: Database, member_id: str) -> str | None:
    """The person a member id belongs to now; None when unknown (or erased)."""
    return db.scalar(f"SELECT {PERSON_OF} FROM members m WHERE m.id = ?", (member_id,))


def member(db: Database, member_id: str) -> Member | None:
    rules = survivorship.rules(db)
    with db.transaction() as tx:
        # name, gender, tier, tags and phone by the brand's survivorship rules, never "the head's";
        # read as if member_id were the person (a face's member nearly always is: no head lookup
        # first), and again from its head when it was merged into one
        person = survivorship.person_records(tx, member_id, rules)
        head = person.row(member_id)
        if head is not None and head["merged_into"] is not None:
            person = survivorship.person_records(tx, head["merged_into"], rules)
            head = person.row(head["merged_into"])
        if head is None:
            return None
        best = survivorship.values_of(person.attributes)
        # every record's declared categories
        declared = list(dict.fromkeys(c for r in person.rows for c in json.loads(r["preferences"])))
        consent = person.face_consent(head["id"])
    return Member(
        id=head["id"], name=str(best["name"] or ""), phone=best["phone"],  # type: ignore[arg-type]
        gender=best["gender"], tier=str(best["tier"] or survivorship.DEFAULT_TIER),  # type: ignore[arg-type]
        tags=list(best["tags"]), categories=declared,  # type: ignore[call-overload]
        face_consent=consent, created=datetime.fromisoformat(head["created"]),
        verified=head["id"] not in person.unverified, birthday=best["birthday"], points=best["points"],  # type: ignore[arg-type]
        home_store=best["home_store"],  # type: ignore[arg-type]
        records=person,
    )


def regranted(tx: Tx, person: str) -> None:
    """The person has just given face consent themselves: an earlier withdrawal no longer holds on
    any of their records (``survivorship.face_consent``)."""
    tx.execute("UPDATE members SET consent_withdrawn = NULL WHERE id = ? OR merged_into = ?", (person, person))


def set_face_consent(db: Database, member_id: str, consent: bool, *, store: str | None = None,
                     actor: str = "api", proof: str | None = None) -> int:
    """Consent is the person's: given, it is set on the person's head record (unproven: it counts
    while that record is the head; ``proof``, the verification whose code the person has just
    entered, makes it proven: ``cloud.cdp.verification``); withdrawn, on every record, with every
    proof, and marked withdrawn on each (``survivorship.face_consent``: a record joining later with its
own flag does not undo it), and their faces are deleted. Either way it is logged with when, where and who."""
    with db.transaction() as tx:
        person = tx.scalar(f"SELECT {PERSON_OF} FROM members m WHERE m.id = ?", (member_id,))
        if consent:
            tx.execute("UPDATE members SET face_consent = ?, consent_proven = COALESCE(?, consent_proven) WHERE id = ?",
                       (True, proof, person))
            regranted(tx, person)
        else:
            tx.execute("UPDATE members SET face_consent = ?, consent_proven = NULL, consent_withdrawn = ? "
                       "WHERE id = ? OR merged_into = ?", (False, iso(utcnow()), person, person))
        log_consent(tx, person, member_id, consent, store=store, actor=actor,
                    how="proven_by_code" if consent and proof else "set")
        survivorship.store(tx, [person])
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
            learning.forget(tx, records)  # and the arrival faces held for a confirmation
    return removed
