"""Assistants sign in (上岗) and out (离岗) on the guide screen (issue 17), through the real broker: one
button per assistant configured for the screen, showing who is on the floor; each tap is a ``StaffSign``
on the screen's staff topic, and a tap while the broker is down is queued and sent when it is back,
as card feedback is. The screenshot goes to artifacts/kiosk_guide_screen_staff.png."""

from __future__ import annotations

import threading
from pathlib import Path

from kiosk.guide_screen.staff import StaffStrip, attach
from protocol import topics
from protocol.codec import decode, encode
from protocol.messages import StaffSign
from tests.kiosk.test_kiosk_actions import ASSISTANTS, BRAND, persistent_broker, qapp_process  # noqa: F401


def _wired(kiosk) -> StaffStrip:
    """The strip wired to the feed as ``kiosk.guide_screen.app`` wires it."""
    strip = attach(kiosk.screen, ASSISTANTS)
    strip.signed.connect(kiosk.feed.send_staff_sign)
    return strip


def test_taps_sign_assistants_in_and_out_and_reach_the_broker(
        start_kiosk, publisher, cards, store, wait_until, artifacts: Path) -> None:
    received: list[tuple[str, StaffSign]] = []
    lock = threading.Lock()

    def on_message(client, userdata, msg) -> None:
        with lock:
            received.append((msg.topic, decode(bytes(msg.payload), StaffSign)))

    publisher.on_message = on_message
    publisher.subscribe(f"{topics.ROOT}/{BRAND}/{store}/guide/+/staff", qos=1)
    kiosk = start_kiosk(assistants=ASSISTANTS)
    strip = _wired(kiosk)
    card = cards.member(0)
    publisher.publish(topics.guide_card(BRAND, store), encode(card), qos=1).wait_for_publish(5)
    wait_until(lambda: card.card_id in kiosk.shown_ids(), what="a card beside the strip")
    for assistant in ("小李", "阿芳", "小李", "小王"):
        strip.buttons[assistant].click()
    wait_until(lambda: len(received) == 4, what="four sign messages")
    assert [(s.assistant, s.action) for _, s in received] == [
        ("小李", "sign_in"), ("阿芳", "sign_in"), ("小李", "sign_out"), ("小王", "sign_in")]
    assert {t for t, _ in received} == {topics.guide_staff(BRAND, store, "main")}
    assert all((s.brand, s.store, s.screen) == (BRAND, store, "main") for _, s in received)
    assert len({s.sign_id for _, s in received}) == 4
    assert strip.on_floor == {"阿芳", "小王"} and kiosk.feed.stats.staff_signs_sent == 4
    assert [strip.buttons[a].text() for a in ASSISTANTS] == ["小李 · 上岗", "小王 · 在岗", "阿芳 · 在岗", "陈店长 · 上岗"]
    assert strip.heading.text().startswith("在岗 2/4")
    qapp_process(wait_until)
    kiosk.screen.grab().save(str(artifacts / "kiosk_guide_screen_staff.png"))


def test_a_sign_in_while_the_broker_is_down_is_sent_when_it_is_back(
        start_kiosk, persistent_broker, wait_until) -> None:  # noqa: F811
    kiosk = start_kiosk(url=persistent_broker.url, assistants=ASSISTANTS)
    strip = _wired(kiosk)
    persistent_broker.stop()
    wait_until(lambda: kiosk.screen.banner.isVisible(), what="the offline banner")
    strip.buttons["陈店长"].click()
    assert kiosk.feed.unacknowledged_feedback() == 1 and strip.on_floor == {"陈店长"}
    persistent_broker.start()
    wait_until(lambda: kiosk.feed.unacknowledged_feedback() == 0, timeout=20, what="the broker's acknowledgement")
