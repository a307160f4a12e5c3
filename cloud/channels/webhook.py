"""Signed webhooks: ``POST <url>`` with the alert as JSON, signed with HMAC-SHA256.

Headers: ``X-Instore-Timestamp`` (Unix seconds), ``X-Instore-Signature``
(``sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>``), ``X-Instore-Delivery`` (the
notice key: the same alert to the same owner always carries the same one, so a receiver can drop a
retry it already has). A receiver recomputes the signature over the raw body and refuses a
timestamp more than 5 minutes old (``verify``). Any 2xx is delivered; anything else is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from cloud.channels.notice import ChannelFailed, Notice

MAX_SKEW_S = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, given: str, *, now: float | None = None) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        fresh = abs((now or time.time()) - int(timestamp)) <= MAX_SKEW_S
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), given)


class WebhookChannel:
    name = "webhook"

    def __init__(self, secret: str, *, timeout_s: float = 5.0) -> None:
        if not secret:
            raise ValueError("a webhook channel needs a signing secret")
        self._secret, self._timeout = secret, timeout_s

    def send(self, address: str, notice: Notice) -> str:
        body = json.dumps({"key": notice.key, "title": notice.title, "text": notice.text, "link": notice.link,
                           "severity": notice.severity, "alert": notice.payload}, ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Instore-Timestamp": stamp,
                   "X-Instore-Signature": signature(self._secret, stamp, body), "X-Instore-Delivery": notice.key}
        try:
            answer = httpx.post(address, content=body, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise ChannelFailed(f"webhook {address} did not answer: {type(exc).__name__}") from None
        if not 200 <= answer.status_code < 300:
            raise ChannelFailed(f"webhook {address} answered {answer.status_code}")
        return answer.headers.get("X-Request-Id", str(answer.status_code))
