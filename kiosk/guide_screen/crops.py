"""Live face crops waiting for their member card, decided without any widget.

The edge publishes a crop store-locally the moment it announces an arrival, so the crop usually
reaches the screen *before* the cloud's card for that arrival. The shelf holds such crops, in
memory only, until the card comes; a crop whose card never comes (a visitor, a card that expired
or was crowded out) is dropped after ``HOLD_S`` or as soon as that card is seen. The rule that
keeps visitors' faces off the screen lives in the screen: it asks the shelf for a crop only for a
member card it is about to draw, and ``discard``s the crop of every other card.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from protocol.device import FaceCrop

#: The edge sends crops with a 60 s MQTT expiry; a card normally follows within a second.
HOLD_S = 60.0
#: Bound on crops held at once: a busy door during a broker hiccup cannot grow memory.
MAX_HELD = 64


@dataclass
class CropShelf:
    hold_s: float = HOLD_S
    max_held: int = MAX_HELD

    def __post_init__(self) -> None:
        self._held: OrderedDict[str, tuple[FaceCrop, float]] = OrderedDict()

    def keep(self, crop: FaceCrop, at: float) -> None:
        """Hold a crop that arrived before its card (``at``: monotonic seconds)."""
        self.prune(at)
        self._held[crop.arrival_event_id] = (crop, at)
        self._held.move_to_end(crop.arrival_event_id)
        while len(self._held) > self.max_held:
            self._held.popitem(last=False)

    def take(self, arrival_event_id: str, at: float) -> FaceCrop | None:
        """The crop for this arrival, removed from the shelf (a member card is taking it)."""
        self.prune(at)
        held = self._held.pop(arrival_event_id, None)
        return held[0] if held else None

    def discard(self, arrival_event_id: str) -> None:
        """The card for this arrival will not be drawn (a visitor, expired): forget its face now."""
        self._held.pop(arrival_event_id, None)

    def prune(self, at: float) -> None:
        while self._held and at - next(iter(self._held.values()))[1] > self.hold_s:
            self._held.popitem(last=False)

    def __len__(self) -> int:
        return len(self._held)
