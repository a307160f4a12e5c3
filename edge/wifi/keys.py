"""Turns a MAC into the only identifier that may leave the parser.

Stable MACs get ``protocol.wifi.device_key`` (brand HMAC, the same function the cloud uses at
member registration). Randomised MACs get an HMAC under a salt drawn at random for each UTC day
of capture and kept only in this object's memory: keys are consistent within a day, so a phone
can be counted, and unlinkable across days or restarts, so nobody can follow it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from protocol.wifi import device_key

RANDOM_KEY_HEX = 32


class DeviceKeyer:
    def __init__(self, brand_secret: bytes) -> None:
        device_key(b"\x00\x00\x00\x00\x00\x01", brand_secret)  # refuse a weak secret now, not per frame
        self._secret = brand_secret
        self._day: str | None = None
        self._salt = b""

    def key(self, mac: bytes, randomised: bool, ts: float) -> str:
        if not randomised:
            return device_key(mac, self._secret)
        day = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
        if day != self._day:
            self._day, self._salt = day, secrets.token_bytes(32)
        return hmac.new(self._salt, mac, hashlib.sha256).hexdigest()[:RANDOM_KEY_HEX]
