"""The real ``python -m kiosk`` process against the real broker: JSON lines on stdout, presence,
screenshot on exit, and usage errors for bad options."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from protocol import topics, transport
from protocol.codec import decode
from protocol.messages import DeviceState

REPO = Path(__file__).resolve().parents[2]
BRAND = "demo"


class Kiosk:
    """A kiosk subprocess whose stdout lines are collected by a reader thread."""

    def __init__(self, *args: str) -> None:
        env = os.environ | {"QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk", *args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def events(self, n: int, timeout: float = 10.0) -> list[dict]:
        """The next ``n`` stdout lines, each of which must be a JSON object."""
        deadline = time.monotonic() + timeout
        found = []
        while len(found) < n:
            try:
                found.append(json.loads(self.lines.get(timeout=max(0.01, deadline - time.monotonic()))))
            except queue.Empty:
                raise AssertionError(f"got {len(found)} of {n} lines: {found}\n{self.stop()[1]}") from None
        return found

    def wait_ready(self) -> None:
        """The demo's handshake: the first line says the card subscription is in place."""
        [ready] = self.events(1)
        assert ready["event"] == "ready"

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, stderr = self.proc.communicate(timeout=15)
        return self.proc.returncode, stderr


class States:
    """Subscribes to the kiosk's retained presence topic and remembers what it saw."""

    def __init__(self, url: str, store: str) -> None:
        self.url = transport.BrokerUrl.parse(url)
        self.seen: list[str] = []
        self.client = transport.make_client(self.url, f"test-states-{store}")
        self.client.on_message = lambda c, u, msg: self.seen.append(decode(msg.payload, DeviceState).state)
        transport.subscribe_on_connect(self.client, [(topics.device_state(BRAND, store, "kiosk-main"), 1)])
        transport.start(self.client, self.url)

    def wait_for(self, state: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while state not in self.seen[-1:]:
            assert time.monotonic() < deadline, f"no {state!r} state; saw {self.seen}"
            time.sleep(0.02)


def test_cards_are_printed_and_the_screen_saved(mosquitto, publisher, cards, store, artifacts):
    screenshot = artifacts / "kiosk_guide_screen.png"
    screenshot.unlink(missing_ok=True)
    states = States(mosquitto.url, store)
    kiosk = Kiosk("--store", store, "--broker", mosquitto.url, "--screenshot", str(screenshot),
                  "--store-name", "上海静安嘉里中心店", "--assistant", "小李", "--assistant", "阿芳")
    try:
        kiosk.wait_ready()
        states.wait_for("online")
        sent = [cards.member(i, age_s=60 * (4 - i) + 0.2) for i in range(5)] + [cards.visitor()]
        for card in sent:
            transport.publish(publisher, topics.guide_card(BRAND, store), card).wait_for_publish(5)
        events = kiosk.events(len(sent))
    finally:
        code, stderr = kiosk.stop()
        transport.stop(states.client)
    assert code == 0, stderr
    assert {e["card_id"] for e in events} == {c.card_id for c in sent}
    for event in events:
        assert event["event"] == "card_shown"
        assert set(event) == {"event", "card_id", "member_id", "visit_id", "door_to_screen_ms"}
    by_id = {c.card_id: c for c in sent}
    visitor = next(e for e in events if by_id[e["card_id"]].member is None)
    assert visitor["member_id"] is None
    newest = next(e for e in events if e["member_id"] == sent[4].member.member_id)
    assert 200 <= newest["door_to_screen_ms"] < 5000  # 0.2 s at the door plus the trip here
    assert screenshot.stat().st_size > 50_000
    assert states.seen[-1] == "offline"  # said goodbye before disconnecting


def test_portrait_screen_exits_by_itself(mosquitto, publisher, cards, store, artifacts):
    screenshot = artifacts / "kiosk_guide_screen_portrait.png"
    screenshot.unlink(missing_ok=True)
    states = States(mosquitto.url, store)
    kiosk = Kiosk("--store", store, "--broker", mosquitto.url, "--size", "1080x1920", "--store-name", "上海静安嘉里中心店",
                  "--exit-after", "2", "--screenshot", str(screenshot))
    try:
        kiosk.wait_ready()
        for i in range(5):
            transport.publish(publisher, topics.guide_card(BRAND, store), cards.member(i)).wait_for_publish(5)
        kiosk.events(5)
        kiosk.proc.wait(timeout=10)
    finally:
        code, stderr = kiosk.stop()
        transport.stop(states.client)
    assert code == 0, stderr
    assert screenshot.exists()


def test_a_crashed_screen_is_reported_offline_by_its_last_will(mosquitto, store):
    states = States(mosquitto.url, store)
    kiosk = Kiosk("--store", store, "--broker", mosquitto.url)
    try:
        kiosk.wait_ready()
        states.wait_for("online")
        kiosk.proc.kill()  # no goodbye: the broker publishes the will
        states.wait_for("offline")
    finally:
        kiosk.stop()
        transport.stop(states.client)


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--store", "s1", "--broker", "http://127.0.0.1:1883"], "--broker"),
        (["--store", "s1", "--broker", "mqtt://127.0.0.1:1883?protocol=4"], "--broker"),
        (["--store", "s/1"], "--store"),
        (["--store", "s1", "--size", "big"], "--size"),
        (["--store", "s1", "--assistant", "小李", "--assistant", "小李"], "--assistant"),
    ],
)
def test_bad_options_are_usage_errors(args, complaint):
    result = subprocess.run([sys.executable, "-m", "kiosk", *args], cwd=REPO, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2
    assert complaint in result.stderr
    assert result.stdout == ""
