"""Publishes the box's arrivals (QoS 1) and its retained online/offline state.

The Last Will says "offline" for the box if it dies; a clean shutdown says it explicitly, after
every arrival has been acknowledged by the broker.
"""

from __future__ import annotations

import logging

import paho.mqtt.client as mqtt

from protocol import topics, transport
from protocol.messages import Arrival, DeviceState, now

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, url: transport.BrokerUrl, brand: str, store: str, device: str, model_pack: str) -> None:
        self.url = url
        self._state = dict(brand=brand, store=store, device=device, role="edge", model_pack=model_pack)
        self._state_topic = topics.device_state(brand, store, device)
        self._pending: list[mqtt.MQTTMessageInfo] = []
        self.client = transport.make_client(
            url, f"edge-{brand}-{store}-{device}", will=(self._state_topic, DeviceState(state="offline", ts=now(), **self._state))
        )

    def start(self) -> None:
        transport.start(self.client, self.url)
        transport.publish(self.client, self._state_topic, DeviceState(state="online", ts=now(), **self._state), retain=True)

    def send(self, arrival: Arrival) -> None:
        topic = topics.arrival(arrival.brand, arrival.store, arrival.device)
        self._pending.append(transport.publish(self.client, topic, arrival, qos=1))
        self._pending = [info for info in self._pending if not info.is_published()]

    def flush(self, timeout: float = 30.0) -> int:
        """Wait until the broker acknowledged every arrival; return how many are still unacked."""
        for info in self._pending:
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as exc:
                log.error("arrival not acknowledged: %s", exc)
        unacked = sum(not info.is_published() for info in self._pending)
        self._pending = []
        return unacked

    def close(self) -> None:
        info = transport.publish(self.client, self._state_topic, DeviceState(state="offline", ts=now(), **self._state), retain=True)
        info.wait_for_publish(5)
        transport.stop(self.client)
