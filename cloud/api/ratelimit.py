"""Per-caller rate limiting: one token bucket per API key (or per client address without one).

Only authenticated calls reach the per-key buckets: failed authentications are counted per client
address before any key is looked at (``cloud.api.guard``), so guessing with a fresh key each time
is limited too.

A leaked or buggy key must not be able to starve every other caller, so each identity gets its own
bucket. Buckets live in the process: with N API processes behind a load balancer a caller gets up
to N times the rate, which bounds abuse without shared state. Keys are bucketed by their SHA-256,
so the raw key is never held in memory longer than the request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    def __init__(self, per_minute: int, *, max_callers: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.max_callers = max_callers
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @staticmethod
    def identity(api_key: str | None, client_host: str | None) -> str:
        if api_key:
            return "key:" + hashlib.sha256(api_key.encode()).hexdigest()
        return f"addr:{client_host or 'unknown'}"

    def acquire(self, identity: str, now: float | None = None) -> float:
        """0 when the call may go ahead, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(identity)
            if bucket is None:
                if len(self._buckets) >= self.max_callers:
                    self._forget_full(now)
                bucket = self._buckets[identity] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate

    def exhausted(self, identity: str, now: float | None = None) -> float:
        """The seconds until ``identity`` may go ahead again, without taking a token (0: it may now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(identity)
            if bucket is None:
                return 0.0
            tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: they hold no information a new bucket would not."""
        self._buckets = {
            k: b for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * self.rate < self.burst
        }
