"""The fleet's Mosquitto: the configuration ``instore provision broker-config`` generates (TLS,
certificate identities, dynamic-security ACLs, persistence, packet cap) for a provisioned brand,
and its $SYS figures.

Nothing is soak-specific: every edge box, guide screen and cloud process connects with its own
install bundle's certificate, the cloud through the service listener and share group ``cdp``, so
"nothing lost" is measured on what the product ships. ``$SYS`` comes every 10 s (Mosquitto's
default: the generated config does not change it), read by the provisioning admin account.
"""

from __future__ import annotations

import getpass
import signal
import threading
from pathlib import Path

from protocol import transport
from protocol.transport import TlsFiles
from provisioning import fleet as provisioning
from provisioning.broker_config import ListenerOptions, write_cloud_broker
from provisioning.registry import Home
from tests.netutil import MosquittoProcess, free_port

#: $SYS topics sampled: messages held by the broker (queued, in flight and retained), clients, load.
SYS_TOPICS = {
    "$SYS/broker/store/messages/count": "stored_messages",
    "$SYS/broker/clients/connected": "clients_connected",
    "$SYS/broker/load/messages/received/1min": "received_per_min",
}


def tls_url(host: str, port: int, files: TlsFiles) -> str:
    """An mqtts:// URL carrying the TLS files, for processes started with ``--broker URL``."""
    return f"mqtts://{host}:{port}?ca={files.ca}&cert={files.cert}&key={files.key}"


def bundle_files(home: Home, store: str, device: str) -> TlsFiles:
    folder = home.bundle_dir(store, device)
    return TlsFiles(ca=folder / "ca.crt", cert=folder / "device.crt", key=folder / "device.key")


class FleetBroker(MosquittoProcess):
    """The cloud broker of a fresh provisioning home (``workdir/provision``) for ``brand``."""

    def __init__(self, workdir: Path, brand: str) -> None:
        super().__init__(workdir / "provision" / "broker" / "cloud" / "mosquitto.conf", free_port())
        self.workdir = workdir
        self.service_port = free_port()
        self.home = Home(workdir / "provision")
        provisioning.init(self.home, brand, f"mqtts://127.0.0.1:{self.port}", ["127.0.0.1", "localhost"],
                          service_url=f"mqtts://127.0.0.1:{self.service_port}")
        self.restarts = 0

    def configure(self) -> Path:
        """(Re)generate the broker config from the registry, as ``instore provision broker-config`` does."""
        options = ListenerOptions(port=self.port, bind="127.0.0.1", service_port=self.service_port,
                                  run_as=getpass.getuser(), log_file=self.workdir / "mosquitto.log")
        return write_cloud_broker(self.home, self.home.load(), options)

    def device_url(self, store: str, device: str, port: int | None = None) -> str:
        """Where a store's device connects (its store link's port, or the broker's), with its bundle's files."""
        return tls_url("127.0.0.1", port or self.port, bundle_files(self.home, store, device))

    @property
    def cloud_url(self) -> str:
        return tls_url("127.0.0.1", self.service_port, bundle_files(self.home, "*", provisioning.CLOUD_SERVICE))

    @property
    def admin_url(self) -> str:
        return tls_url("127.0.0.1", self.service_port, provisioning.admin_tls(self.home))

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

    def _on_message(self, client, userdata, message) -> None:
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
