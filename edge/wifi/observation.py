"""The one internal record every Wi-Fi source produces: no MAC in it, only a device key."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Observation:
    """One probe request. ``key`` is the brand HMAC for stable MACs, a day-salted HMAC for
    randomised ones; ``fingerprint`` hashes the information elements that a phone repeats
    across MAC rotations (None when the source does not carry them, e.g. sensor feeds)."""

    ts: float  # capture time, seconds since the epoch (UTC)
    key: str
    randomised: bool
    rssi: int | None = None  # dBm
    channel: int | None = None  # MHz
    seq: int | None = None  # 802.11 sequence number, 0..4095
    fingerprint: str | None = None


@dataclass
class ParseStats:
    """Counts of what a source saw; rejects are counted by reason, never raised."""

    frames: int = 0
    probes: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {"frames": self.frames, "probes": self.probes,
                "ignored": dict(self.ignored), "malformed": dict(self.malformed)}
