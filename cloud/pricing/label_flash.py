"""On a member's arrival, flash the shelf labels of the products their card recommends.

The ingest worker calls ``ArrivalFlasher.publish`` right after it published the member's card, on
the same MQTT client: one indexed read of the store's labels for the card's skus, then one
``LabelCommand`` per label (QoS 1, MQTT expiry = the command's TTL, so a flash queued while the
store's gateway was away is never played to an empty aisle). Visitor cards and cards whose
recommendations have no label in that store publish nothing.
"""

from __future__ import annotations

import logging

import paho.mqtt.client as mqtt

from cloud.db import Database
from cloud.pricing import labels
from cloud.pricing.registry import arrival_flash_commands
from protocol import transport
from protocol.esl import LabelCommand
from protocol.messages import GuideCard

log = logging.getLogger(__name__)


class ArrivalFlasher:
    def __init__(self, db: Database, *, top: int = 3) -> None:
        self._db = db
        self._top = top

    def commands_for(self, card: GuideCard) -> list[tuple[str, LabelCommand]]:
        """(topic, command) pairs for the labels of the card's first ``top`` recommended products that have labels."""
        if card.member is None or not card.recommendations:
            return []
        skus = [r.sku for r in card.recommendations]
        names = {r.sku: r.name for r in card.recommendations}
        registry = labels.registry_for(self._db, card.store, skus)
        commands = arrival_flash_commands(registry, card.brand, card.store, skus, card.ts, reason="", top=self._top)
        # one reason per label, naming its product, for the gateway's log
        return [(topic, command.model_copy(update={"reason": _reason(card, names[registry.get(card.store, command.label).sku])}))
                for topic, command in commands]

    def publish(self, client: mqtt.Client, card: GuideCard) -> int:
        """Publish the card's label flashes; how many were handed to the client."""
        sent = 0
        for topic, command in self.commands_for(card):
            info = transport.publish(client, topic, command, qos=1, expiry_s=command.ttl_s)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                log.warning("label flash %s not sent yet: %s", command.label, mqtt.error_string(info.rc))
            sent += 1
        if sent:
            log.info("card %s: flashing %d shelf labels in %s", card.card_id, sent, card.store)
        return sent


def _reason(card: GuideCard, product: str) -> str:
    """王女士到店，推荐 修护精华露 50ml"""
    assert card.member is not None
    return f"{card.member.title}到店，推荐 {product}"[:200]
