"""One member card across channels (issue 21): a Tmall member (买家会员名), a WeChat unionid or a POS
card bound to a person, with proof of ownership.

The value comes from the channel's own login (the unionid from WeChat's OAuth, the buyer name from
Tmall's membership authorisation, the card number the POS reads), so it names an account the
customer is using; the one-time code to the person's own (verified) phone proves that this person
is the one binding it (the trust rule of ``cdp.verification``: nothing joins a person without
proof or HQ's merge). On ``confirm`` the value becomes an identifier of the person's record and
OneID links whatever records of the channel carry it, by the identifier's rule and within its
limits (one member card and one unionid per person), so every record's orders, and with them points
(``loyalty`` folds merged accounts) and tier (12 months of spend of every record), follow the person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cloud.cdp import members, oneid, verification
from cloud.channels.sms import SmsSender
from cloud.db import Database
from cloud.errors import Conflict, NotFound

Bindable = Literal["tmall_buyer", "unionid", "member_card"]
BINDABLE: tuple[Bindable, ...] = ("tmall_buyer", "unionid", "member_card")


class UnknownPerson(NotFound):
    code = "unknown_member"


class NoVerifiedPhone(Conflict):
    """The code goes to the person's own verified phone; without one only HQ's merge can bind."""

    code = "no_verified_phone"


class BoundElsewhere(Conflict):
    """OneID's limits kept the value apart (e.g. the person already has another member card)."""

    code = "not_bound"


@dataclass(frozen=True)
class Bound:
    person_id: str
    kind: str
    value: str
    records: list[str]  # every record of the person now, the channel's ones among them


def start(db: Database, member_id: str, kind: Bindable, value: str, *, sms: SmsSender | None, template: str,
          actor: str, store: str | None) -> verification.Pending:
    """Text a code to the person's phone; ``confirm`` with it binds ``kind``/``value`` to them."""
    member = members.member(db, member_id)
    if member is None:
        raise UnknownPerson(f"no member {member_id}")
    if not member.verified or not member.phone:
        raise NoVerifiedPhone("the person has no verified phone to send the code to")
    if sms is None:
        raise verification.NoSms("no SMS gateway is configured: only HQ's merge can bind records")
    return verification.send_code(db, member.id, kind=f"bind:{kind}", value=value, phone=member.phone, sms=sms,
                                  template=template, actor=actor, store=store)


def confirm(db: Database, member_id: str, kind: Bindable, verification_id: str, code: str, *, actor: str) -> Bound:
    """Check the code; the value becomes the person's identifier and OneID links its records."""
    person = members.person_id(db, member_id)
    if person is None:
        raise UnknownPerson(f"no member {member_id}")
    row = verification.check_code(db, person, verification_id, code, kinds=(f"bind:{kind}",))
    value = row["value"]
    with db.transaction() as tx:
        oneid.lock(tx)
        oneid.add_identifiers(tx, person, [(kind, value)])
        oneid.resolve_around(tx, [person], actor=f"bound by code ({actor})")
        now_person = tx.scalar(f"SELECT {oneid.PERSON_OF} FROM members m WHERE m.id = ?", (person,))
        holders = {r[0] for r in tx.rows(f"SELECT DISTINCT {oneid.PERSON_OF} FROM identifiers i JOIN members m "
                                         "ON m.id = i.member_id WHERE i.kind = ? AND i.value = ? AND i.blocked IS NULL",
                                         (kind, value))}
        records = [r[0] for r in tx.rows("SELECT id FROM members WHERE id = ? OR merged_into = ? ORDER BY created, id",
                                         (now_person, now_person))]
    if holders != {now_person}:
        raise BoundElsewhere(f"{kind} {value} stays with another person: OneID's {kind} rule keeps them apart "
                             f"(see the person's links); HQ can review it")
    return Bound(now_person, kind, value, records)
