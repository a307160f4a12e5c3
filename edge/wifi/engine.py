"""Observations in, ``WifiPresence`` and ``WifiFootfall`` messages out through a ``Sink``.

Time is the observations' capture time, so a replayed capture produces the same minutes as the
live day did; live sources call ``advance`` with the wall clock when the air is quiet.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime

from edge.placement import Placement
from edge.wifi.background import Background
from edge.wifi.observation import Observation
from edge.wifi.presence import PresenceChange, PresenceTracker
from edge.wifi.rules import PresenceRules
from edge.wifi.sink import Sink
from edge.wifi.state import WifiState
from protocol import topics
from protocol.messages import new_id
from protocol.wifi import WifiFootfall, WifiPresence

log = logging.getLogger(__name__)


@dataclass
class Minute:
    start: int  # epoch seconds, multiple of 60
    probes: int = 0
    keys: set[str] = field(default_factory=set)
    background: set[str] = field(default_factory=set)
    visits: int = 0


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class WifiEngine:
    def __init__(
        self,
        placement: Placement,
        rules: PresenceRules,
        sink: Sink,
        background: Background,
        *,
        registered: set[str] | None = None,
        state: WifiState | None = None,
    ) -> None:
        """``registered``: stable keys to send presence for; None sends every stable device in
        the store and leaves the filtering to the cloud."""
        self.placement = placement
        self.rules = rules
        self.sink = sink
        self.background = background
        self.registered = registered
        self.state = state
        self.tracker = PresenceTracker(rules)
        self.minute: Minute | None = None
        self.minutes = 0
        self.presence_events = 0
        self._presence_topic = topics.presence(placement.brand, placement.store, placement.device)
        self._footfall_topic = topics.footfall(placement.brand, placement.store, placement.device)

    def feed(self, obs: Observation) -> None:
        self.advance(obs.ts)
        minute = self.minute
        assert minute is not None
        minute.probes += 1
        minute.keys.add(obs.key)
        learned = self.background.learn(obs)
        if learned is not None:
            log.info("learned a background device (heard in %d hours today)", self.rules.background_hours)
            if self.state is not None:
                self.state.add_background(learned, "learned", obs.ts)
        if self.background.is_background(obs):
            minute.background.add(obs.key)
            return
        _, change = self.tracker.observe(obs)
        if change is not None:
            minute.visits += 1
            self._presence(change)

    def advance(self, now: float) -> None:
        """Close every minute that ended before ``now``. After a silence longer than
        ``linger_s`` the empty minutes in between are skipped: nobody can be left in them."""
        start = int(now // 60) * 60
        if self.minute is None:
            self.minute = Minute(start)
            return
        while self.minute.start < start:
            self._close(self.minute)
            following = self.minute.start + 60
            if start - following > self.rules.linger_s + 60:
                following = start
            self.minute = Minute(following)

    def finish(self) -> None:
        """Close the current minute and every open session (end of a capture or shutdown)."""
        if self.minute is None:
            return
        self._close(self.minute)
        self.minute = None
        leaves, closed = self.tracker.expire(float("inf"))
        self._closed(leaves, closed)

    def _close(self, minute: Minute) -> None:
        end = minute.start + 60
        leaves, closed = self.tracker.expire(end)
        self._closed(leaves, closed)
        self.minutes += 1
        self.sink.put(self._footfall_topic, WifiFootfall(
            event_id=new_id(), ts=utc(end), minute=utc(minute.start), **vars(self.placement),
            people=len(self.tracker.in_store()),
            passing=self.tracker.heard_outside(minute.start, end),
            visits_started=minute.visits,
            distinct_macs=len(minute.keys),
            background=len(minute.background),
            probes=minute.probes,
        ))

    def _closed(self, leaves: list[PresenceChange], closed: list) -> None:
        for change in leaves:
            self._presence(change)
        if self.state is not None:
            self.state.add_sessions(closed, {c.phone.id for c in leaves})

    def _presence(self, change: PresenceChange) -> None:
        phone = change.phone
        key = phone.stable_key
        if key is None or (self.registered is not None and key not in self.registered):
            return
        rssi = phone.rssi_all
        self.presence_events += 1
        self.sink.put(self._presence_topic, WifiPresence(
            event_id=new_id(), ts=utc(min(change.ts, phone.last + self.rules.linger_s)),
            **vars(self.placement), device_key=key, phase=change.phase,
            first_seen=utc(phone.first), last_seen=utc(phone.last), dwell_s=round(phone.dwell_s, 3),
            frames=phone.frames,
            rssi_max=max(rssi) if rssi else None,
            rssi_median=round(statistics.median(rssi)) if rssi else None,
        ))
