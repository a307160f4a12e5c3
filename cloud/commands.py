"""Publishing the command outbox (erase, ...) to edge boxes over MQTT.

Commands are rows first and messages second: the transaction that erases a person also queues
its commands, and ``flush`` publishes whatever is unsent (QoS 1), marking each row once the
broker has it. Any process with a broker connection may flush; a row is claimed by marking it,
so two API workers never send the same command twice.
"""

from __future__ import annotations

import logging
import threading

import paho.mqtt.client as mqtt

from cloud.db import Database
from cloud.store import iso, utcnow
from protocol import topics, transport
from protocol.commands import EraseCommand

log = logging.getLogger(__name__)

_MODELS = {"erase": EraseCommand}


class CommandSender:
    def __init__(self, db: Database, broker: transport.BrokerUrl, *, client_id: str) -> None:
        self._db = db
        self._broker = broker
        self._client = transport.make_client(broker, client_id)
        self._lock = threading.Lock()
        self._started = False

    def start(self, *, timeout: float = 10.0) -> None:
        transport.start(self._client, self._broker, timeout=timeout)
        self._started = True
        self.flush()

    def stop(self) -> None:
        if self._started:
            transport.stop(self._client)
            self._started = False

    def flush(self, *, timeout: float = 5.0) -> int:
        """Publish every unsent command; the number sent."""
        sent = 0
        with self._lock:
            pending = self._db.query("SELECT * FROM commands WHERE sent_at IS NULL ORDER BY created, id")
            for row in pending:
                claimed = self._db.execute(
                    "UPDATE commands SET sent_at = ? WHERE id = ? AND sent_at IS NULL", (iso(utcnow()), row["id"]))
                if not claimed:
                    continue
                message = _MODELS[row["name"]].model_validate_json(row["payload"])
                topic = topics.device_command(row["brand"], row["store"], row["device"], row["name"])
                info = transport.publish(self._client, topic, message, qos=1)
                try:
                    info.wait_for_publish(timeout)
                except (RuntimeError, ValueError) as exc:
                    info = None
                    log.warning("command %s not sent: %s", row["id"], exc)
                if info is None or info.rc != mqtt.MQTT_ERR_SUCCESS or not info.is_published():
                    self._db.execute("UPDATE commands SET sent_at = NULL WHERE id = ?", (row["id"],))
                    continue
                sent += 1
        return sent
