"""The store's guest Wi-Fi login: how a member's phone is registered the way a store actually can.

Phones probe with random MACs, so the address a member could type is not what the store hears.
What a store can learn is the per-network ("private") address a phone uses on the store's own
network: the guest Wi-Fi's captive portal redirects a joining phone to a page served by the cloud
(``GET /wifi/{store}/login?mac=...``, the access point appends the client's address, as captive
portals do). The member types their phone number, receives a one-time code by SMS (public Wi-Fi
in China needs a verified phone anyway), ticks the consent and enters the code: only then is
``network_device_key(mac, brand secret, store)`` bound to them, as a soft identifier of kind
``mac`` (``cloud.arrivals.wifi``), and the edge box's access-point feed keys associated clients
the same way (``edge.wifi.keys``). The MAC is keyed the moment it arrives and never stored.

The code is the one-time code every proof of a phone uses (``cloud.cdp.verification``, kind
``guest_wifi``: each guess spends its try before it is compared, the code is used once, within its
TTL), with the portal's own send limit. Its verification row keeps the key (``value``), the code's
hash, and when (``decided``) and where (``store``) the member consented: the code is only checked
with consent ticked.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar

from cloud.arrivals import wifi
from cloud.cdp import verification
from cloud.cdp.imports.cleaning import phone as clean_phone
from cloud.cdp.oneid import PERSON_OF
from cloud.channels.sms import SmsSender
from cloud.db import Database
from cloud.errors import CodedError
from protocol.wifi import MacError, network_device_key

#: The verification kind of a guest Wi-Fi login (``cloud.cdp.verification``).
KIND = "guest_wifi"
#: Codes one member may be sent per hour through the portal (each is an SMS and a guess).
SENDS = verification.SendLimit(5, hours=1, then="; try later")
ACTOR = "guest Wi-Fi portal"  # the member on their own phone: no key, no staff


class GuestWifiError(CodedError):
    """A guest Wi-Fi login that cannot go on; the code says why (the page shows it in Chinese). The
    code's own refusals (wrong, closed, unknown, too many, no SMS) are ``cloud.cdp.verification``'s."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    statuses: ClassVar[dict[str, int]] = {"not_a_member": HTTPStatus.NOT_FOUND}


def person_for_phone(db: Database, phone: str) -> str | None:
    """The person whose verified phone this is (as typed, or cleaned to 11 digits, with or without +86)."""
    digits = clean_phone(phone) or phone
    spellings = list(dict.fromkeys((phone.strip(), digits, f"+86{digits}")))
    marks = ", ".join("?" for _ in spellings)
    return db.scalar(f"SELECT {PERSON_OF} FROM identifiers i JOIN members m ON m.id = i.member_id WHERE i.kind = "
                     f"'phone' AND i.value IN ({marks}) AND i.blocked IS NULL ORDER BY m.created LIMIT 1", spellings)


def start(db: Database, *, store: str, mac: str, phone: str, secret: bytes, sms: SmsSender | None,
          template: str) -> verification.Pending:
    """Key the address for this store's network, find the member by phone and text them a code."""
    try:
        key = network_device_key(mac, secret, store)
    except MacError as exc:
        raise GuestWifiError("invalid_mac", str(exc)) from None
    person = person_for_phone(db, phone)
    if person is None:
        raise GuestWifiError("not_a_member", "no member has this phone number; the Wi-Fi works without it")
    if sms is None:
        raise verification.NoSms("no SMS gateway configured: codes cannot be sent")
    pending = verification.send_code(db, person, kind=KIND, value=key, phone=clean_phone(phone) or phone, sms=sms,
                                     template=template, actor=ACTOR, store=store, limit=SENDS)
    if not pending.sent:
        raise verification.NoSms("the code could not be sent; ask for a new one")
    return pending


def confirm(db: Database, store: str, login_id: str, code: str, *, consent: bool) -> wifi.Registered:
    """The code and the member's consent: the phone's address on this store's network is theirs now."""
    if not consent:
        raise GuestWifiError("no_consent", "without consent the phone is not registered (the Wi-Fi still works)")
    row = verification.check_code(db, None, login_id, code, kinds=(KIND,), store=store)  # one read of the login
    return wifi.bind_key(db, row["member_id"], row["value"])
