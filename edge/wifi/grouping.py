"""Groups the randomised MACs of one phone, so that one phone counts once.

A phone that rotates its MAC keeps its information elements (the ``fingerprint``) and stays
where it is. A new randomised key therefore joins a recent phone with the same fingerprint,
preferring sequence-number continuity (the 802.11 counter runs on across the rotation on many
chipsets; Vanhoef et al. 2016) and otherwise the phone whose recent RSSI is closest, within
``rssi_delta_db``. Without a candidate it starts a new phone. Stable keys are their own phone.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from dataclasses import dataclass, field

from edge.wifi.observation import Observation

SEQ_MODULO = 4096
#: A burst of one phone is sent within a fraction of a second: a second key inside this gap
#: with the same fingerprint is a second phone scanning at the same time, not a rotation.
SAME_BURST_S = 0.5


@dataclass
class Phone:
    id: int
    first: float
    last: float
    randomised: bool
    fingerprint: str | None
    stable_key: str | None
    frames: int = 0
    last_seq: int | None = None
    rssi: deque[int] = field(default_factory=lambda: deque(maxlen=10))
    rssi_all: list[int] = field(default_factory=list)

    @property
    def dwell_s(self) -> float:
        return self.last - self.first

    def recent_rssi(self) -> float | None:
        return statistics.median(self.rssi) if self.rssi else None

    def add(self, obs: Observation) -> None:
        self.last = max(self.last, obs.ts)
        self.frames += 1
        if obs.seq is not None:
            self.last_seq = obs.seq
        if obs.rssi is not None:
            self.rssi.append(obs.rssi)
            self.rssi_all.append(obs.rssi)


class PhoneGrouper:
    def __init__(self, link_window_s: float, rssi_delta_db: float, seq_gap: int) -> None:
        self.link_window_s = link_window_s
        self.rssi_delta_db = rssi_delta_db
        self.seq_gap = seq_gap
        self.phones: dict[int, Phone] = {}
        self._by_key: dict[str, int] = {}
        self._ids = itertools.count(1)

    def assign(self, obs: Observation) -> tuple[Phone, bool]:
        """The phone this observation belongs to, and whether that phone is new."""
        phone_id = self._by_key.get(obs.key)
        new = False
        if phone_id is None:
            phone = self._link(obs) if obs.randomised else None
            if phone is None:
                new = True
                phone = Phone(next(self._ids), obs.ts, obs.ts, obs.randomised, obs.fingerprint,
                              None if obs.randomised else obs.key)
                self.phones[phone.id] = phone
            self._by_key[obs.key] = phone_id = phone.id
        phone = self.phones[phone_id]
        phone.add(obs)
        return phone, new

    def _link(self, obs: Observation) -> Phone | None:
        if obs.fingerprint is None:
            return None
        candidates = [
            p for p in self.phones.values()
            if p.randomised and p.fingerprint == obs.fingerprint
            and SAME_BURST_S < obs.ts - p.last <= self.link_window_s
        ]
        if obs.seq is not None:
            continuing = [p for p in candidates if p.last_seq is not None
                          and 0 < (obs.seq - p.last_seq) % SEQ_MODULO <= self.seq_gap]
            if continuing:
                return max(continuing, key=lambda p: p.last)
        if obs.rssi is None:
            return None
        near = [(abs(rssi - obs.rssi), p) for p in candidates
                if (rssi := p.recent_rssi()) is not None and abs(rssi - obs.rssi) <= self.rssi_delta_db]
        return min(near, key=lambda pair: (pair[0], -pair[1].last))[1] if near else None

    def expire(self, before: float) -> list[Phone]:
        """Forget phones silent since ``before``; they are returned so their sessions can be closed."""
        gone = [p for p in self.phones.values() if p.last < before]
        for phone in gone:
            del self.phones[phone.id]
        if gone:
            dropped = {p.id for p in gone}
            self._by_key = {k: v for k, v in self._by_key.items() if v not in dropped}
        return gone
