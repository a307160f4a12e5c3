"""Arrivals in, guide cards out: the cloud's MQTT worker.

paho's network thread only queues incoming messages; one worker thread does the decoding,
matching and database work, so a slow disk never delays PUBACKs or keepalives. Anything wrong
with a message (topic, payload, a payload claiming another store than its topic) is logged with
its reason, counted, and dropped: one bad edge box must never stop the cards of every other
store.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from cloud.cards import CardBuilder
from cloud.matching import Matcher
from cloud.store import Store, Visit
from protocol import topics, transport
from protocol.codec import DecodeError, decode
from protocol.facepack import PACKS
from protocol.messages import Arrival, GuideCard, new_id

log = logging.getLogger(__name__)

RejectReason = Literal["bad_topic", "unsupported_event", "invalid_payload", "topic_mismatch"]


@dataclass(frozen=True)
class IngestCounts:
    received: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    matched: int = 0
    visitors: int = 0
    cards: int = 0
    errors: int = 0


class _Counters:
    """Counts written by the worker thread and read by the API thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()

    def add(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def reject(self, reason: RejectReason) -> None:
        with self._lock:
            self._rejected[reason] += 1

    def snapshot(self) -> IngestCounts:
        with self._lock:
            return IngestCounts(rejected=dict(self._rejected), **self._counts)


class ArrivalProcessor:
    """One message's way from topic and payload to a stored visit and a card to publish."""

    def __init__(self, store: Store, matcher: Matcher, cards: CardBuilder) -> None:
        self._store = store
        self._matcher = matcher
        self._cards = cards
        self.counters = _Counters()

    def process(self, topic: str, payload: bytes) -> GuideCard | None:
        """The card to publish, or None when the message was rejected or a duplicate."""
        self.counters.add("received")
        arrival = self._accept(topic, payload)
        if arrival is None:
            return None
        if self._store.has_arrival(arrival.event_id):
            self._duplicate(arrival)
            return None
        match = self._matcher.match(arrival.embedding.to_vector(), arrival.model_pack)
        card = self._cards.build(arrival, match, visit_id=new_id())
        visit = Visit(
            id=card.visit_id, brand=arrival.brand, store=arrival.store,
            member_id=match.member.id if match.member else None, confidence=match.confidence,
            ts=arrival.ts, arrival_event_id=arrival.event_id, device=arrival.device, camera=arrival.camera,
            card_id=card.card_id,
        )
        if not self._store.record_visit(visit):
            self._duplicate(arrival)
            return None
        self.counters.add("matched" if match.member else "visitors")
        log.info(
            "arrival %s at %s/%s: %s (%s, %.3f)", arrival.event_id, arrival.brand, arrival.store,
            match.member.id if match.member else "visitor", match.reason, match.confidence,
        )
        return card

    def _accept(self, topic: str, payload: bytes) -> Arrival | None:
        try:
            where = topics.parse(topic)
        except topics.TopicError as exc:
            return self._reject("bad_topic", topic, str(exc))
        if where.kind != "evt/arrival":
            return self._reject("unsupported_event", topic, f"no handler for {where.kind!r}")
        try:
            arrival = decode(payload, Arrival)
        except DecodeError as exc:
            return self._reject("invalid_payload", topic, str(exc))
        claimed = (arrival.brand, arrival.store, arrival.device)
        if claimed != (where.brand, where.store, where.device):
            return self._reject("topic_mismatch", topic, f"payload says brand/store/device {'/'.join(claimed)}")
        pack = PACKS.get(arrival.model_pack)
        if pack is not None and arrival.embedding.dim != pack.recogniser.embedding_dim:
            dims = (arrival.embedding.dim, pack.recogniser.embedding_dim)
            return self._reject("invalid_payload", topic, f"{dims[0]}-d embedding from a {dims[1]}-d pack {pack.id}")
        return arrival

    def _reject(self, reason: RejectReason, topic: str, detail: str) -> None:
        self.counters.reject(reason)
        log.warning("rejected message on %s: %s: %s", topic, reason, detail)

    def _duplicate(self, arrival: Arrival) -> None:
        self.counters.add("duplicates")
        log.debug("duplicate arrival %s ignored", arrival.event_id)


_STOP = object()


class IngestWorker:
    def __init__(
        self,
        processor: ArrivalProcessor,
        broker: transport.BrokerUrl,
        *,
        client_id: str,
        card_ttl_s: int,
        share_group: str | None = None,
    ) -> None:
        self._processor = processor
        self._broker = broker
        self._card_ttl_s = card_ttl_s
        self._inbox: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="cloud-ingest", daemon=True)
        events = topics.ALL_DEVICE_EVENTS
        self._filter = topics.shared(events, share_group) if share_group else events
        self._subscribed = threading.Event()
        self._refusals: list[str] = []
        self._client = transport.make_client(broker, client_id)
        transport.subscribe_on_connect(self._client, [(self._filter, 1)])
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def counts(self) -> IngestCounts:
        return self._processor.counters.snapshot()

    def backlog(self) -> int:
        return self._inbox.qsize()

    def start(self, *, timeout: float = 10.0) -> None:
        """Connect and subscribe, then start working.

        Returns only once the broker confirmed the subscription, so an arrival published after
        this returns is never missed; raises ConnectionError when the broker does not answer or
        refuses the subscription (a broker without shared subscriptions, an ACL).
        """
        self._thread.start()
        try:
            transport.start(self._client, self._broker, timeout=timeout)
            if not self._subscribed.wait(timeout) or self._refusals:
                transport.stop(self._client)
                reason = self._refusals[0] if self._refusals else f"no SUBACK within {timeout:.0f} s"
                raise ConnectionError(f"broker {self._broker} refused subscription {self._filter}: {reason}")
        except ConnectionError:
            self._inbox.put(_STOP)
            self._thread.join()
            raise
        log.info("ingesting arrivals from %s (%s)", self._broker, self._filter)

    def stop(self) -> None:
        """Stop taking new arrivals, finish and publish the ones received, then disconnect."""
        self._client.unsubscribe(self._filter)
        self._inbox.put(_STOP)
        self._thread.join()
        transport.stop(self._client)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, reason_codes: list[ReasonCode], properties: object
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            self._refusals.extend(refused)
            log.error("broker refused subscription %s: %s", self._filter, ", ".join(refused))
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self._inbox.put((message.topic, message.payload))

    def _run(self) -> None:
        while (item := self._inbox.get()) is not _STOP:
            topic, payload = item  # type: ignore[misc]
            try:
                card = self._processor.process(topic, payload)
                if card is not None:
                    self._publish(card)
            except Exception:
                self._processor.counters.add("errors")
                log.exception("arrival on %s failed; carrying on", topic)

    def _publish(self, card: GuideCard) -> None:
        info = transport.publish(
            self._client, topics.guide_card(card.brand, card.store), card, qos=1, expiry_s=self._card_ttl_s
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("card %s not sent yet: %s", card.card_id, mqtt.error_string(info.rc))
        self._processor.counters.add("cards")
