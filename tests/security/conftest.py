"""A provisioned brand (two stores) and a real Mosquitto running its generated TLS config."""

from __future__ import annotations

import getpass
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from protocol import transport
from protocol.bundle import Bundle, load_bundle
from provisioning import fleet
from provisioning.broker_config import ListenerOptions, write_cloud_broker, write_store_broker
from provisioning.registry import Home
from tests.netutil import MosquittoProcess, free_port

BRAND = "acme"
#: (store, device, role) provisioned for every test; edge-1 and kiosk-main exist in both stores.
DEVICES = [
    ("s1", "edge-1", "edge"),
    ("s1", "kiosk-main", "kiosk"),
    ("s1", "esl-1", "esl_gateway"),
    ("s2", "edge-1", "edge"),
    ("s2", "kiosk-main", "kiosk"),
]


FACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces"

TlsMosquitto = MosquittoProcess  # the generated TLS config, started as is


def listener(home: Home, port: int, name: str, service_port: int | None = None) -> ListenerOptions:
    # Started as root, Mosquitto drops to user "mosquitto", which cannot read 0600 keys owned by us.
    return ListenerOptions(port=port, bind="127.0.0.1", service_port=service_port, run_as=getpass.getuser(),
                           log_file=home.root / f"{name}.log")


@dataclass
class Probe:
    """A paho client over TLS that records what the broker answered, packet by packet."""

    client: mqtt.Client
    url: transport.BrokerUrl | None = None
    connack: list[str] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)
    subacks: dict[int, list[str]] = field(default_factory=dict)
    pubacks: dict[int, str] = field(default_factory=dict)
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        c = self.client
        c.on_connect = lambda _c, _u, _f, rc, _p: self._note(self.connack.append(str(rc)))
        c.on_disconnect = lambda _c, _u, _f, rc, _p: self._note(self.disconnects.append(str(rc)))
        c.on_subscribe = lambda _c, _u, mid, rcs, _p: self._note(self.subacks.__setitem__(mid, [str(r) for r in rcs]))
        c.on_publish = lambda _c, _u, mid, rc, _p: self._note(self.pubacks.__setitem__(mid, str(rc)))
        c.on_message = lambda _c, _u, msg: self._note(self.messages.append(msg))

    def _note(self, _: object) -> None:
        self.event.set()

    def wait(self, done, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            self.event.wait(0.05)
            self.event.clear()
        return True

    def connect(self, port: int | None = None, *, clean: bool = True, session_expiry_s: int = 0) -> str:
        """'Success', or why the broker would not have us (TLS alert, refused CONNACK).

        ``port``: default the port of the probe's URL (its bundle's broker: the service listener
        for the cloud, the device listener for a device)."""
        properties = None
        if session_expiry_s:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = session_expiry_s
        try:
            self.client.connect("127.0.0.1", port or self.url.port, keepalive=10, clean_start=clean,
                                properties=properties)
        except OSError as exc:
            return f"refused: {exc}"
        self.client.loop_start()
        self.wait(lambda: self.connack or self.disconnects)
        if self.connack and self.connack[0] == "Success" and not self.disconnects:
            return "Success"
        self.client.loop_stop()
        return f"refused: {(self.disconnects or self.connack or ['no answer'])[0]}"

    def subscribe(self, topic: str) -> str:
        _, mid = self.client.subscribe(topic, qos=1)
        assert self.wait(lambda: mid in self.subacks), f"no SUBACK for {topic}"
        return self.subacks[mid][0]

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> str:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        assert self.wait(lambda: info.mid in self.pubacks), f"no PUBACK for {topic}"
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="session")
def cloud_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def service_port() -> int:
    """The cloud broker's service listener (services CA: the cloud and the admin)."""
    return free_port()


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory, cloud_port: int, service_port: int) -> Home:
    home = Home(tmp_path_factory.mktemp("provision"))
    fleet.init(home, BRAND, f"mqtts://127.0.0.1:{cloud_port}", ["127.0.0.1", "localhost"],
               service_url=f"mqtts://127.0.0.1:{service_port}")
    for store in ("s1", "s2"):
        fleet.create_store(home, store)
    for store, device, role in DEVICES:
        fleet.create_device(home, store, device, role)
    for store in ("s1", "s2"):
        fleet.write_store_bundles(home, store)
    fleet.write_bundle(home, fleet.CLOUD_SERVICE)
    return home


@pytest.fixture(scope="session")
def broker(home: Home, cloud_port: int):
    config = write_cloud_broker(home, home.load(), listener(home, cloud_port, "cloud"))  # service port: the registry's
    mosquitto = TlsMosquitto(config, cloud_port)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def probe():
    """Make probes from bundles (the real TLS path of protocol.transport); closed after the test."""
    made: list[Probe] = []

    def make(bundle: Bundle | None = None, *, url: transport.BrokerUrl | None = None, client_id: str | None = None) -> Probe:
        target = url or bundle.broker
        p = Probe(transport.make_client(target, client_id or f"probe-{len(made)}-{time.monotonic_ns()}"), target)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture(scope="session")
def store_broker(home: Home, broker: TlsMosquitto):
    """An in-store broker for store s3, bridged to the cloud broker."""
    port = free_port()
    fleet.create_store(home, "s3", local_broker_url=f"mqtts://127.0.0.1:{port}")
    for device, role in (("edge-1", "edge"), ("kiosk-main", "kiosk")):
        fleet.create_device(home, "s3", device, role)
    fleet.write_store_bundles(home, "s3")
    registry = home.load()
    write_cloud_broker(home, registry, listener(home, broker.port, "cloud"))
    broker.restart()  # the cloud broker must learn the bridge's identity
    local = TlsMosquitto(write_store_broker(home, registry, "s3", listener(home, port, "s3", free_port())), port)
    local.start()
    yield local
    local.stop()


@pytest.fixture
def bundle_of(home: Home):
    return lambda store, device: load_bundle(home.bundle_dir(store, device))


@pytest.fixture
def reload_acls(home: Home, broker: TlsMosquitto):
    """Regenerate the cloud broker's config from the registry and restart it, as an operator would."""

    def reload() -> None:
        write_cloud_broker(home, home.load(), listener(home, broker.port, "cloud"))
        broker.restart()

    return reload


@pytest.fixture
def raw_probe():
    made: list[Probe] = []

    def make(client: mqtt.Client) -> Probe:
        made.append(Probe(client))
        return made[-1]

    yield make
    for p in made:
        p.close()


@pytest.fixture
def camera(tmp_path) -> Path:
    """A replayed door camera: a folder with two people's portraits."""
    folder = tmp_path / "door"
    folder.mkdir()
    for name in ("deepface_id01/img1.jpg", "deepface_id02/img26.jpg"):
        (folder / name.replace("/", "-")).symlink_to(FACES / name)
    return folder
