"""Where the Wi-Fi engine's messages go: anything with ``put(topic, message)``.

The edge box's on-disk outbox has that shape, so the engine publishes through it in production;
``MqttSink`` publishes straight to a broker for the standalone ``wifi`` command and the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import paho.mqtt.client as mqtt

from protocol import transport
from protocol.messages import Message

log = logging.getLogger(__name__)


class Sink(Protocol):
    def put(self, topic: str, message: Message) -> object: ...


class MqttSink:
    """QoS 1 publishing; ``flush`` waits for the broker's acknowledgements."""

    def __init__(self, url: transport.BrokerUrl, client_id: str) -> None:
        self.url = url
        self.client = transport.make_client(url, client_id)
        self._pending: list[mqtt.MQTTMessageInfo] = []

    def start(self) -> None:
        transport.start(self.client, self.url)

    def put(self, topic: str, message: Message) -> None:
        self._pending.append(transport.publish(self.client, topic, message, qos=1))
        self._pending = [info for info in self._pending if not info.is_published()]

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for every acknowledgement; return how many are still unacknowledged."""
        for info in self._pending:
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as exc:
                log.error("wifi message not acknowledged: %s", exc)
        unacked = sum(not info.is_published() for info in self._pending)
        self._pending = []
        return unacked

    def close(self) -> None:
        transport.stop(self.client)


class TeeSink:
    """Passes every message on and shows it to an observer too (the CLI's JSON lines)."""

    def __init__(self, inner: Sink, observer: Callable[[str, Message], None]) -> None:
        self.inner = inner
        self.observer = observer

    def put(self, topic: str, message: Message) -> None:
        self.inner.put(topic, message)
        self.observer(topic, message)
