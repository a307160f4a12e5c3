"""The assistant's actions on a card, end to end through the real broker: claim (who), greeted,
served, sold (how much, on which till receipt), not this person, dismissed; and feedback given while the broker is down
is delivered after it comes back."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
import shiboken6

from kiosk.guide_screen.overlay import MAX_RECEIPT_CHARS, AmountKeypad
from protocol import topics, transport
from protocol.codec import decode, encode
from protocol.messages import Feedback, new_id

BRAND = "demo"
ASSISTANTS = ("小李", "小王", "阿芳", "陈店长")


class FeedbackLog:
    """The cloud's side: a subscriber on the screen's feedback topic."""

    def __init__(self, client, store: str) -> None:
        self.received: list[Feedback] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        client.on_message = self._on_message
        client.on_subscribe = lambda *_: self.subscribed.set()
        transport.subscribe_on_connect(client, [(topics.guide_feedback(BRAND, store, "main"), 1)])
        client.subscribe(topics.guide_feedback(BRAND, store, "main"), qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.received.append(decode(msg.payload, Feedback))

    def actions(self) -> list[tuple[str, str, str | None, float | None]]:
        with self.lock:
            return [(f.card_id, f.action, f.assistant, f.amount) for f in self.received]


def publish(client, store: str, card) -> None:
    client.publish(topics.guide_card(BRAND, store), encode(card), qos=1).wait_for_publish(5)


def test_every_action_reaches_the_broker_with_its_assistant_and_amount(
    start_kiosk, publisher, cards, store, wait_until, artifacts
):
    log = FeedbackLog(publisher, store)
    assert log.subscribed.wait(5)
    kiosk = start_kiosk(assistants=ASSISTANTS)
    sold, claimed, dismissed, wrong, untouched = sent = [cards.member(i, age_s=60 * (5 - i) + 1) for i in range(5)]
    for card in sent:
        publish(publisher, store, card)
    wait_until(lambda: len(kiosk.shown) == 5, what="five cards")
    screen, views = kiosk.screen, kiosk.screen.views

    view = views[sold.card_id]
    assert view.claim_button.isVisible() and not view.greet_button.isVisible()
    view.claim_button.click()
    assert screen.picker.isVisible() and "王女士" in screen.picker.title.text()
    screen.picker.buttons["小李"].click()
    assert not screen.picker.isVisible() and view.greet_button.isVisible()
    view.greet_button.click()
    view.serve_button.click()
    view.sell_button.click()
    assert screen.keypad.isVisible() and not screen.keypad.confirm.isEnabled()
    for key in "1280":
        screen.keypad.keys[key].click()
    screen.keypad.receipt_display.click()  # then the till's receipt number, which the till confirms
    assert not screen.keypad.keys["."].isEnabled()
    for key in "2026120500017":
        screen.keypad.keys[key].click()
    assert screen.keypad.text == "1280" and screen.keypad.receipt_display.text() == "小票号 2026120500017"
    qapp_process(wait_until)
    screen.grab().save(str(artifacts / "kiosk_guide_screen_keypad.png"))
    screen.keypad.confirm.click()
    assert view.sell_button.text() == "已成交 ¥1,280" and not view.sell_button.isEnabled()

    views[claimed.card_id].claim_button.click()
    screen.picker.buttons["阿芳"].click()
    views[dismissed.card_id].dismiss_button.click()
    views[wrong.card_id].reject_button.click()
    views[untouched.card_id].sell_button.click()
    screen.keypad.keys["5"].click()
    screen.keypad.findChild(type(screen.keypad.confirm), "overlayButton").click()  # 取消: nothing is sent

    expected = [
        (sold.card_id, "claimed", "小李", None),
        (sold.card_id, "greeted", "小李", None),
        (sold.card_id, "served", "小李", None),
        (sold.card_id, "sold", "小李", 1280.0),
        (claimed.card_id, "claimed", "阿芳", None),
        (dismissed.card_id, "dismissed", None, None),
        (wrong.card_id, "not_this_person", None, None),
    ]
    wait_until(lambda: len(log.actions()) >= len(expected), what="seven feedback messages")
    assert log.actions() == expected
    assert [(f.action, f.receipt) for f in log.received if f.receipt] == [("sold", "2026120500017")]
    assert all(f.screen == "main" and f.store == store for f in log.received)
    assert set(views) == {sold.card_id, claimed.card_id, untouched.card_id}
    assert not screen.keypad.isVisible()
    qapp_process(wait_until)
    screen.grab().save(str(artifacts / "kiosk_guide_screen_actions.png"))


def qapp_process(wait_until) -> None:
    """Let queued layout passes run before a screenshot."""
    deadline = time.monotonic() + 0.3
    wait_until(lambda: time.monotonic() > deadline, what="layout")


def test_an_overlay_closes_when_its_card_leaves_the_screen(start_kiosk, publisher, cards, store, wait_until):
    kiosk = start_kiosk(assistants=ASSISTANTS)
    brief = cards.member(0, ttl_s=1.0)
    publish(publisher, store, brief)
    wait_until(lambda: brief.card_id in kiosk.shown_ids(), what="the card")
    kiosk.screen.views[brief.card_id].claim_button.click()
    assert kiosk.screen.picker.isVisible()
    wait_until(lambda: not kiosk.screen.picker.isVisible(), timeout=3, what="the picker to close on expiry")
    assert kiosk.screen.picker.view is None


def test_keypad_receipt_entry(qapp):
    """The receipt field takes digits only, up to its limit; the amount typed before is kept."""
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    keypad = AmountKeypad(parent)
    for key in "88.5":
        keypad.press(key)
    keypad.select("receipt")
    for key in "00.12⌫3" + "9" * 40:
        keypad.press(key)
    assert keypad.text == "88.5" and keypad.receipt == ("0013" + "9" * 40)[:MAX_RECEIPT_CHARS]
    keypad.select("amount")
    keypad.press("⌫")
    assert keypad.amount() == 88.0 and keypad.confirm.isEnabled()
    shiboken6.delete(parent)


@pytest.mark.parametrize(
    "keys, shown, amount",
    [
        ("0012", "12", 12.0),
        (".5", "0.5", 0.5),
        ("12.345", "12.34", 12.34),
        ("1..2", "1.2", 1.2),
        ("99⌫⌫", "", 0.0),
        ("12345678901", "1234567890", 1234567890.0),
    ],
)
def test_keypad_entry_rules(qapp, keys, shown, amount):
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    keypad = AmountKeypad(parent)
    for key in keys:
        keypad.press(key)
    assert keypad.text == shown and keypad.amount() == amount
    assert keypad.confirm.isEnabled() == (amount > 0)
    shiboken6.delete(parent)


@pytest.fixture
def persistent_broker(tmp_path):
    """A Mosquitto of this test's own that keeps sessions across a restart, so the test's
    subscriber (the cloud) cannot miss what the screen sends the moment the broker is back.

    Started as root, Mosquitto drops to its own user, which cannot write into pytest's private
    tmp_path: the session file goes to a world-writable directory of its own.
    """
    import tempfile

    from tests.conftest import Mosquitto

    store_dir = Path(tempfile.mkdtemp(prefix="instore-mosquitto-"))
    store_dir.chmod(0o777)
    broker = Mosquitto(tmp_path)
    broker.config.write_text(broker.config.read_text().replace(
        "persistence false", f"persistence true\npersistence_location {store_dir}/"))
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(store_dir, ignore_errors=True)


def persistent_subscriber(broker, store: str):
    """The cloud's feedback consumer with a session that outlives the broker restart."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"cloud-{new_id()[:8]}", protocol=mqtt.MQTTv5)
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    log = FeedbackLog(client, store)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 600
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=properties)
    client.loop_start()
    assert log.subscribed.wait(5)
    return client, log


def test_feedback_given_while_the_broker_is_down_is_sent_when_it_is_back(
    start_kiosk, persistent_broker, cards, store, wait_until
):
    client, log = persistent_subscriber(persistent_broker, store)
    kiosk = start_kiosk(url=persistent_broker.url)
    cloud = transport.make_client(transport.BrokerUrl.parse(persistent_broker.url), f"cloud-pub-{new_id()[:8]}")
    transport.start(cloud, transport.BrokerUrl.parse(persistent_broker.url))
    first, second = cards.member(0), cards.member(1)
    try:
        publish(cloud, store, first)
        publish(cloud, store, second)
        wait_until(lambda: len(kiosk.shown) == 2, what="two cards")
        persistent_broker.stop()
        wait_until(lambda: kiosk.screen.banner.isVisible(), what="the offline banner")
        kiosk.screen.views[first.card_id].greet_button.click()
        kiosk.screen.views[second.card_id].reject_button.click()
        assert kiosk.feed.unacknowledged_feedback() == 2
        persistent_broker.start()
        wait_until(lambda: len(log.actions()) == 2, timeout=20, what="the queued feedback after the restart")
        assert [(card, action) for card, action, _, _ in log.actions()] == [
            (first.card_id, "greeted"), (second.card_id, "not_this_person")
        ]
        wait_until(lambda: kiosk.feed.unacknowledged_feedback() == 0, what="the broker's acknowledgements")
        # The cloud reconnects too (its own restart): cards keep coming to the same screen.
        third = cards.member(2)
        wait_until(lambda: cloud.is_connected(), timeout=20, what="the cloud publisher to reconnect")
        wait_until(lambda: len(kiosk.subscribed) >= 2, timeout=20, what="the screen to resubscribe")
        publish(cloud, store, third)
        wait_until(lambda: third.card_id in kiosk.shown_ids(), what="a card after the restart")
    finally:
        transport.stop(cloud)
        client.disconnect()
        client.loop_stop()
