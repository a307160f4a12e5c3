"""Shared parts of the MQTT fuzzers: hostile payloads, a sender on the real broker, and the
bookkeeping that says what each worker should have done with them.

Each worker under test (cloud ingest, edge box, guide-screen feed, ESL gateway) subscribes to its
own topics; its test publishes the payloads below there through Mosquitto and then checks the
worker's own counters. ``expected_rejects`` decodes every payload with the real codec first, so
the test knows how many must be refused as undecodable and how many as addressed elsewhere,
instead of trusting the worker to grade itself.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import uuid4

import paho.mqtt.client as mqtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import transport
from protocol.codec import MAX_PAYLOAD_BYTES, DecodeError, decode
from protocol.messages import Message
from tests.fuzz.jsonish import JSON_JUNK, dump, from_json_schema, mutated

T = TypeVar("T")
M = TypeVar("M", bound=Message)

#: Payloads every topic gets: empty, not UTF-8, JSON of the wrong shape, a version from the
#: future, a type tag alone, nesting and a number past the codec's limits, an oversize body.
FIXED = [b"", b"\xff\xfe\x00", b"null", b"[]", b"{}", b'{"v": 2}', b'{"v": 1, "type": "arrival"}',
         b"[" * 60_000, b"1" * 5000, b" " * (MAX_PAYLOAD_BYTES + 10)]


def new_brand() -> str:
    """A brand no other test uses, so a shared broker's other traffic never meets this test's."""
    return f"fz{uuid4().hex[:10]}"


def samples(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """Up to ``count`` examples of ``strategy`` (hypothesis may stop early on a small space)."""
    drawn: list[T] = []

    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: T) -> None:
        drawn.append(value)

    collect()
    return drawn


def junk(count: int) -> list[bytes]:
    """JSON-shaped junk: NaN, huge integers, lone surrogates, control characters, nesting."""
    return [dump(value) for value in samples(JSON_JUNK, count)]


def _schema_shaped(model: type[M], fixed: dict[str, Any]) -> st.SearchStrategy[dict]:
    """The codec's envelope (``v`` and the type tag, which the schema marks optional because they
    have defaults) and ``fixed`` (an address, say; a strategy is drawn) set over the schema-shaped
    data, so most of it reaches the model's own validation and the worker's checks behind it."""
    envelope = {"v": 1, "type": model.model_fields["type"].default}
    drawn = {key: value if isinstance(value, st.SearchStrategy) else st.just(value) for key, value in fixed.items()}
    return st.tuples(from_json_schema(model.model_json_schema()), st.fixed_dictionaries(drawn)).map(
        lambda pair: {**pair[0], **envelope, **pair[1]})


def shaped(model: type[M], count: int, **fixed: Any) -> list[Any]:
    """Schema-shaped data for ``model`` and one-to-three-step mutations of it (``fixed`` is set
    before mutating, so a mutation may still break it)."""
    valid = _schema_shaped(model, fixed)
    return samples(st.one_of(valid, mutated(valid)), count)


def decodable(model: type[M], count: int, **fixed: Any) -> list[M]:
    """Up to ``count`` schema-shaped ``model`` messages that decode: the valid traffic of a test."""
    found = []
    for data in samples(_schema_shaped(model, fixed), count + 10):
        try:
            found.append(decode(dump(data), model))
        except DecodeError:
            continue  # a cross-field rule the schema cannot say (a member price above the price)
    assert found, f"no schema-shaped {model.__name__} decoded: the generator misses a constraint"
    return found[:count]


def expected_rejects(payloads: Iterable[bytes], kind: type[M], addressed: Callable[[M], bool],
                     *, undecodable: str, elsewhere: str) -> tuple[Counter[str], list[M]]:
    """How many payloads the worker must refuse under each reason, and the ones it must accept.

    A payload that does not decode as ``kind`` is ``undecodable``; one that decodes but is not
    ``addressed`` to the worker is ``elsewhere``.
    """
    reasons: Counter[str] = Counter()
    accepted: list[M] = []
    for payload in payloads:
        try:
            message = decode(payload, kind)
        except DecodeError:
            reasons[undecodable] += 1
            continue
        if addressed(message):
            accepted.append(message)
        else:
            reasons[elsewhere] += 1
    return reasons, accepted


def grown(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """The counters that changed between two snapshots, by how much."""
    return {key: value - before.get(key, 0) for key, value in after.items() if value != before.get(key, 0)}


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "the worker") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not get there in {timeout:.0f} s"
        time.sleep(0.05)


@contextmanager
def sender(url: str) -> Iterator[Callable[[str, Iterable[bytes]], int]]:
    """A connected client; the function it yields publishes payloads (QoS 1, in order) and says how many."""
    broker = transport.BrokerUrl.parse(url)
    client: mqtt.Client = transport.make_client(broker, f"fuzz-{uuid4().hex[:8]}")
    transport.start(client, broker)

    def send(topic: str, payloads: Iterable[bytes]) -> int:
        sent = 0
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
            sent += 1
        return sent

    try:
        yield send
    finally:
        transport.stop(client)


@contextmanager
def listener(url: str, topic_filter: str) -> Iterator[list[tuple[str, bytes]]]:
    """Everything published under ``topic_filter`` from the SUBACK on, in order, while the block runs."""
    broker = transport.BrokerUrl.parse(url)
    client: mqtt.Client = transport.make_client(broker, f"fuzz-listen-{uuid4().hex[:8]}")
    heard: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    transport.subscribe_on_connect(client, [(topic_filter, 1)])
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = lambda c, u, message: heard.append((message.topic, message.payload))
    transport.start(client, broker)
    try:
        assert subscribed.wait(10), f"no SUBACK for {topic_filter}"
        yield heard
    finally:
        transport.stop(client)
