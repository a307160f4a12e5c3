"""Per-phone sessions and the RSSI + dwell rule that tells "in the store" from "walking past".

Frames at or above ``rssi_min_dbm`` are grouped into inside phones, weaker frames into outside
phones (kept apart so a passer-by's weak bursts never join a customer's phone). An inside phone
enters the store once it has been heard for ``min_dwell_s``; it leaves after ``linger_s`` of
silence. Frames without RSSI (raw 802.11 captures, sensors that omit it) count as inside: the
sniffer's placement is then the only range limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.wifi.grouping import Phone, PhoneGrouper
from edge.wifi.observation import Observation
from edge.wifi.rules import PresenceRules


@dataclass(frozen=True)
class PresenceChange:
    phase: Literal["enter", "leave"]
    ts: float
    phone: Phone


class PresenceTracker:
    def __init__(self, rules: PresenceRules) -> None:
        self.rules = rules
        make = lambda: PhoneGrouper(rules.link_window_s, rules.rssi_delta_db, rules.seq_gap)  # noqa: E731
        self.inside = make()
        self.outside = make()
        self.entered: set[int] = set()

    def is_inside(self, obs: Observation) -> bool:
        return obs.rssi is None or obs.rssi >= self.rules.rssi_min_dbm

    def observe(self, obs: Observation) -> tuple[Phone, PresenceChange | None]:
        if not self.is_inside(obs):
            return self.outside.assign(obs)[0], None
        phone, _ = self.inside.assign(obs)
        if phone.id not in self.entered and phone.dwell_s >= self.rules.min_dwell_s:
            self.entered.add(phone.id)
            return phone, PresenceChange("enter", obs.ts, phone)
        return phone, None

    def expire(self, now: float) -> tuple[list[PresenceChange], list[Phone]]:
        """Close every phone silent for ``linger_s``: leave changes for those that had entered,
        and every closed phone (inside and outside) for the session log."""
        cutoff = now - self.rules.linger_s
        closed_inside = self.inside.expire(cutoff)
        leaves = [PresenceChange("leave", now, p) for p in closed_inside if p.id in self.entered]
        self.entered -= {p.id for p in closed_inside}
        return leaves, closed_inside + self.outside.expire(cutoff)

    def in_store(self) -> list[Phone]:
        return [self.inside.phones[i] for i in self.entered]

    def heard_outside(self, start: float, end: float) -> int:
        """Phones heard in [start, end) that are not in the store: weak, or too brief so far."""
        outside = sum(start <= p.last < end for p in self.outside.phones.values())
        brief = sum(start <= p.last < end and p.id not in self.entered for p in self.inside.phones.values())
        return outside + brief

    def is_in_store(self, phone: Phone) -> bool:
        return phone.id in self.entered
