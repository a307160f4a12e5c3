"""``instore edge run`` with a Wi-Fi source beside its camera: arrivals, footfall and presence all
go through the box's on-disk outbox to a real Mosquitto, and survive a broker that is away."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocol import topics, transport
from protocol.codec import decode
from protocol.messages import Arrival
from protocol.wifi import WifiFootfall, WifiPresence, device_key

from .conftest import LAB_DAY, LAB_EQUIPMENT, SECRET, WIFI, leaked

FACES = WIFI.parent / "faces"
#: A short capture (5 probe requests): enough to show that Wi-Fi messages wait in the outbox.
SHORT_CAPTURE = WIFI / "aircrack-ng-test" / "test1.pcap"
MEMBER_MAC = "c0:b6:f9:39:de:28"  # a stable laptop heard for 1.8 h in the lab
#: A store of its own: the box's retained state must not show up in other tests' subscriptions.
STORE = "wifi-box"


def edge_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provisioning", "edge", "run", *args],
                          capture_output=True, text=True, timeout=300)


def summary(result: subprocess.CompletedProcess[str]) -> dict:
    last = json.loads(result.stdout.splitlines()[-1])
    assert last["event"] == "summary", result.stderr[-3000:]
    return last


class Subscriber:
    def __init__(self, url: str, client_id: str) -> None:
        self.payloads: list[tuple[str, bytes]] = []
        self.url = transport.BrokerUrl.parse(url)
        self.client = transport.make_client(self.url, client_id)
        transport.subscribe_on_connect(self.client, [(f"{topics.ROOT}/demo/{STORE}/#", 1)])
        self.client.on_message = lambda c, u, m: self.payloads.append((m.topic, m.payload))
        transport.start(self.client, self.url)
        time.sleep(0.3)  # the SUBACK

    def of(self, kind: str) -> list[bytes]:
        return [p for t, p in list(self.payloads) if t.endswith(f"/evt/{kind}")]

    def wait(self, kind: str, count: int, timeout: float = 20) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.of(kind)) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.of(kind)

    def close(self) -> None:
        transport.stop(self.client)


@pytest.fixture
def subscriber(mosquitto):
    made: list[Subscriber] = []

    def make() -> Subscriber:
        made.append(Subscriber(mosquitto.url, f"wifi-box-sub-{time.monotonic_ns()}"))
        return made[-1]

    yield make
    for sub in made:
        sub.close()


@pytest.fixture
def camera(tmp_path, models_dir) -> Path:
    """An image folder with two different people (links to the real photos, never copies)."""
    folder = tmp_path / "door"
    folder.mkdir()
    for name in ("deepface_id01/img1.jpg", "deepface_id02/img26.jpg"):
        (folder / name.replace("/", "-")).symlink_to(FACES / name)
    return folder


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "wifi-secret"
    path.write_bytes(SECRET + b"\n")
    return path


def test_edge_run_with_wifi_publishes_arrivals_footfall_and_presence(mosquitto, subscriber, camera, secret,
                                                                    tmp_path, raw_macs):
    sub = subscriber()
    done = edge_run("--store", STORE, "--device", "e1", "--source", str(camera), "--broker", mosquitto.url,
                    "--state", str(tmp_path / "box.db"), "--wifi", str(LAB_DAY), "--wifi-secret-file", str(secret),
                    "--once")
    assert done.returncode == 0, done.stderr[-3000:]
    result = summary(done)
    wifi = result["wifi"]
    assert result["arrivals"] == 2 and result["unacked"] == 0
    assert wifi["probes"] == 8196 and 110 <= wifi["minutes"] <= 125 and wifi["presence_events"] > 0

    arrivals = [decode(p, Arrival) for p in sub.wait("arrival", 2)]
    footfall = [decode(p, WifiFootfall) for p in sub.wait("footfall", wifi["minutes"])]
    presence = [decode(p, WifiPresence) for p in sub.wait("presence", wifi["presence_events"])]
    assert len(arrivals) == 2 and {a.device for a in arrivals} == {"e1"}
    assert len(footfall) == wifi["minutes"] and max(f.people for f in footfall) >= 10
    assert len(presence) == wifi["presence_events"]  # no registered list: every stable in-store device
    assert device_key(MEMBER_MAC, SECRET) in {p.device_key for p in presence}
    everything = "\n".join(p.decode() for _, p in sub.payloads)
    assert not leaked(everything, raw_macs) and not leaked(done.stdout + done.stderr, raw_macs)


def test_wifi_messages_wait_in_the_outbox_while_the_broker_is_away(mosquitto, subscriber, camera, secret, tmp_path):
    from provisioning.broker import free_port

    state = tmp_path / "box.db"
    (tmp_path / "keys").write_text(device_key(MEMBER_MAC, SECRET) + "\n")
    config = tmp_path / "box.toml"
    no_wait = "[outbox]\nflush_timeout_s = 0\n"  # no broker to wait for on the first run
    config.write_text(
        f'store = "{STORE}"\ndevice = "e1"\nbroker = "mqtt://127.0.0.1:{free_port()}"\nstate = "{state}"\n'
        f'{no_wait}'
        f'[[cameras]]\nid = "door"\nsource = "{camera}"\n'
        f'[wifi]\nsource = "{SHORT_CAPTURE}"\nsecret_file = "{secret}"\nregistered = "{tmp_path / "keys"}"\n'
        f'background_macs = ["{LAB_EQUIPMENT[0]}"]\n'
    )
    away = edge_run("--config", str(config), "--once")
    assert away.returncode == 1, away.stderr[-3000:]  # events left in the outbox
    first = summary(away)
    minutes = first["wifi"]["minutes"]
    assert minutes >= 1 and first["wifi"]["background_keys"] == 1
    assert first["unacked"] == first["arrivals"] + minutes + first["wifi"]["presence_events"]

    sub = subscriber()
    # back with a broker, the box waits for its acks as one does (it was run with no wait, and on a busy
    # machine its last event was not acked before it exited)
    config.write_text(config.read_text().replace(no_wait, ""))
    back = edge_run("--config", str(config), "--broker", mosquitto.url, "--once")  # same state, no new visit
    assert back.returncode == 0, back.stderr[-3000:]
    assert summary(back)["arrivals"] == 0 and summary(back)["unacked"] == 0
    assert len(sub.wait("footfall", 2 * minutes)) == 2 * minutes  # the first run's, then the second's
    assert len(sub.wait("arrival", first["arrivals"])) == first["arrivals"]


@pytest.mark.parametrize("wifi_table, reason", [
    ('source = "udp:notaport"', "wifi.source: Value error, udp: needs a port number"),
    ('source = "x.pcap"\nbackground_macs = ["zz"]', "wifi.background_macs.0: Value error, MAC address must be 12 hex"),
    ('source = "/nonexistent.pcap"', "capture /nonexistent.pcap does not exist"),
    ('source = "SHORT"\nsecret_file = "/nonexistent"', "cannot read brand secret file /nonexistent"),
])
def test_a_bad_wifi_section_stops_the_box_at_start(tmp_path, camera, secret, wifi_table, reason):
    if "secret_file" not in wifi_table:
        wifi_table += f'\nsecret_file = "{secret}"'
    config = tmp_path / "box.toml"
    config.write_text(f'store = "{STORE}"\ndevice = "e1"\nstate = "{tmp_path / "s.db"}"\n'
                      f'[[cameras]]\nid = "door"\nsource = "{camera}"\n'
                      f'[wifi]\n{wifi_table.replace("SHORT", str(SHORT_CAPTURE))}\n')
    done = edge_run("--config", str(config), "--once")
    assert done.returncode == 2 and reason in done.stderr, done.stderr[-2000:]
