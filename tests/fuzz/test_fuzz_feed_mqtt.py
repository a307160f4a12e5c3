"""Malformed MQTT payloads on the topics a guide screen's feed subscribes to (its store's cards,
``guide/+/card``, the edge boxes' store-local face crops, ``local/crop/+``, and the cloud's floor of
the store, ``guide/all/floor``), through a real Mosquitto to the real ``CardFeed``: each is rejected
and counted by its reason, the feed stays connected, and every card, crop or floor that is valid and
addressed to this store is handed on; a valid card, crop and floor sent afterwards still arrive.

The feed is a QObject without widgets: its signals are connected directly, so the handlers run
on paho's thread and no event loop or window is needed (the offscreen platform, as the kiosk
tests use, covers any Qt plugin lookup). The brand is this test's own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from edge.crop import crop_topic
from protocol import topics, transport
from protocol.codec import encode
from protocol.device import FaceCrop
from protocol.messages import Feedback, GuideCard, StaffFloor, new_id, now
from tests.fuzz.jsonish import dump
from tests.fuzz.mqttfuzz import FIXED, M, decodable, expected_rejects, grown, junk, new_brand, sender, shaped, wait_for

STORE, SCREEN, BOX = "fz-store", "main", "fz-edge"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import Qt  # noqa: E402 - after the platform is chosen

from kiosk.guide_screen.feed import CardFeed  # noqa: E402


class Heard:
    """What the feed handed on to the screen."""

    def __init__(self, feed: CardFeed) -> None:
        self.cards: list[GuideCard] = []
        self.crops: list[FaceCrop] = []
        self.floors: list[StaffFloor] = []
        feed.card_received.connect(self.cards.append, Qt.ConnectionType.DirectConnection)
        feed.crop_received.connect(self.crops.append, Qt.ConnectionType.DirectConnection)
        feed.floor_received.connect(self.floors.append, Qt.ConnectionType.DirectConnection)


@pytest.fixture
def feed(mosquitto) -> Iterator[CardFeed]:
    screen = CardFeed(transport.BrokerUrl.parse(mosquitto.url), new_brand(), STORE, SCREEN)
    subscribed: list[bool] = []
    screen.subscribed.connect(lambda: subscribed.append(True), Qt.ConnectionType.DirectConnection)
    screen.start()
    wait_for(lambda: bool(subscribed), what="the feed's card subscription")
    yield screen
    screen.stop()


def hostile(kind: type[M], **address: str) -> list[bytes]:
    """Junk, schema-shaped ``kind`` data anywhere and at this store (so it reaches the address
    check and past it), a valid ``kind`` of another store and one of this store, and a valid
    message of another type."""
    feedback = Feedback(feedback_id=new_id(), card_id=new_id(), visit_id=new_id(), brand=address["brand"],
                        store=STORE, screen=SCREEN, action="greeted", ts=now())
    ours, = decodable(kind, 1, **address)
    shapes = shaped(kind, 8) + shaped(kind, 12, **address)
    return FIXED + junk(8) + [dump(data) for data in shapes] + [
        encode(ours.model_copy(update={"store": "other-store"})), encode(ours), encode(feedback)]


def test_malformed_cards_crops_and_floors_are_rejected_by_reason(feed: CardFeed, mosquitto) -> None:
    heard = Heard(feed)
    brand = feed.brand
    card_payloads = hostile(GuideCard, brand=brand, store=STORE)
    crop_payloads = hostile(FaceCrop, brand=brand, store=STORE, device=BOX)
    card_reasons, cards = expected_rejects(card_payloads, GuideCard, lambda c: (c.brand, c.store) == (brand, STORE),
                                           undecodable="invalid_payload", elsewhere="topic_mismatch")
    crop_reasons, crops = expected_rejects(crop_payloads, FaceCrop,
                                           lambda c: (c.brand, c.store, c.device) == (brand, STORE, BOX),
                                           undecodable="invalid_payload", elsewhere="topic_mismatch")
    floor_payloads = hostile(StaffFloor, brand=brand, store=STORE)
    floor_reasons, floors = expected_rejects(floor_payloads, StaffFloor, lambda f: (f.brand, f.store) == (brand, STORE),
                                             undecodable="invalid_payload", elsewhere="topic_mismatch")
    expected = card_reasons + crop_reasons + floor_reasons
    before = dict(feed.stats.rejected_by_reason)
    with sender(mosquitto.url) as send:
        sent = send(topics.guide_card(brand, STORE, SCREEN), card_payloads)
        sent += send(crop_topic(brand, STORE, BOX), crop_payloads)
        sent += send(topics.guide_floor(brand, STORE), floor_payloads)
        wait_for(lambda: feed.stats.received >= sent, what="the feed")
        assert grown(before, feed.stats.rejected_by_reason) == expected
        assert feed.stats.rejected == sum(expected.values())
        assert [c.card_id for c in heard.cards] == [c.card_id for c in cards]
        assert [c.arrival_event_id for c in heard.crops] == [c.arrival_event_id for c in crops]
        assert heard.floors == floors
        assert feed.connected, "junk did not cost the feed its connection"

        card, crop = cards[0].model_copy(update={"card_id": new_id()}), crops[0]
        send(topics.guide_card(brand, STORE, topics.ALL_SCREENS), [encode(card)])
        send(crop_topic(brand, STORE, BOX), [encode(crop)])
        send(topics.guide_floor(brand, STORE), [encode(floors[0])])
        wait_for(lambda: heard.cards[-1].card_id == card.card_id and len(heard.crops) == len(crops) + 1
                 and len(heard.floors) == len(floors) + 1, what="the valid card, crop and floor")
    assert feed.stats.rejected == sum(expected.values())
