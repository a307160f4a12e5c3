"""Arrivals through a real Mosquitto to guide cards: matching, idempotency, rejects."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from cloud.arrivals.cards import VISITOR_SCRIPT
from protocol import topics, transport
from protocol.codec import decode, encode
from protocol.embedding import Embedding
from protocol.messages import GuideCard, new_id, now

BRAND = "lumiere"


class Guide:
    """A stand-in guide screen: every card published for one store, in order."""

    def __init__(self, url: str, store: str, *more_filters: str) -> None:
        self.cards: queue.Queue[tuple[GuideCard, int | None]] = queue.Queue()
        broker = transport.BrokerUrl.parse(url)
        subscribed = threading.Event()
        self.client = transport.make_client(broker, f"test-guide-{uuid4().hex[:8]}")
        filters = [topics.guide_cards_of_store(BRAND, store), *more_filters]
        transport.subscribe_on_connect(self.client, [(f, 1) for f in filters])
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = self._on_message
        transport.start(self.client, broker)
        assert subscribed.wait(5)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        expiry = getattr(message.properties, "MessageExpiryInterval", None)
        self.cards.put((decode(message.payload, GuideCard), expiry))

    def next(self) -> GuideCard:
        return self.next_with_expiry()[0]

    def next_with_expiry(self) -> tuple[GuideCard, int | None]:
        return self.cards.get(timeout=10)


@pytest.fixture
def store_id() -> str:
    return f"sh-{uuid4().hex[:6]}"


@pytest.fixture
def guide(mosquitto, store_id: str) -> Iterator[Guide]:
    screen = Guide(mosquitto.url, store_id)
    yield screen
    transport.stop(screen.client)


@pytest.fixture
def edge(mosquitto) -> Iterator[mqtt.Client]:
    broker = transport.BrokerUrl.parse(mosquitto.url)
    client = transport.make_client(broker, f"test-edge-{uuid4().hex[:8]}")
    transport.start(client, broker)
    yield client
    transport.stop(client)


def _send(edge: mqtt.Client, topic: str, payload: bytes) -> None:
    edge.publish(topic, payload, qos=1).wait_for_publish(5)


def _stats_when(client, predicate, timeout: float = 5.0) -> dict:
    """The ingest counters once ``predicate`` holds: counts trail the cards by microseconds."""
    deadline = time.monotonic() + timeout
    while True:
        stats = client.get("/v1/ingest/stats").json()
        if predicate(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)


def test_known_face_gets_member_card_and_stranger_gets_visitor_card(
    start_cloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, faces_dir: Path, store_id: str
) -> None:
    client, _ = start_cloud(broker_url=mosquitto.url)
    wang = client.post("/v1/members", json={
        "name": "王芳", "phone": "13800138000", "gender": "female", "tier": "金卡会员", "tags": ["敏感肌"],
        "preferences": ["护肤"], "consent": {"face": True},
    }).json()["id"]
    zhang = client.post("/v1/members", json={
        "name": "张伟", "phone": "13900139000", "gender": "male", "consent": {"face": True},
    }).json()["id"]
    for member_id, photo in ((wang, "deepface_id01/img1.jpg"), (zhang, "deepface_id02/img26.jpg")):
        files = {"image": ("face.jpg", (faces_dir / photo).read_bytes(), "image/jpeg")}
        assert client.post(f"/v1/members/{member_id}/faces", files=files).status_code == 201
    topic = topics.arrival(BRAND, store_id, "edge-01")

    # captured before the re-visit window: the member's arrival below is a new visit, not this one again
    known = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=BRAND, store=store_id).model_copy(
        update={"ts": now() - timedelta(minutes=11)})
    transport.publish(edge, topic, known).wait_for_publish(5)
    card, expiry = guide.next_with_expiry()

    assert card.member is not None and card.member.member_id == wang
    assert card.member.title == "王女士" and card.member.tier == "金卡会员" and card.member.visits == 0
    assert card.script.startswith("王女士您好，欢迎光临！您是我们的金卡会员")
    assert card.recommendations and card.recommendations[0].reason == "偏好品类：护肤"
    assert card.arrival_event_id == known.event_id and card.confidence >= 0.47
    assert card.expires_at - card.ts == timedelta(seconds=120)
    assert expiry is not None and 0 < expiry <= 120

    stranger = make_arrival(faces_dir / "deepface_id05" / "img14.jpg", brand=BRAND, store=store_id)
    transport.publish(edge, topic, stranger).wait_for_publish(5)
    card = guide.next()

    assert card.member is None and card.recommendations == [] and card.script == VISITOR_SCRIPT
    assert card.arrival_event_id == stranger.event_id

    again = make_arrival(faces_dir / "deepface_id01" / "img6.jpg", brand=BRAND, store=store_id)
    transport.publish(edge, topic, again).wait_for_publish(5)
    card = guide.next()

    assert card.member is not None and card.member.member_id == wang and card.member.visits == 1
    assert card.script.startswith(card.member.title + "您好")

    visits = client.get(f"/v1/stores/{store_id}/visits").json()
    assert [v["arrival_event_id"] for v in visits] == [again.event_id, stranger.event_id, known.event_id]
    assert [v["member_id"] for v in visits] == [wang, None, wang]
    assert visits[0]["card_id"] == card.card_id and visits[0]["camera"] == "door-1"
    assert client.get(f"/v1/stores/{store_id}/visits?limit=1&offset=1").json()[0]["member_id"] is None
    stats = _stats_when(client, lambda s: s["cards"] == 3)
    assert (stats["matched"], stats["visitors"], stats["cards"], stats["rejected"]) == (2, 1, 3, {})


def test_duplicates_and_bad_messages_are_counted_and_the_worker_carries_on(
    start_cloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, faces_dir: Path, store_id: str
) -> None:
    client, _ = start_cloud(broker_url=mosquitto.url)
    topic = topics.arrival(BRAND, store_id, "edge-01")
    first = make_arrival(faces_dir / "deepface_id05" / "img14.jpg", brand=BRAND, store=store_id)

    _send(edge, topic, encode(first))
    assert guide.next().arrival_event_id == first.event_id

    _send(edge, topic, encode(first))  # an edge box re-sending after a lost PUBACK
    _send(edge, topic, b"garbage")
    _send(edge, topic, b'{"v": 1, "type": "arrival", "brand": "lumiere"}')
    elsewhere = make_arrival(faces_dir / "deepface_id05" / "img15.jpg", brand=BRAND, store="bj-999")
    _send(edge, topic, encode(elsewhere))  # payload claims another store than its topic
    short = first.model_copy(update={"event_id": new_id(), "embedding": Embedding.from_vector(np.ones(64))})
    _send(edge, topic, encode(short))  # 64-d vector claiming a 128-d pack
    _send(edge, topics.arrival(BRAND, store_id, "edge-01").replace("arrival", "probe"), encode(first))
    _send(edge, f"instore/v1/{BRAND}/{store_id}/bad$box/evt/arrival", encode(first))
    last = make_arrival(faces_dir / "deepface_id07" / "img17.jpg", brand=BRAND, store=store_id)
    _send(edge, topic, encode(last))

    # The next card is for the last arrival: no second card for the duplicate, nothing for rejects.
    assert guide.next().arrival_event_id == last.event_id
    stats = _stats_when(client, lambda s: s["cards"] == 2)
    assert stats["received"] == 9
    assert stats["duplicates"] == 1
    assert stats["rejected"] == {
        "invalid_payload": 3, "topic_mismatch": 1, "unsupported_event": 1, "bad_topic": 1,
    }
    assert (stats["visitors"], stats["cards"], stats["errors"]) == (2, 2, 0)
    assert stats["connected"] is True and stats["backlog"] == 0
    assert len(client.get(f"/v1/stores/{store_id}/visits").json()) == 2
    assert guide.cards.empty()
