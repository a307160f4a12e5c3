"""Wi-Fi probe capture: the device-key function and the messages an edge box publishes.

The device key is the only form in which a phone's MAC may travel: ``device_key(mac, secret)``
is HMAC-SHA256 of the canonical 6 MAC bytes under the brand's secret. It lives in the contract
because two parties must compute it identically without ever exchanging a MAC: the edge box
keys every stable MAC it hears, and the cloud keys the MAC a member types in at registration
(then forgets the MAC). A brand secret never leaves the brand's own edge boxes and cloud, so a
key from one brand says nothing to another.

Randomised (locally administered) MACs are never keyed with the brand secret: the edge keys
them with a salt that exists only in its memory for one day, so they can be counted but never
linked to anyone. ``WifiPresence`` is therefore only ever sent for stable keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from protocol.messages import EventId, Id, Message

DeviceKey = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="device_key(mac, brand secret)")]

#: A brand secret shorter than this is too easy to brute-force over the 2^46 stable MAC space.
MIN_SECRET_BYTES = 16

_MAC = re.compile(r"^[0-9a-f]{2}([:\-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
_MAC_DOTTED = re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$")


class MacError(ValueError):
    """Not a unicast MAC address. The message never repeats the value: it may be a real MAC."""


def mac_bytes(mac: str | bytes) -> bytes:
    """The 6 bytes of a unicast MAC written as aa:bb:.., aa-bb-.., aabb.ccdd.eeff or 12 hex digits.

    Multicast addresses (lowest bit of the first byte) never source a probe request: a frame
    claiming one is malformed, and a member typing one made a typo.
    """
    if isinstance(mac, bytes):
        raw = mac
    else:
        text = mac.strip().lower()
        if not (_MAC.match(text) or _MAC_DOTTED.match(text)):
            raise MacError("MAC address must be 12 hex digits, e.g. aa:bb:cc:dd:ee:ff")
        raw = bytes.fromhex(re.sub(r"[:\-.]", "", text))
    if len(raw) != 6:
        raise MacError(f"MAC address must be 6 bytes, got {len(raw)}")
    if raw[0] & 0x01:
        raise MacError("multicast MAC address cannot identify a device")
    if raw == bytes(6):
        raise MacError("all-zero MAC address cannot identify a device")
    return raw


def is_randomised(mac: str | bytes) -> bool:
    """Locally administered bit set: a randomised MAC (Android 10+, iOS 14+), not the vendor's."""
    return bool(mac_bytes(mac)[0] & 0x02)


def _secret(secret: bytes | str) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"brand secret must be at least {MIN_SECRET_BYTES} bytes")
    return raw


def device_key(mac: str | bytes, secret: bytes | str) -> str:
    """The brand-keyed identity of a stable MAC; refuses randomised MACs (they mean nothing tomorrow)."""
    raw = mac_bytes(mac)
    if raw[0] & 0x02:
        raise MacError("randomised (locally administered) MAC cannot be registered: it changes")
    return hmac.new(_secret(secret), raw, hashlib.sha256).hexdigest()


def network_device_key(mac: str | bytes, secret: bytes | str, network: str) -> str:
    """The brand-keyed identity of the address a phone uses on one store's own network.

    Modern phones probe with random MACs but join each network with a per-network ("private")
    address: locally administered, yet stable for that network. A member who logs in to the store's
    guest Wi-Fi (``cloud.arrivals.guest_wifi``) binds that address; the store's access point reports
    it for associated clients (an edge sensor feed with ``network: true``). The key is scoped to
    the network (the store id), so the same address elsewhere is another key."""
    raw = mac_bytes(mac)
    return hmac.new(_secret(secret), b"net\x00" + network.encode() + b"\x00" + raw, hashlib.sha256).hexdigest()


class WifiPresence(Message):
    """A stable device's visit as heard by one edge box: sent when the in-store rule first holds
    (``phase="enter"``) and when the device has been silent long enough to have left
    (``phase="leave"``). The cloud keeps only events whose key a member registered."""

    type: Literal["wifi_presence"] = "wifi_presence"
    event_id: EventId = Field(description="idempotency key, made once at the edge")
    ts: AwareDatetime = Field(description="when the phase happened (capture time)")
    brand: Id
    store: Id
    device: Id
    device_key: DeviceKey
    phase: Literal["enter", "leave"]
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    dwell_s: float = Field(ge=0)
    frames: int = Field(ge=1)
    rssi_max: int | None = Field(ge=-120, le=0, description="dBm; None when the source has no RSSI")
    rssi_median: int | None = Field(ge=-120, le=0)


class WifiFootfall(Message):
    """One minute of footfall at one edge box: estimated people in the store and passing by.

    ``people`` groups randomised MACs that belong to one phone and leaves out the store's own
    equipment; ``distinct_macs`` is the naive count, kept so the cloud can watch the ratio.
    """

    type: Literal["wifi_footfall"] = "wifi_footfall"
    event_id: EventId
    ts: AwareDatetime = Field(description="when the minute was closed")
    brand: Id
    store: Id
    device: Id
    minute: AwareDatetime = Field(description="start of the minute (UTC, second 0)")
    people: int = Field(ge=0, description="phones judged in the store during the minute")
    passing: int = Field(ge=0, description="phones heard but judged outside (walking past)")
    visits_started: int = Field(ge=0, description="in-store visits that began this minute")
    distinct_macs: int = Field(ge=0, description="naive count: distinct MACs heard this minute")
    background: int = Field(ge=0, description="store equipment heard and left out")
    probes: int = Field(ge=0, description="probe requests heard this minute")
