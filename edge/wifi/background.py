"""The store's own equipment: devices that are always there and must never count as people.

Three ways in: keys configured by the installer (MACs typed in are keyed at once and dropped),
keys from an empty-store baseline (``calibration``), and keys learned live: a stable device
heard in ``background_hours`` different hours of one UTC day is equipment, not a customer.
Randomised keys cannot be learned: their salt changes every day.
"""

from __future__ import annotations

from collections import defaultdict

from edge.wifi.observation import Observation


class Background:
    def __init__(self, hours_to_learn: int, known: set[str] | None = None) -> None:
        self.hours_to_learn = hours_to_learn
        self.keys: set[str] = set(known or ())
        self._hours: dict[str, set[int]] = defaultdict(set)
        self._day: int | None = None

    def is_background(self, obs: Observation) -> bool:
        return obs.key in self.keys

    def learn(self, obs: Observation) -> str | None:
        """Record the observation's hour; return its key the moment it becomes background."""
        if obs.randomised or obs.key in self.keys:
            return None
        hour = int(obs.ts // 3600)
        if hour // 24 != self._day:
            self._day = hour // 24
            self._hours.clear()
        hours = self._hours[obs.key]
        hours.add(hour)
        if len(hours) >= self.hours_to_learn:
            self.keys.add(obs.key)
            del self._hours[obs.key]
            return obs.key
        return None
