"""Arrivals whose face is at an exact cosine to a member's enrolled template, routed through the real
ingest (``EventProcessor``), and the assistant's answers on their cards: how the uncertain band and
the learning from confirmed arrivals are driven at chosen scores."""

from __future__ import annotations

import numpy as np

from cloud.arrivals import feedback
from cloud.arrivals.cards import CardBuilder
from cloud.arrivals.ingest import EventProcessor
from cloud.faces.matching import Matcher
from protocol import topics
from protocol.codec import encode
from protocol.embedding import Embedding
from protocol.messages import Arrival, Feedback, GuideCard, new_id, now


def probe(template: np.ndarray, score: float, seed: int) -> np.ndarray:
    """A unit vector whose cosine to ``template`` is exactly ``score``."""
    unit = template / np.linalg.norm(template)
    other = np.random.default_rng(seed).normal(size=unit.shape)
    other -= other.dot(unit) * unit
    other /= np.linalg.norm(other)
    return (score * unit + np.sqrt(1 - score**2) * other).astype(np.float32)


class Probes:
    """``base``'s arrival again with a face at a chosen score to ``template``, each its own event."""

    def __init__(self, runtime, pack, template: np.ndarray, base: Arrival) -> None:
        self.db, self.template, self.base = runtime.db, template, base
        self.processor = EventProcessor(runtime.db, Matcher(runtime.index, runtime.db, pack),
                                        CardBuilder(runtime.db, ttl_s=120), require_known_devices=False)

    def arrive(self, score: float, seed: int) -> GuideCard | None:
        arrival = self.base.model_copy(update={"event_id": new_id(), "track_id": f"t{seed}", "embedding":
                                               Embedding.from_vector(probe(self.template, score, seed))})
        return self.processor.process(topics.arrival(arrival.brand, arrival.store, arrival.device), encode(arrival))

    def answer(self, card: GuideCard, action: str) -> str:
        """The assistant's ``action`` on ``card`` at screen g1; how ``feedback.record`` took it."""
        return feedback.record(self.db, Feedback(
            feedback_id=new_id(), card_id=card.card_id, visit_id=card.visit_id, brand=card.brand,
            store=card.store, screen="g1", action=action, assistant="小李", ts=now()))
