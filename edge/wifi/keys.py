"""Turns a MAC into the only identifier that may leave the parser.

Stable MACs get ``protocol.wifi.device_key`` (brand HMAC, the same function the cloud uses at
member registration). Randomised MACs get an HMAC under a salt drawn at random for each UTC day
of capture and kept only in this object's memory: keys are consistent within a day, so a phone
can be counted, and unlinkable across days or restarts, so nobody can follow it. A client the
store's own access point reports as associated to the store's network uses its per-network
address, stable on that network: it gets ``protocol.wifi.network_device_key`` for the box's store,
the key the cloud bound when its owner logged in to the guest Wi-Fi.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from protocol.wifi import device_key, network_device_key

RANDOM_KEY_HEX = 32


class DeviceKeyer:
    def __init__(self, brand_secret: bytes, network: str | None = None) -> None:
        """``network``: the store whose network this box's access-point feed reports (None: no feed)."""
        device_key(b"\x00\x00\x00\x00\x00\x01", brand_secret)  # refuse a weak secret now, not per frame
        self._secret = brand_secret
        self.network = network
        self._day: str | None = None
        self._salt = b""

    def network_key(self, mac: bytes) -> str:
        """The key of an address seen associated to the store's network (``network`` must be set)."""
        if self.network is None:
            raise ValueError("no store network configured for associated clients")
        return network_device_key(mac, self._secret, self.network)

    def key(self, mac: bytes, randomised: bool, ts: float) -> str:
        if not randomised:
            return device_key(mac, self._secret)
        day = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
        if day != self._day:
            self._day, self._salt = day, secrets.token_bytes(32)
        return hmac.new(self._salt, mac, hashlib.sha256).hexdigest()[:RANDOM_KEY_HEX]
