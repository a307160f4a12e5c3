"""Health alerts out on MQTT: one QoS 1 message per alert, confirmed or retried.

``scan`` hands each new alert to this sender and marks the row published only once ``__call__``
returns True (the broker acknowledged it); otherwise the row stays pending and the next scan
sends it again. It publishes on the cloud process's one MQTT connection (the ingest worker's
client, shared with guide cards, commands and label redraws); paho's publish is thread-safe, and
the scan runs on the scheduler's thread, never on paho's.
"""

from __future__ import annotations

import logging

import paho.mqtt.client as mqtt

from protocol import topics, transport
from protocol.health import HealthAlert

log = logging.getLogger(__name__)


class AlertSender:
    def __init__(self, client: mqtt.Client, *, timeout_s: float = 5.0) -> None:
        self._client = client
        self._timeout_s = timeout_s

    def __call__(self, alert: HealthAlert) -> bool:
        """Publish one alert; True once the broker has it."""
        failure = transport.publish_confirmed(
            self._client, topics.health_alert(alert.brand, alert.store), alert, timeout=self._timeout_s)
        if failure is not None:
            log.warning("alert %s not sent: %s", alert.alert_id, failure)
        return failure is None
