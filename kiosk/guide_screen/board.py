"""What the guide screen shows, decided without any widget: which member cards, in which order,
and how many visitors came in today.

Keeping these rules out of Qt makes them the single place that enforces the screen's promises:
a visitor (``member is None``) is counted, and drawn only on a screen that can invite visitors to
join (``visitor_cards``: then as a faceless card with 邀请入会, after every member card, never
crowding one out); one person never appears twice; an expired card is never shown; a redelivered
card (MQTT QoS 1 is at-least-once) changes nothing; a member card for a visit replaces that visit's
visitor card (the visitor joined on their phone).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum

from protocol.messages import GuideCard

#: Remembered card ids for de-duplication; far more than a store's cards within one expiry.
_SEEN_LIMIT = 2048


class Outcome(Enum):
    SHOWN = "shown"  # a member card is now on screen
    VISITOR = "visitor"  # a new visitor was counted
    DUPLICATE = "duplicate"  # card id or visitor visit already handled
    EXPIRED = "expired"  # arrived after its expires_at
    CROWDED_OUT = "crowded_out"  # older than every card the screen has room for


def person_of(card: GuideCard) -> str | None:
    """The member a card is about: its profile's, or an uncertain card's candidate (issue 18)."""
    if card.member is not None:
        return card.member.member_id
    return card.candidate.member_id if card.candidate is not None else None


@dataclass
class Board:
    """Member cards newest arrival first (at most ``capacity``) and today's visitor count."""

    capacity: int = 8
    visitor_cards: bool = False
    cards: list[GuideCard] = field(default_factory=list)
    visitors_today: int = 0
    _day: date | None = field(default=None, init=False)
    _visitor_visits: set[str] = field(default_factory=set, init=False)
    _seen: deque[str] = field(default_factory=deque, init=False)

    def offer(self, card: GuideCard, now: datetime) -> Outcome:
        """Take a card just received; ``now`` is aware and local days count the visitors."""
        self._roll_day(now)
        if card.card_id in self._seen:
            return Outcome.DUPLICATE
        self._remember(card.card_id)
        if card.expires_at <= now:
            return Outcome.EXPIRED
        if card.member is None and card.candidate is None:
            if card.visit_id in self._visitor_visits:
                return Outcome.DUPLICATE
            self._visitor_visits.add(card.visit_id)
            self.visitors_today += 1
            if not self.visitor_cards:
                return Outcome.VISITOR
        # A newer card for the same person or visit replaces the old one: never show anyone twice.
        member_id = person_of(card)
        self.cards = [c for c in self.cards
                      if c.visit_id != card.visit_id and (member_id is None or person_of(c) != member_id)]
        self.cards.append(card)
        self.cards.sort(key=lambda c: c.arrival_ts, reverse=True)
        self.cards.sort(key=lambda c: person_of(c) is None)  # stable: members first, each newest first
        del self.cards[self.capacity :]
        return Outcome.SHOWN if any(c is card for c in self.cards) else Outcome.CROWDED_OUT

    def expire(self, now: datetime) -> list[GuideCard]:
        """Remove and return the cards whose ``expires_at`` has passed."""
        gone = [c for c in self.cards if c.expires_at <= now]
        self.cards = [c for c in self.cards if c.expires_at > now]
        return gone

    def remove(self, card_id: str) -> GuideCard | None:
        """Take one card off the screen (the assistant dismissed it)."""
        for card in self.cards:
            if card.card_id == card_id:
                self.cards.remove(card)
                return card
        return None

    def forget(self, member_ids: Iterable[str]) -> list[GuideCard]:
        """Erasure: remove and return every card of these members."""
        gone = set(member_ids)
        dropped = [c for c in self.cards if person_of(c) in gone]
        self.cards = [c for c in self.cards if person_of(c) not in gone]
        return dropped

    def tick(self, now: datetime) -> None:
        """Called by the clock so the visitor count restarts at local midnight without a card."""
        self._roll_day(now)

    def _roll_day(self, now: datetime) -> None:
        today = now.astimezone().date()
        if today != self._day:
            self._day = today
            self.visitors_today = 0
            self._visitor_visits.clear()

    def _remember(self, card_id: str) -> None:
        self._seen.append(card_id)
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.popleft()
