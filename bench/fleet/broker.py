"""The fleet's Mosquitto: a generated config on a free loopback port, and its $SYS figures.

Persistence is on (a broker restarted by its operator keeps the queued messages of persistent
sessions), ``$SYS`` is published every second so the soak can watch the broker's queue depth.
"""

from __future__ import annotations

import getpass
import signal
import threading
from pathlib import Path

from protocol import transport
from tests.netutil import MosquittoProcess, free_port

#: $SYS topics sampled: messages held by the broker (queued, in flight and retained), clients, load.
SYS_TOPICS = {
    "$SYS/broker/store/messages/count": "stored_messages",
    "$SYS/broker/clients/connected": "clients_connected",
    "$SYS/broker/load/messages/received/1min": "received_per_min",
}


class FleetBroker(MosquittoProcess):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir / "mosquitto.conf", free_port())
        self.workdir = workdir
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"user {getpass.getuser()}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "autosave_interval 5\n"
            "sys_interval 1\n"
            "max_queued_messages 100000\n"
            "max_inflight_messages 100\n"
            f"log_dest file {workdir / 'mosquitto.log'}\n"
        )
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def kill_and_restart(self, sig: int = signal.SIGKILL) -> None:
        """Kill the broker (SIGKILL: a crash; SIGTERM: an operator restart) and start it again."""
        if self.proc is not None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
            self.proc = None
        self.restarts += 1
        self.start()


class SysMonitor:
    """Keeps the latest value of each watched $SYS topic; ``sample()`` copies them."""

    def __init__(self, url: str) -> None:
        self._values: dict[str, float] = {}
        self._lock = threading.Lock()
        broker = transport.BrokerUrl.parse(url)
        self._client = transport.make_client(broker, "fleet-sys-monitor")
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        transport.subscribe_on_connect(self._client, [(topic, 0) for topic in SYS_TOPICS])
        self._client.on_message = self._on_message
        transport.start(self._client, broker)

    def _on_message(self, client, userdata, message) -> None:  # noqa: ANN001
        try:
            value = float(message.payload.decode().split()[0])
        except (ValueError, IndexError, UnicodeDecodeError):
            return
        with self._lock:
            self._values[SYS_TOPICS[message.topic]] = value

    def sample(self) -> dict[str, float]:
        with self._lock:
            return dict(self._values)

    def close(self) -> None:
        transport.stop(self._client)
