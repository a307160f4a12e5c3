"""A store's guide screen without Qt: the kiosk's display rules (``kiosk.guide_screen.board.Board``) on a paho client.

It subscribes as the kiosk does (``guide/+/card`` of its store, QoS 1, clean session, fast
reconnect), offers every decoded card to a ``Board``, records each one (card, visit, arrival
event, member, what the board did, when it came) and answers every member card it shows with a
``greeted`` feedback, as an assistant would.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from kiosk.guide_screen.board import Board, Outcome
from kiosk.guide_screen.feed import RECONNECT_MAX_S, device_id
from protocol import topics, transport
from protocol.codec import DecodeError, decode
from protocol.messages import Feedback, GuideCard, new_id, now


@dataclass(frozen=True)
class Seen:
    card_id: str
    visit_id: str
    arrival_event_id: str
    member_id: str | None
    outcome: str
    received: float  # epoch seconds
    latency_ms: float  # received minus the arrival's capture time


class GuideScreen:
    def __init__(self, url: str, brand: str, store: str, screen: str = "main") -> None:
        self.brand, self.store, self.screen = brand, store, screen
        self.board = Board()
        self.seen: list[Seen] = []
        self.rejected = 0
        self.feedback_sent = 0
        self.connects = 0
        self._lock = threading.Lock()
        broker = transport.BrokerUrl.parse(url)
        self._client = transport.make_client(broker, f"fleet-{device_id(screen)}-{brand}-{store}")
        self._client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._broker = broker

    def start(self) -> None:
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=15, clean_start=True)
        self._client.loop_start()

    def stop(self) -> None:
        transport.stop(self._client)

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            self.connects += 1
            client.subscribe(topics.guide_cards_of_store(self.brand, self.store), qos=1)

    def _on_message(self, client: mqtt.Client, userdata, msg: mqtt.MQTTMessage) -> None:
        received = time.time()
        try:
            card = decode(msg.payload, GuideCard)
        except DecodeError:
            self.rejected += 1
            return
        with self._lock:
            outcome = self.board.offer(card, now())
            self.seen.append(Seen(card.card_id, card.visit_id, card.arrival_event_id,
                                  card.member.member_id if card.member else None, outcome.value, received,
                                  (received - card.arrival_ts.timestamp()) * 1000))
        if outcome is Outcome.SHOWN:
            self._greet(card)

    def _greet(self, card: GuideCard) -> None:
        feedback = Feedback(feedback_id=new_id(), card_id=card.card_id, visit_id=card.visit_id, brand=self.brand,
                            store=self.store, screen=self.screen, action="greeted", ts=now())
        transport.publish(self._client, topics.guide_feedback(self.brand, self.store, self.screen), feedback, qos=1)
        self.feedback_sent += 1

    def snapshot(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)
