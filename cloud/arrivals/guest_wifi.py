"""The store's guest Wi-Fi login: how a member's phone is registered the way a store actually can.

Phones probe with random MACs, so the address a member could type is not what the store hears.
What a store can learn is the per-network ("private") address a phone uses on the store's own
network: the guest Wi-Fi's captive portal redirects a joining phone to a page served by the cloud
(``GET /wifi/{store}/login?mac=...``, the access point appends the client's address, as captive
portals do). The member types their phone number, receives a one-time code by SMS (public Wi-Fi
in China needs a verified phone anyway), ticks the consent and enters the code: only then is
``network_device_key(mac, brand secret, store)`` bound to them, as a soft identifier of kind
``mac`` (``cloud.arrivals.wifi``), and the edge box's access-point feed keys associated clients
the same way (``edge.wifi.keys``). The MAC is keyed the moment it arrives and never stored; the
login row keeps the key, the code's hash, and when and where consent was given.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from http import HTTPStatus
from typing import ClassVar

from cloud.arrivals import wifi
from cloud.cdp.imports.cleaning import phone as clean_phone
from cloud.cdp.oneid import PERSON_OF
from cloud.channels.sms import SmsFailed, SmsSender
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.errors import CodedError
from protocol.messages import new_id
from protocol.wifi import MacError, network_device_key

TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
#: Codes one phone number may be sent per hour through the portal (each is an SMS and a guess).
MAX_SENDS_PER_HOUR = 5
OTP_TEMPLATE_PARAM = "code"


class GuestWifiError(CodedError):
    """A guest Wi-Fi login that cannot go on; the code says why (the page shows it in Chinese)."""

    status = HTTPStatus.CONFLICT
    statuses: ClassVar[dict[str, int]] = {
        "invalid_mac": HTTPStatus.UNPROCESSABLE_ENTITY, "not_a_member": HTTPStatus.NOT_FOUND,
        "unknown_login": HTTPStatus.NOT_FOUND, "wrong_code": HTTPStatus.UNPROCESSABLE_ENTITY,
        "no_consent": HTTPStatus.UNPROCESSABLE_ENTITY, "too_many_codes": HTTPStatus.TOO_MANY_REQUESTS,
        "sms_not_configured": HTTPStatus.SERVICE_UNAVAILABLE, "login_closed": HTTPStatus.CONFLICT,
    }


@dataclass(frozen=True)
class Pending:
    id: str
    expires: str


def _hash(login_id: str, code: str) -> str:
    return hashlib.sha256(f"{login_id}:{code}".encode()).hexdigest()


def person_for_phone(db: Database, phone: str) -> str | None:
    """The person whose verified phone this is (as typed, or cleaned to 11 digits, with or without +86)."""
    digits = clean_phone(phone) or phone
    spellings = list(dict.fromkeys((phone.strip(), digits, f"+86{digits}")))
    marks = ", ".join("?" for _ in spellings)
    return db.scalar(f"SELECT {PERSON_OF} FROM identifiers i JOIN members m ON m.id = i.member_id WHERE i.kind = "
                     f"'phone' AND i.value IN ({marks}) AND i.blocked IS NULL ORDER BY m.created LIMIT 1", spellings)


def start(db: Database, *, brand: str, store: str, mac: str, phone: str, secret: bytes, sms: SmsSender | None,
          template: str) -> Pending:
    """Key the address for this store's network, find the member by phone and text them a code."""
    try:
        key = network_device_key(mac, secret, store)
    except MacError as exc:
        raise GuestWifiError("invalid_mac", str(exc)) from None
    person = person_for_phone(db, phone)
    if person is None:
        raise GuestWifiError("not_a_member", "no member has this phone number; the Wi-Fi works without it")
    if sms is None:
        raise GuestWifiError("sms_not_configured", "no SMS gateway configured: codes cannot be sent")
    now = utcnow()
    recent = db.scalar("SELECT COUNT(*) FROM guest_wifi_logins WHERE member_id = ? AND created >= ?",
                       (person, iso(now - timedelta(hours=1))))
    if recent >= MAX_SENDS_PER_HOUR:
        raise GuestWifiError("too_many_codes", f"{MAX_SENDS_PER_HOUR} codes this hour already; try later")
    login_id, code = new_id(), f"{secrets.randbelow(10**6):06d}"
    db.execute("INSERT INTO guest_wifi_logins (id, brand, store, member_id, device_key, code_hash, attempts, status, "
               "created, expires) VALUES (?, ?, ?, ?, ?, ?, 0, 'pending', ?, ?)",
               (login_id, brand, store, person, key, _hash(login_id, code), iso(now), iso(now + TTL)))
    try:
        sms.send(clean_phone(phone) or phone, template, {OTP_TEMPLATE_PARAM: code}, out_id=login_id)
    except SmsFailed as exc:
        db.execute("UPDATE guest_wifi_logins SET status = 'unsent' WHERE id = ?", (login_id,))
        raise GuestWifiError("sms_not_configured", f"the code could not be sent: {exc}") from None
    return Pending(login_id, iso(now + TTL))


def confirm(db: Database, store: str, login_id: str, code: str, *, consent: bool) -> wifi.Registered:
    """The code and the member's consent: the phone's address on this store's network is theirs now."""
    if not consent:
        raise GuestWifiError("no_consent", "without consent the phone is not registered (the Wi-Fi still works)")
    row = db.one("SELECT * FROM guest_wifi_logins WHERE id = ? AND store = ?", (login_id, store))
    if row is None:
        raise GuestWifiError("unknown_login", f"no login {login_id} at this store")
    now = utcnow()
    if row["status"] != "pending" or row["expires"] < iso(now):
        raise GuestWifiError("login_closed", "this code is no longer valid; ask for a new one")
    # each guess spends its try before it is compared: parallel guesses get MAX_ATTEMPTS between them
    attempts = db.scalar("UPDATE guest_wifi_logins SET attempts = attempts + 1 WHERE id = ? AND status = 'pending' "
                         "AND attempts < ? RETURNING attempts", (login_id, MAX_ATTEMPTS))
    if attempts is None:
        raise GuestWifiError("login_closed", "this code is no longer valid; ask for a new one")
    if not hmac.compare_digest(_hash(login_id, code.strip()), row["code_hash"]):
        if attempts >= MAX_ATTEMPTS:
            db.execute("UPDATE guest_wifi_logins SET status = 'failed' WHERE id = ? AND status = 'pending'", (login_id,))
        raise GuestWifiError("wrong_code", f"wrong code; {MAX_ATTEMPTS - attempts} tries left")
    # the login is used once: the first right answer binds, a second one in parallel finds it closed
    if not db.execute("UPDATE guest_wifi_logins SET status = 'bound', consent_ts = ? WHERE id = ? AND status = 'pending'",
                      (iso(now), login_id)):
        raise GuestWifiError("login_closed", "this code was just used")
    return wifi.bind_key(db, row["member_id"], row["device_key"])
