"""Joining in the store (入会): a visitor card's invitation, the customer's own phone, and the crop.

1. On a visitor card the assistant taps 邀请入会; the screen makes a random token, shows it as a QR
   code and sends ``Feedback(action="invited", invitation=token)``. ``invite`` keeps only the
   token's hash, bound to that visit, card and arrival, for ``TTL``.
2. The customer's phone opens the join page (``/dash/join.html#token``), which asks separately for
   membership, for each marketing channel and for face recognition. ``send_code`` makes the sign-up
   (held apart as unverified whoever owns the phone: ``members.add_member(proof_first=True)``) and
   texts a one-time code through ``cdp.verification``; ``confirm`` checks it, so the sign-up joins
   the person who owns the phone (an existing member keeps their points and tier), records each
   consent as given on the page, and makes the visit that person's.
3. Only with face consent does ``confirm`` queue an ``EnrolCommand`` to the inviting screen: the
   live crop of that arrival has stayed in the screen's memory (the edge sends crops store-locally
   only), and this command is what lets it leave the store. ``enrol_crop`` takes the screen's
   ``FaceEnrolment`` only if it answers such a command, enrols it and records the outcome as the
   command's ack. Without face consent nothing is sent: the member is known by their member QR
   code instead (``member_card``: the card number a till's ``TillMember.qr`` carries), which the page
   shows to every joiner, face or not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import cv2

from cloud.activation import consent
from cloud.cdp import members, oneid, verification
from cloud.channels.sms import SmsSender
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from cloud.errors import Conflict, NotFound
from cloud.faces.enrolment import EnrolError, Enroller
from cloud.fleet import commands
from protocol.commands import ENROL, CommandAck, EnrolCommand
from protocol.device import FaceEnrolment
from protocol.messages import Feedback, new_id, now

#: How long a QR code on the screen stays good: the customer fills in the page in the shop.
TTL = timedelta(minutes=15)
#: Code requests per invitation (each may name another phone, so one more sign-up record).
MAX_CODES = 3
#: The inviting screen's device id (``kiosk.guide_screen.feed.device_id``).
SCREEN_DEVICE = "kiosk-{screen}"


class UnknownInvitation(NotFound):
    code = "unknown_invitation"


class InvitationClosed(Conflict):
    """Joined already, or expired: the assistant shows a new QR code."""

    code = "invitation_closed"


class NoCodeYet(Conflict):
    code = "no_code_requested"


@dataclass(frozen=True)
class Invitation:
    id: str
    brand: str
    store: str
    screen: str
    visit_id: str
    arrival_event_id: str
    status: str  # open | joined | expired
    expires: str
    member_id: str | None
    person_id: str | None
    face: bool | None
    enrol_command: str | None


@dataclass(frozen=True)
class Joined:
    invitation: Invitation
    person_id: str
    member_card: str  # the number the member QR code carries
    visit: dict | None  # the visit, now the person's (None if it was gone)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(tx: Tx, feedback: Feedback, visit: dict) -> bool:
    """Keep the invitation a screen sent with its 邀请入会 (only a visitor's card can be invited)."""
    if feedback.invitation is None or visit["member_id"] is not None:
        return False
    ts = utcnow()
    return bool(tx.execute(
        "INSERT INTO join_invitations (id, token_hash, brand, store, screen, visit_id, card_id, arrival_event_id, "
        "assistant, created, expires, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open') ON CONFLICT DO NOTHING",
        (new_id(), token_hash(feedback.invitation), feedback.brand, feedback.store, feedback.screen, feedback.visit_id,
         feedback.card_id, visit["arrival_event_id"], feedback.assistant, iso(ts), iso(ts + TTL))))


def _row(db: Database | Tx, token: str) -> dict:
    row = db.one("SELECT * FROM join_invitations WHERE token_hash = ?", (token_hash(token),))
    if row is None:
        raise UnknownInvitation("this QR code is not known; ask the assistant for a new one")
    if row["status"] == "open" and row["expires"] < iso(utcnow()):
        row["status"] = "expired"
    return row


def _invitation(row: dict) -> Invitation:
    return Invitation(id=row["id"], brand=row["brand"], store=row["store"], screen=row["screen"],
                      visit_id=row["visit_id"], arrival_event_id=row["arrival_event_id"], status=row["status"],
                      expires=row["expires"], member_id=row["member_id"], person_id=row["person_id"],
                      face=None if row["face"] is None else bool(row["face"]), enrol_command=row["enrol_command"])


def _open(db: Database | Tx, token: str) -> dict:
    row = _row(db, token)
    if row["status"] != "open":
        raise InvitationClosed(f"this invitation is {row['status']}")
    return row


def view(db: Database, token: str) -> Invitation:
    return _invitation(_row(db, token))


def face_outcome(db: Database, invitation: Invitation) -> str | None:
    """What became of the face: None (not consented), pending (the screen has not answered yet),
    enrolled, or refused (the screen held no crop, or the crop failed enrolment's checks)."""
    if not invitation.face or invitation.enrol_command is None:
        return None
    row = db.one("SELECT acked_at, ack_ok FROM commands WHERE id = ?", (invitation.enrol_command,))
    if row is None or row["acked_at"] is None:
        return "pending"
    return "enrolled" if row["ack_ok"] else "refused"


def send_code(db: Database, token: str, *, name: str, phone: str, sms: SmsSender | None,
              template: str) -> verification.Pending:
    """The customer asked to join: their sign-up, unverified until the code they receive comes back."""
    if sms is None:
        raise verification.NoSms("no SMS gateway is configured: the phone cannot be verified, join at the counter")
    row = _open(db, token)
    if row["codes_sent"] >= MAX_CODES:
        raise verification.TooManySends(f"{MAX_CODES} codes were sent for this QR code; ask for a new one")
    actor = f"join:{row['id']}"
    member_id = row["member_id"]
    if member_id is None or db.scalar("SELECT value FROM identifiers WHERE member_id = ? AND kind = 'phone'",
                                      (member_id,)) != phone:
        # tier "": a sign-up on a phone states no tier, so survivorship keeps an existing member's
        member_id = members.add_member(db, name=name, phone=phone, gender=None, tier="", tags=[],
                                       categories=[], face_consent=False, store=row["store"], actor=actor,
                                       proof_first=True).id
    db.execute("UPDATE join_invitations SET member_id = ?, codes_sent = codes_sent + 1 WHERE id = ?",
               (member_id, row["id"]))
    return verification.start(db, member_id, sms=sms, template=template, actor=actor, store=row["store"])


def confirm(db: Database, token: str, verification_id: str, code: str, *, face: bool,
            marketing: dict[str, bool]) -> Joined:
    """The code is right: the person (new, or the phone's existing member) owns this visit, with the
    consents ticked on the page; with face consent the screen is asked for the crop."""
    row = _open(db, token)
    if row["member_id"] is None:
        raise NoCodeYet("ask for a code first")
    actor, store = f"join page ({row['screen']})", row["store"]
    person = verification.confirm(db, row["member_id"], verification_id, code, actor=actor)
    if face:
        # given on the page by the person who just proved the phone: proven, it survives later merges
        members.set_face_consent(db, person, True, store=store, actor=actor, proof=verification_id)
    for channel, granted in marketing.items():
        consent.set_consent(db, person, channel, granted, source="join_page", actor=actor, store=store)
    command = EnrolCommand(command_id=new_id(), brand=row["brand"], store=store,
                           device=SCREEN_DEVICE.format(screen=row["screen"]), invitation_id=row["id"],
                           arrival_event_id=row["arrival_event_id"], member_id=person, ts=now())
    with db.transaction() as tx:
        if not tx.execute("UPDATE join_invitations SET status = 'joined', person_id = ?, face = ?, enrol_command = ?, "
                          "joined_at = ? WHERE id = ? AND status = 'open'",
                          (person, int(face), command.command_id if face else None, iso(utcnow()), row["id"])):
            raise InvitationClosed("this invitation was just used")
        tx.execute("UPDATE visits SET member_id = ?, corrected_reason = ?, corrected_ts = ? "
                   "WHERE id = ? AND member_id IS NULL", (person, f"joined:{row['id']}", iso(utcnow()), row["visit_id"]))
        if face:
            commands.queue(tx, [command], ttl=TTL)
        card = member_card(tx, person) or _issue_card(tx, row["member_id"])
        visit = tx.one("SELECT * FROM visits WHERE id = ?", (row["visit_id"],))
    return Joined(view(db, token), person, card, visit)


def member_card(db: Database | Tx, person: str) -> str | None:
    """The person's member card number (the oldest, if records brought several)."""
    return db.scalar("SELECT i.value FROM identifiers i JOIN members m ON m.id = i.member_id "
                     f"WHERE {oneid.PERSON_OF} = ? AND i.kind = 'member_card' AND i.blocked IS NULL "
                     "ORDER BY i.created, i.value LIMIT 1", (person,))


def _issue_card(tx: Tx, member_id: str) -> str:
    """A new member's card number: MC and 10 random digits, unused (like the CRM's MC numbers)."""
    while True:
        card = f"MC{secrets.randbelow(10**10):010d}"
        if not tx.scalar("SELECT 1 FROM identifiers WHERE kind = 'member_card' AND value = ?", (card,)):
            oneid.add_identifiers(tx, member_id, [("member_card", card)])
            return card


def member_qr_png(card: str, *, module_px: int = 8) -> bytes:
    """The member QR code as a PNG (OpenCV's encoder: the cloud has no other QR library)."""
    modules = cv2.QRCodeEncoder.create().encode(card)
    image = cv2.resize(cv2.copyMakeBorder(modules, 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=255), None, fx=module_px,
                       fy=module_px, interpolation=cv2.INTER_NEAREST)
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding of the member QR code failed")
    return png.tobytes()


def joined_card(db: Database, token: str) -> str:
    """The member card number of the person who joined through this (still valid) invitation."""
    row = _row(db, token)
    if row["status"] != "joined" or row["expires"] < iso(utcnow()):
        raise InvitationClosed("the member QR code is shown only on the join page, right after joining")
    card = member_card(db, row["person_id"])
    if card is None:  # erased since
        raise UnknownInvitation("no member for this invitation any more")
    return card


def enrol_crop(db: Database, enroller: Enroller, message: FaceEnrolment) -> CommandAck | None:
    """Enrol the crop a screen sent in answer to an enrol command; the ack recorded, or None when no
    such command awaits an answer from this screen (a crop nobody asked for is never enrolled)."""
    row = db.one("SELECT payload FROM commands WHERE id = ? AND brand = ? AND store = ? AND device = ? AND name = ? "
                 "AND acked_at IS NULL", (message.command_id, message.brand, message.store, message.device, ENROL))
    if row is None:
        return None
    asked = EnrolCommand.model_validate_json(row["payload"])
    if (asked.arrival_event_id, asked.member_id) != (message.arrival_event_id, message.member_id):
        return None
    try:
        face_id = enroller.enrol_crop(asked.member_id, base64.b64decode(message.jpeg, validate=True))
        ok, detail = True, f"enrolled face {face_id}"
    except binascii.Error:
        ok, detail = False, "not_an_image: the crop is not base64"
    except EnrolError as exc:
        ok, detail = False, f"{exc.code}: {exc}"[:200]
    ack = CommandAck(command_id=asked.command_id, brand=asked.brand, store=asked.store, device=asked.device,
                     name=ENROL, ok=ok, detail=detail, ts=now())
    commands.record_ack(db, ack)
    return ack
