"""Proof of the phone: a one-time code to it, before a sign-up joins a person or its consent counts.

Two things wait for the phone's owner to prove it (``kind``):

* ``phone``: an unverified sign-up (its phone already belonged to someone). ``confirm`` releases its
  identifiers, so OneID links it to the person who owns the phone. HQ's explicit merge
  (``oneid.merge``) is the other way in, but proves nothing about consent.
* ``consent``: a sign-up that consented to face recognition (``members.face_consent``). Unproven,
  that consent counts only while its record is the person's head; once the code is entered it is
  *proven* (``members.consent_proven``) and counts for the person whichever record is head after
  later merges (a counter VIP whose older Tmall record becomes head keeps the member card).

Either way a correct code proves the phone, so a consenting record's consent becomes proven and is
logged (``verified_sign_up`` / ``proven_by_code``) with when, where and who. ``start`` holds a
code (only its hash is stored, bound to the verification's id) and sends it through the SMS
sender; ``confirm`` checks it (at most ``MAX_ATTEMPTS`` tries, within ``TTL``).

Other features prove a phone the same way with their own kinds, through ``send_code`` and
``check_code``: ``bind:<kind>`` (``cdp.binding``, a channel's identifier joins the person) and
``guest_wifi`` (``arrivals.guest_wifi``, the phone's address on a store's network), each with its
own ``SendLimit``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from cloud.cdp import members, oneid, survivorship
from cloud.channels.sms import SmsFailed, SmsSender
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.errors import Conflict, Invalid, NotFound, TooManyRequests, Unavailable
from protocol.messages import new_id

TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
#: Codes sent for one sign-up at most (each resend is one more chance to guess, and one more SMS).
MAX_SENDS = 3
OTP_TEMPLATE_PARAM = "code"


@dataclass(frozen=True)
class SendLimit:
    """How many codes one record may be sent for one kind: each is one more SMS and one more chance
    to guess. ``most`` codes within the last ``hours`` (None: ever); ``then`` ends the refusal with
    what is left to the person."""

    most: int
    hours: int | None = None
    then: str = ""


#: A sign-up's or a binding's: ``MAX_SENDS`` codes for the record, ever.
PER_RECORD = SendLimit(MAX_SENDS)
#: A sign-up's, by what it waits to prove (``waiting``).
SIGN_UP_LIMITS = {"phone": SendLimit(MAX_SENDS, then="; HQ can merge it"),
                  "consent": SendLimit(MAX_SENDS, then="; its consent stays unproven")}


class UnknownVerification(NotFound):
    code = "unknown_verification"


class VerificationClosed(Conflict):
    """Verified, failed (too many wrong codes) or expired: start again."""

    code = "verification_closed"


class WrongCode(Invalid):
    code = "wrong_code"


class TooManySends(TooManyRequests):
    code = "too_many_codes"


class NoSms(Unavailable):
    """No SMS gateway: the sign-up waits for HQ's explicit merge."""

    code = "sms_not_configured"


@dataclass(frozen=True)
class Pending:
    id: str
    member_id: str
    kind: str  # phone: an unverified sign-up waits to join; consent: face consent waits to be proven
    sent: bool  # False: no SMS gateway configured, only HQ's merge can join the records
    expires: str


def _hash(verification_id: str, code: str) -> str:
    return hashlib.sha256(f"{verification_id}:{code}".encode()).hexdigest()


#: the record ``m``'s person withdrew face consent (a mark on any of their records,
#: ``members.set_face_consent``): the consent this record gave before joining them is not theirs to
#: prove any more, only a fresh grant (``PUT /v1/members/{id}/consent``) turns it back on
_WITHDRAWN = ("EXISTS (SELECT 1 FROM members w WHERE (w.id = COALESCE(m.merged_into, m.id) "
              "OR w.merged_into = COALESCE(m.merged_into, m.id)) AND w.consent_withdrawn IS NOT NULL)")


def waiting(db: Database, member_id: str) -> tuple[str, str] | None:
    """What the record ``member_id`` waits to prove, and the phone the code goes to: ``("phone", ..)``
    for an unverified sign-up, ``("consent", ..)`` for unproven face consent; None: nothing."""
    phone = db.scalar("SELECT value FROM identifiers WHERE member_id = ? AND kind = 'phone' AND blocked = ?",
                      (member_id, members.UNVERIFIED))
    if phone is not None:
        return "phone", phone
    phone = db.scalar("SELECT i.value FROM identifiers i JOIN members m ON m.id = i.member_id "
                      f"WHERE m.id = ? AND m.face_consent = 1 AND m.consent_proven IS NULL AND i.kind = 'phone' "
                      f"AND i.blocked IS NULL AND NOT ({_WITHDRAWN}) ORDER BY i.id LIMIT 1", (member_id,))
    return None if phone is None else ("consent", phone)


def start(db: Database, member_id: str, *, sms: SmsSender | None, template: str, actor: str,
          store: str | None) -> Pending:
    """Hold a fresh code for what ``member_id`` waits to prove (``waiting``) and text it to its phone."""
    proof = waiting(db, member_id)
    if proof is None:
        raise VerificationClosed(f"member {member_id} has nothing left to verify")
    kind, phone = proof
    return send_code(db, member_id, kind=kind, value=phone, phone=phone, sms=sms, template=template, actor=actor,
                     store=store, limit=SIGN_UP_LIMITS[kind])


def send_code(db: Database, member_id: str, *, kind: str, value: str, phone: str, sms: SmsSender | None,
              template: str, actor: str, store: str | None, limit: SendLimit = PER_RECORD) -> Pending:
    """Hold a fresh code proving ``kind``/``value`` for ``member_id`` (a sign-up's phone or consent,
    an identifier to bind: ``cdp.binding``, a guest Wi-Fi address: ``arrivals.guest_wifi``) and text it
    to ``phone``, within the kind's ``limit``; the previous pending one of the kind stops."""
    now = utcnow()
    since = "" if limit.hours is None else iso(now - timedelta(hours=limit.hours))
    sends = db.scalar("SELECT COUNT(*) FROM verifications WHERE member_id = ? AND kind = ? AND created >= ?",
                      (member_id, kind, since))
    if sends >= limit.most:
        within = "" if limit.hours is None else f" in the last {limit.hours} h"
        raise TooManySends(f"{limit.most} codes were sent for this record{within} already{limit.then}")
    verification_id, code = new_id(), f"{secrets.randbelow(10**6):06d}"
    expires = iso(now + TTL)
    with db.transaction() as tx:
        tx.execute("UPDATE verifications SET status = 'replaced', decided = ? WHERE member_id = ? AND kind = ? "
                   "AND status = 'pending'", (iso(now), member_id, kind))
        tx.execute("INSERT INTO verifications (id, member_id, kind, value, code_hash, status, attempts, sent, created, "
                   "expires, store, actor) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?)",
                   (verification_id, member_id, kind, value, _hash(verification_id, code), sms is not None, iso(now),
                    expires, store, actor))
    sent = sms is not None
    if sms is not None:
        try:
            sms.send(phone, template, {OTP_TEMPLATE_PARAM: code}, out_id=verification_id)
        except SmsFailed:  # the request stands; a resend or HQ's merge can still join it
            sent = False
            db.execute("UPDATE verifications SET sent = ? WHERE id = ?", (False, verification_id))
    return Pending(verification_id, member_id, kind, sent, expires)


def check_code(db: Database, member_id: str | None, verification_id: str, code: str, *, kinds: tuple[str, ...],
               store: str | None = None) -> dict:
    """The pending verification ``verification_id`` (of one of ``kinds``) of ``member_id`` and/or at
    ``store`` (whichever are given: the caller's scope; a portal knows the store, not yet the member),
    if ``code`` is its code (at most ``MAX_ATTEMPTS`` tries, within ``TTL``); marked verified. Else why not.

    Each guess spends its try (a conditional increment) before it is compared, so guesses sent in
    parallel cannot get more than ``MAX_ATTEMPTS`` tries between them."""
    scope = [(column, value) for column, value in (("member_id", member_id), ("store", store)) if value is not None]
    with db.transaction() as tx:
        row = tx.one(f"SELECT * FROM verifications WHERE id = ? {''.join(f'AND {c} = ? ' for c, _ in scope)}"
                     f"AND kind IN ({', '.join('?' * len(kinds))})",
                     (verification_id, *(v for _, v in scope), *kinds))
        if row is None:
            raise UnknownVerification(f"no verification {verification_id} "
                                      + " ".join(f"for {c} {v}" for c, v in scope))
        now = utcnow()
        if row["status"] == "pending" and row["expires"] < iso(now):
            tx.execute("UPDATE verifications SET status = 'expired', decided = ? WHERE id = ?", (iso(now), row["id"]))
            row["status"] = "expired"
    if row["status"] != "pending":
        raise VerificationClosed(f"verification {verification_id} is {row['status']}")
    attempts = db.scalar("UPDATE verifications SET attempts = attempts + 1 WHERE id = ? AND status = 'pending' "
                         "AND attempts < ? RETURNING attempts", (row["id"], MAX_ATTEMPTS))
    if attempts is None:
        raise VerificationClosed(f"verification {verification_id} has no tries left")
    if not hmac.compare_digest(_hash(verification_id, code.strip()), row["code_hash"]):
        if attempts >= MAX_ATTEMPTS:
            db.execute("UPDATE verifications SET status = 'failed', decided = ? WHERE id = ? AND status = 'pending'",
                       (iso(utcnow()), row["id"]))
        left = MAX_ATTEMPTS - attempts
        raise WrongCode(f"wrong code; {left} tries left" if left else "wrong code; this verification is closed")
    if not db.execute("UPDATE verifications SET status = 'verified', decided = ? WHERE id = ? AND status = 'pending'",
                      (iso(utcnow()), row["id"])):
        raise VerificationClosed(f"verification {verification_id} was just used")
    return row


def confirm(db: Database, member_id: str, verification_id: str, code: str, *, actor: str) -> str:
    """Check the code; on success the sign-up joins the phone's person (``phone``) and its face
    consent, if given, is proven. The person's id."""
    row = check_code(db, member_id, verification_id, code, kinds=("phone", "consent"))
    with db.transaction() as tx:
        oneid.lock(tx)
        if row["kind"] == "phone":
            tx.execute("UPDATE identifiers SET blocked = NULL WHERE member_id = ? AND blocked = ?",
                       (member_id, members.UNVERIFIED))
            tx.execute("UPDATE members SET source_key = ? WHERE id = ? AND source_key IS NULL AND NOT EXISTS "
                       "(SELECT 1 FROM members o WHERE o.source = ? AND o.source_key = ?)",
                       (row["value"], member_id, members.MEMBER_SOURCE, row["value"]))
            oneid.resolve_around(tx, [member_id], actor=f"verified by code ({actor})")
        person = tx.scalar("SELECT COALESCE(merged_into, id) FROM members WHERE id = ?", (member_id,))
        # the phone's owner entered the code: the consent given on this record is theirs, proven. For an
        # unverified sign-up that is the sign-up being finished at the counter (a live grant); for an
        # older record's consent a withdrawal on the person since then stands (``_WITHDRAWN``)
        withdrawn = row["kind"] == "consent" and tx.scalar(f"SELECT 1 FROM members m WHERE m.id = ? AND {_WITHDRAWN}",
                                                            (member_id,)) is not None
        if not withdrawn and tx.execute("UPDATE members SET consent_proven = ? WHERE id = ? AND face_consent = 1",
                                        (row["id"], member_id)):
            members.log_consent(tx, person, member_id, True, store=row["store"], actor=actor,
                                how="verified_sign_up" if row["kind"] == "phone" else "proven_by_code")
            members.regranted(tx, person)
        survivorship.store(tx, [member_id, person])
    return person
