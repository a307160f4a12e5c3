"""The cloud's MQTT connection for health alerts: one QoS 1 message per alert, confirmed or retried.

``scan`` hands each new alert to this sender and marks the row published only once ``__call__``
returns True (the broker acknowledged it); otherwise the row stays pending and the next scan
sends it again. Its own connection (client id ``<cloud>-alerts``), so alerts never queue behind
guide cards or commands.
"""

from __future__ import annotations

import logging

from protocol import topics, transport
from protocol.health import HealthAlert

log = logging.getLogger(__name__)


class AlertSender:
    def __init__(self, broker: transport.BrokerUrl, *, client_id: str, timeout_s: float = 5.0) -> None:
        self._broker = broker
        self._client = transport.make_client(broker, client_id)
        self._timeout_s = timeout_s
        self._started = False

    def start(self, *, timeout: float = 10.0) -> None:
        transport.start(self._client, self._broker, timeout=timeout)
        self._started = True

    def stop(self) -> None:
        if self._started:
            transport.stop(self._client)
            self._started = False

    def __call__(self, alert: HealthAlert) -> bool:
        """Publish one alert; True once the broker has it."""
        if not self._started:
            return False
        failure = transport.publish_confirmed(
            self._client, topics.health_alert(alert.brand, alert.store), alert, timeout=self._timeout_s)
        if failure is not None:
            log.warning("alert %s not sent: %s", alert.alert_id, failure)
        return failure is None
