"""An embedded MQTT broker (amqtt) for the demo: nothing to install, gone when the demo ends.

amqtt speaks MQTT 3.1.1 without shared subscriptions, so its URL says ``protocol=3.1.1`` and the
cloud's ingest subscribes without a share group. Production uses Mosquitto (``--broker``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amqtt", daemon=True)
        self._broker = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}?protocol=3.1.1"

    async def _start(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = Broker(config, loop=self._loop)
        self._broker = broker
        await broker.start()

    def start(self) -> None:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=15)
        log.info("embedded broker listening on %s", self.url)

    def stop(self) -> None:
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
