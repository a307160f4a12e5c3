"""The OpenEPaperLink access point's HTTP API, as far as the gateway needs it.

Two calls (names and fields as in the AP firmware's web server, ``ESP32_AP-Flasher/src/web.cpp``):

* ``POST /imgupload``, multipart form: ``mac`` (the tag's 16 hex digits), ``dither`` (0: the
  image is already in the tag's inks, do not dither) and ``file``, a baseline JPEG of the tag's
  exact size. Answers ``200 Ok, saved``; ``400 mac not found``; ``409 Come back later`` while
  the AP is busy or not running.
* ``GET /led_flash?mac=…&pattern=…``: ``pattern`` is 12 hex bytes (mode/brightness, then three
  colour stages of colour, delay/count and inter-loop delay, then group repeats and a spare).

Errors are split by what the gateway should do next: ``ApUnavailable`` (connection refused,
timeout, 5xx, 409) is retried with back-off; ``ApRefused`` (other 4xx) never succeeds by
retrying and the command is dropped with that reason.
"""

from __future__ import annotations

import re

import httpx

from protocol.esl import FlashPattern

MAC = re.compile(r"^[0-9A-F]{16}$")

#: RGB332 colour bytes the tag's LED understands.
LED_COLORS = {
    "red": 0xE0, "green": 0x1C, "blue": 0x03, "yellow": 0xFC, "cyan": 0x1F, "magenta": 0xE3, "white": 0xFF,
}


class ApError(RuntimeError):
    pass


class ApUnavailable(ApError):
    """The AP is down, busy or failing: try again later."""


class ApRefused(ApError):
    """The AP understood and said no (unknown tag, bad parameters): retrying will not help."""


def normalize_mac(mac: str) -> str:
    """Tags are addressed by 8 bytes in hex; 6-byte MACs are zero-padded in front as the AP does."""
    digits = mac.replace(":", "").replace("-", "").upper()
    if len(digits) == 12:
        digits = "0000" + digits
    if not MAC.match(digits):
        raise ValueError(f"tag MAC {mac!r} must be 12 or 16 hex digits")
    return digits


def flash_pattern_hex(pattern: FlashPattern) -> str:
    """The 12-byte LED program: one colour stage used, stages 2 and 3 off."""
    stage_delay = pattern.interval_ms // 100  # high nibble, in 100 ms
    payload = [
        ((pattern.brightness - 1) << 4) | 0x01,  # mode 1 = flash
        LED_COLORS[pattern.color], (stage_delay << 4) | pattern.flashes, 0,
        0, 0, 0,
        0, 0, 0,
        pattern.repeats - 1,  # the tag plays the group repeats + 1 times
        0,
    ]
    return bytes(payload).hex().upper()


class AccessPoint:
    """A thin client; one instance per gateway, reused across requests (keep-alive)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def upload_image(self, mac: str, jpeg: bytes) -> None:
        self._call(
            "POST", "/imgupload",
            data={"mac": normalize_mac(mac), "dither": "0"},
            files={"file": (f"{normalize_mac(mac)}.jpg", jpeg, "image/jpeg")},
        )

    def flash(self, mac: str, pattern: FlashPattern) -> None:
        self._call("GET", "/led_flash", params={"mac": normalize_mac(mac), "pattern": flash_pattern_hex(pattern)})

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs) -> None:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code == 200:
            return
        reason = f"{method} {path}: HTTP {response.status_code} {response.text.strip()[:200]!r}"
        if response.status_code == 409 or response.status_code >= 500:
            raise ApUnavailable(reason)
        raise ApRefused(reason)
