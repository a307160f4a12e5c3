"""The ESL gateway against the real broker and a fake OpenEPaperLink AP on loopback: the right
HTTP calls, retries while the AP is down, and every bad command counted with its reason."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from kiosk.label_gateway.ap import AccessPoint, flash_pattern_hex
from kiosk.label_gateway.gateway import EslGateway, LabelBook
from kiosk.label_gateway.render import render
from protocol import transport
from protocol.codec import encode
from protocol.esl import ARRIVAL_FLASH, TAG_TYPES, FlashPattern, LabelCommand, LabelProduct
from protocol.messages import new_id, now
from protocol.topics import label_command

REPO = Path(__file__).resolve().parents[2]
BRAND = "demo"
BOOK = LabelBook.model_validate({"labels": [
    {"label": "L-milk", "mac": "00:00:02:1E:A3:B4:C5:D6".replace(":", ""), "tag_type": "epd29_bwr"},
    {"label": "L-cream", "mac": "021EA3B4C5D7", "tag_type": "epd154_bw"},
    {"label": "L-gone", "mac": "0000AAAAAAAAAAAA", "tag_type": "epd42_bwr"},  # not paired with the AP
]})
MILK = LabelProduct(sku="F-2001", name="鲜牛奶 950ml", price=19.8, member_price=13.9, badge="临期7折", qr="SK:F-2001")


def command(store: str, label: str = "L-milk", **fields) -> LabelCommand:
    base = dict(command_id=new_id(), ts=now(), brand=BRAND, store=store, label=label, ttl_s=60, product=MILK)
    return LabelCommand(**(base | fields))


def wait(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def store(request) -> str:
    return f"esl-{request.node.name[-20:].replace('[', '').replace(']', '')}-{new_id()[:6]}"


@pytest.fixture
def publisher(mosquitto):
    url = transport.BrokerUrl.parse(mosquitto.url)
    client = transport.make_client(url, f"test-esl-cloud-{new_id()[:8]}")
    transport.start(client, url)
    yield client
    transport.stop(client)


def send(client, cmd: LabelCommand | bytes, store: str | None = None, label: str | None = None) -> None:
    if isinstance(cmd, LabelCommand):
        topic, payload = label_command(BRAND, cmd.store, cmd.label), encode(cmd)
    else:
        topic, payload = label_command(BRAND, store, label), cmd
    client.publish(topic, payload, qos=1).wait_for_publish(5)


def start_gateway(mosquitto, store: str, ap_url: str) -> EslGateway:
    gateway = EslGateway(transport.BrokerUrl.parse(mosquitto.url), BRAND, store, AccessPoint(ap_url, timeout_s=2),
                         BOOK, backoff_max_s=0.5)
    gateway.start()
    assert gateway.subscribed.wait(5)
    return gateway


def test_a_command_draws_the_label_and_flashes_it(mosquitto, publisher, store, fake_ap, caplog):
    gateway = start_gateway(mosquitto, store, fake_ap.url)
    try:
        with caplog.at_level("INFO", logger="kiosk.label_gateway.gateway"):
            send(publisher, command(store, flash=ARRIVAL_FLASH, reason="王女士到店，推荐商品"))
            wait(lambda: gateway.stats.flashed == 1, what="the flash")
    finally:
        gateway.stop()
    assert fake_ap.errors == []
    [upload] = fake_ap.uploads
    assert upload.mac == "0000021EA3B4C5D6" and upload.dither == "0"
    assert upload.image.size == (296, 128)
    inks = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]])
    got = np.asarray(upload.image.convert("RGB")).astype(int)
    nearest = np.argmin(((got[:, :, None, :] - inks) ** 2).sum(-1), axis=-1)
    assert np.array_equal(nearest, np.asarray(render(TAG_TYPES["epd29_bwr"], MILK)))
    [flash] = fake_ap.flashes
    assert flash.mac == "0000021EA3B4C5D6" and flash.pattern == flash_pattern_hex(ARRIVAL_FLASH)
    assert any("flashing label L-milk" in r.getMessage() and "王女士到店" in r.getMessage() for r in caplog.records)


def test_the_flash_pattern_is_openepaperlinks_12_bytes():
    pattern = FlashPattern(color="red", flashes=3, interval_ms=200, repeats=5, brightness=16)
    assert flash_pattern_hex(pattern) == "F1E023000000000000000400"


def test_while_the_ap_is_down_the_gateway_retries_and_delivers(mosquitto, publisher, store, ap_port_unstarted):
    ap = ap_port_unstarted
    gateway = start_gateway(mosquitto, store, ap.url)
    try:
        send(publisher, command(store, label="L-cream", product=MILK.model_copy(update={"badge": None})))
        wait(lambda: gateway.stats.retries >= 2, what="retries against the dead AP")
        ap.busy = 1  # comes up busy ("Come back later") once, then takes it
        ap.start()
        wait(lambda: gateway.stats.drawn == 1, what="the label after the AP came back")
    finally:
        gateway.stop()
    [upload] = ap.uploads
    assert upload.mac == "0000021EA3B4C5D7" and upload.image.size == (152, 152)
    assert dict(gateway.stats.rejected) == {}


def test_bad_commands_are_counted_with_a_reason_and_the_gateway_carries_on(mosquitto, publisher, store, fake_ap):
    gateway = start_gateway(mosquitto, store, fake_ap.url)
    try:
        good = json.loads(encode(command(store)))
        send(publisher, b"\x00not json", store, "L-milk")
        send(publisher, json.dumps(good | {"price": 1}).encode(), store, "L-milk")  # unknown field
        send(publisher, json.dumps(good | {"flash": None, "product": None}).encode(), store, "L-milk")
        send(publisher, encode(command(store, label="L-cream")), store, "L-milk")  # topic says another label
        send(publisher, command(store, label="L-unknown"))
        send(publisher, command(store, label="L-gone"))  # the AP answers "mac not found"
        send(publisher, command(store, ts=now() - timedelta(seconds=120)))  # expired before it arrived
        send(publisher, command(store, label="L-cream", product=MILK.model_copy(update={"qr": "x" * 300})))
        send(publisher, command(store, product=None, flash=FlashPattern()))
        wait(lambda: gateway.stats.flashed == 1, what="the good command after the bad ones")
    finally:
        gateway.stop()
    assert dict(gateway.stats.rejected) == {
        "bad_message": 3, "wrong_topic": 1, "unknown_label": 1, "ap_refused": 1, "expired": 1, "render": 1,
    }
    assert fake_ap.uploads == [] and len(fake_ap.flashes) == 1


def test_bad_gateway_options_are_usage_errors(tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"labels": [{"label": "L1", "mac": "nothex", "tag_type": "epd29_bwr"}]}))
    for args, complaint in (
        (["--store", "s1", "--labels", str(labels), "--ap", "http://127.0.0.1:9"], "--labels"),
        (["--store", "s/1", "--labels", str(labels), "--ap", "http://127.0.0.1:9"], "--store"),
        (["--store", "s1", "--labels", str(labels), "--ap", "127.0.0.1:9"], "--ap"),
    ):
        result = subprocess.run([sys.executable, "-m", "kiosk.label_gateway", "run", *args], cwd=REPO, capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 2, result.stderr
        assert complaint in result.stderr


def test_the_gateway_process_logs_each_flash_and_stops_cleanly(mosquitto, publisher, store, fake_ap, tmp_path):
    import os
    import signal

    labels = tmp_path / "labels.json"
    labels.write_text(BOOK.model_dump_json())
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.label_gateway", "run", "--store", store, "--broker", mosquitto.url,
         "--ap", fake_ap.url, "--labels", str(labels)],
        cwd=REPO, env=os.environ | {"PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        while not any("subscribed to" in line for line in lines):
            line = proc.stderr.readline()
            assert line, f"gateway exited early: {lines}"
            lines.append(line)
        send(publisher, command(store, product=None, flash=ARRIVAL_FLASH, reason="王女士到店"))
        while not any("flashing label L-milk" in line for line in lines):
            line = proc.stderr.readline()
            assert line, f"gateway exited early: {lines}"
            lines.append(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert len(fake_ap.flashes) == 1
    assert [json.loads(line) for line in out.splitlines()] == [
        {"event": "ready", "brand": BRAND, "store": store, "device": "esl-gw"}]  # stdout: the ready line only
