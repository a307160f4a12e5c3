"""A store's uplink: a TCP proxy between its box and screen and the broker, which can be cut.

Cutting closes the listening socket and every open connection, as an unplugged router would;
restoring listens again on the same port, so the store's MQTT clients reconnect by themselves.
All proxies share one asyncio loop in one thread.
"""

from __future__ import annotations

import asyncio
import threading


class ProxyLoop:
    """The event loop every store link runs on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="store-links", daemon=True)
        self._thread.start()

    def call(self, coro, timeout: float = 10.0):  # any coroutine
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class StoreLink:
    def __init__(self, loop: ProxyLoop, listen_port: int, broker_port: int) -> None:
        self.loop = loop
        self.port, self.broker_port = listen_port, broker_port
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.cuts = 0

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def up(self) -> None:
        self.loop.call(self._listen())

    def cut(self) -> None:
        self.cuts += 1
        self.loop.call(self._close())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, down_reader: asyncio.StreamReader, down_writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        except OSError:
            down_writer.transport.abort()
            return
        pair = {down_writer, up_writer}
        self._writers |= pair
        await asyncio.gather(self._pipe(down_reader, up_writer), self._pipe(up_reader, down_writer))
        self._writers -= pair

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
