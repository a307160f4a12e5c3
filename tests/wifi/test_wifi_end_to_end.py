"""The ``wifi run`` command on the lab capture through a real Mosquitto: a registered stable MAC
arrives as presence with the cloud-computable key, footfall flows, and no raw MAC is anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
import sqlite_utils

from edge.wifi.background import Background
from edge.wifi.engine import Placement, WifiEngine
from edge.wifi.rules import PresenceRules
from edge.wifi.state import WifiState
from protocol import topics, transport
from protocol.codec import decode
from protocol.wifi import WifiFootfall, WifiPresence, device_key

from .conftest import LAB_DAY, LAB_EQUIPMENT, SECRET, leaked

#: An Intel laptop with a stable MAC, heard in the lab for 1.8 h at about -56 dBm.
MEMBER_MAC = "c0:b6:f9:39:de:28"
CLI = [sys.executable, "-c", "from edge.wifi.cli import app; app()"]


@pytest.fixture(scope="module")
def run(mosquitto, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wifi")
    (tmp / "secret").write_bytes(SECRET + b"\n")
    (tmp / "registered").write_text(device_key(MEMBER_MAC, SECRET) + "\n")
    payloads: list[tuple[str, bytes]] = []
    url = transport.BrokerUrl.parse(mosquitto.url)
    sub = transport.make_client(url, "wifi-test-sub")
    transport.subscribe_on_connect(sub, [(f"{topics.ROOT}/brand1/store1/#", 1)])
    sub.on_message = lambda c, u, m: payloads.append((m.topic, m.payload))
    transport.start(sub, url)
    args = ["run", "--source", str(LAB_DAY), "--store", "store1", "--device", "wifi1", "--brand", "brand1",
            "--broker", mosquitto.url, "--brand-secret-file", str(tmp / "secret"), "--once",
            "--registered", str(tmp / "registered"), "--db", str(tmp / "wifi.db")]
    for mac in LAB_EQUIPMENT:
        args += ["--background-mac", mac]
    done = subprocess.run(CLI + args, capture_output=True, text=True, timeout=180)
    threading.Event().wait(1.0)
    transport.stop(sub)
    return done, payloads, tmp / "wifi.db"


def test_registered_stable_mac_arrives_as_presence_with_its_key(run):
    done, payloads, _ = run
    assert done.returncode == 0, done.stderr[-2000:]
    presence = [decode(p, WifiPresence) for t, p in payloads if t.endswith("/evt/presence")]
    phases = [p.phase for p in presence]
    assert phases and phases == ["enter", "leave"] * (len(phases) // 2)  # a visit per silence > linger_s
    assert {p.device_key for p in presence} == {device_key(MEMBER_MAC, SECRET)}
    assert presence[0].dwell_s >= 60 and max(p.dwell_s for p in presence) > 1800


def test_footfall_minutes_flow_and_summary_is_last(run):
    done, payloads, _ = run
    footfall = [decode(p, WifiFootfall) for t, p in payloads if t.endswith("/evt/footfall")]
    assert 110 <= len(footfall) <= 125 and max(f.people for f in footfall) >= 10
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[-1]["event"] == "summary" and lines[-1]["probes"] == 8196 and lines[-1]["unacked"] == 0
    assert sum(line["event"] == "footfall" for line in lines) == len(footfall)


def test_no_raw_mac_in_payloads_stdout_logs_or_rows(run, raw_macs):
    done, payloads, db = run
    assert not leaked("\n".join(p.decode() for _, p in payloads), raw_macs)
    assert not leaked(done.stdout, raw_macs) and not leaked(done.stderr, raw_macs)
    rows = sqlite_utils.Database(db)
    assert rows["sessions"].count > 100
    for table in rows.table_names():
        assert not leaked(json.dumps(list(rows[table].rows)), raw_macs), table


def test_every_stable_device_is_sent_when_no_keys_are_registered(parsed, raw_macs, tmp_path, caplog):
    """Without a registered set, the cloud gets every stable in-store device, still only as keys."""

    class Keep:
        def __init__(self) -> None:
            self.messages = []

        def put(self, topic, message) -> None:
            self.messages.append(message)

    sink, equipment = Keep(), {device_key(m, SECRET) for m in LAB_EQUIPMENT}
    engine = WifiEngine(Placement("b", "s", "d"), PresenceRules(), sink, Background(6, equipment),
                        state=WifiState(tmp_path / "w.db"))
    with caplog.at_level("DEBUG"):
        for obs in parsed[LAB_DAY.name].observations:
            engine.feed(obs)
        engine.finish()
    keys = {m.device_key for m in sink.messages if isinstance(m, WifiPresence)}
    assert device_key(MEMBER_MAC, SECRET) in keys and not keys & equipment
    assert not leaked("\n".join(m.model_dump_json() for m in sink.messages) + caplog.text, raw_macs)


def test_bad_secret_and_bad_source_are_clear_errors(tmp_path, mosquitto):
    (tmp_path / "short").write_bytes(b"tiny")
    base = ["run", "--store", "s", "--device", "d", "--broker", mosquitto.url]
    weak = subprocess.run(CLI + base + ["--source", str(LAB_DAY), "--brand-secret-file", str(tmp_path / "short")],
                          capture_output=True, text=True, timeout=60)
    assert weak.returncode == 2 and "at least 16 bytes" in weak.stderr
    (tmp_path / "secret").write_bytes(SECRET)
    missing = subprocess.run(CLI + base + ["--source", str(tmp_path / "none.pcap"), "--brand-secret-file", str(tmp_path / "secret")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
