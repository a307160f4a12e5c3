"""Commercial sensor JSON over UDP and HTTP: bad reports are rejected with reasons, the rest kept."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx

from edge.wifi.keys import DeviceKeyer
from edge.wifi.sensorfeed import FeedListener, FeedParser

from .conftest import SECRET

GOOD = {"mac": "dc:fb:48:68:be:e4", "rssi": -60, "ts": 1_700_000_000}
BAD = [
    {"rssi": -60, "ts": 1_700_000_000},                                 # missing mac
    {"mac": "dc:fb:48:68:be", "rssi": -60, "ts": 1_700_000_000},        # bad mac
    {"mac": "01:00:5e:00:00:01", "rssi": -60, "ts": 1_700_000_000},     # multicast mac
    {"mac": "dc:fb:48:68:be:e5", "rssi": 15, "ts": 1_700_000_000},      # absurd rssi
    {"mac": "dc:fb:48:68:be:e6", "rssi": -60},                          # missing ts
    "not an object",
]


def drain(listener: FeedListener, want: int, timeout: float = 5.0) -> list:
    got, deadline = [], time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        obs = next(listener.observations(threading.Event()))
        if obs is not None:
            got.append(obs)
    return got


def test_parser_keeps_good_reports_and_names_each_bad_one():
    parser = FeedParser(DeviceKeyer(SECRET))
    observations = parser.parse(json.dumps({"data": [GOOD, *BAD, {**GOOD, "ts": 1_700_000_000_500}]}).encode())
    assert len(observations) == 2 and observations[1].ts == 1_700_000_000.5
    reasons = list(parser.rejects)
    assert len(reasons) == len(BAD)
    assert reasons[0].startswith("report[1].mac: Field required")
    assert "12 hex digits" in reasons[1] and "multicast" in reasons[2]
    assert reasons[3].startswith("report[4].rssi") and reasons[4].startswith("report[5].ts")
    assert "JSON object" in reasons[5]
    assert not any("dc:fb:48" in r or "01:00:5e" in r for r in reasons)
    assert parser.parse(b"{not json") == [] and "not UTF-8 JSON" in parser.rejects[-1]


def test_udp_feed_survives_bad_datagrams():
    listener = FeedListener("udp", 0, FeedParser(DeviceKeyer(SECRET)), host="127.0.0.1")
    listener.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"\xff\xfe garbage", ("127.0.0.1", listener.port))
            s.sendto(json.dumps(BAD).encode(), ("127.0.0.1", listener.port))
            s.sendto(json.dumps(GOOD).encode(), ("127.0.0.1", listener.port))
        got = drain(listener, 1)
        assert len(got) == 1 and got[0].rssi == -60 and not got[0].randomised
        assert listener.parser.rejected == 1 + len(BAD)
    finally:
        listener.stop()


def test_http_feed_answers_with_reasons():
    listener = FeedListener("http", 0, FeedParser(DeviceKeyer(SECRET)), host="127.0.0.1")
    listener.start()
    try:
        url = f"http://127.0.0.1:{listener.port}/"
        answer = httpx.post(url, content=json.dumps([GOOD, *BAD])).json()
        assert answer["accepted"] == 1 and answer["rejected"] == len(BAD) and len(answer["reasons"]) == len(BAD)
        assert httpx.post(url, content=b"nope").json()["rejected"] == 1
        assert httpx.post(url, content=json.dumps({"data": [GOOD]})).json() == {"accepted": 1, "rejected": 0, "reasons": []}
        assert len(drain(listener, 2)) == 2
    finally:
        listener.stop()
