"""The guide screen in-process (offscreen Qt) against the real broker: cards published with paho
arrive through the feed's thread and end up as widgets, or deliberately do not."""

from __future__ import annotations

import json
import threading

import pytest
import shiboken6

from kiosk.guide_screen.card_view import CardView
from kiosk.guide_screen.elided import ElidedLabel
from kiosk.guide_screen.tags import TagStrip
from protocol import topics, transport
from protocol.codec import decode, encode
from protocol.messages import Feedback, GuideCard

BRAND = "demo"


@pytest.fixture
def kiosk(start_kiosk):
    return start_kiosk()


def publish(client, store: str, payload, screen: str = topics.ALL_SCREENS) -> None:
    data = payload if isinstance(payload, bytes) else encode(payload)
    client.publish(topics.guide_card(BRAND, store, screen), data, qos=1).wait_for_publish(5)


def texts(widget) -> list[str]:
    from PySide6.QtWidgets import QLabel, QPushButton

    labels = [w.full_text if isinstance(w, ElidedLabel) else w.text() for w in widget.findChildren(QLabel)]
    return labels + [b.text() for b in widget.findChildren(QPushButton)]


def test_member_card_is_shown_in_chinese_and_a_visitor_only_counted(kiosk, publisher, cards, store, wait_until):
    member, visitor = cards.member(0), cards.visitor()
    assert kiosk.screen.visitor_count.text() == "0"
    publish(publisher, store, member)
    publish(publisher, store, visitor)
    wait_until(lambda: len(kiosk.shown) == 2, what="both cards")

    assert kiosk.screen.visitor_count.text() == "1"
    views = kiosk.screen.findChildren(CardView)
    assert [v.card.card_id for v in views] == [member.card_id]  # no widget for the visitor at all
    shown = texts(views[0])
    for expected in ("王女士", "黑金会员", "匹配 91%", "高价值", "修护精华露 50ml", "上次购买已 86 天，接近复购周期"):
        assert expected in shown
    assert any(t.startswith("话术：王女士您好") for t in shown)
    assert kiosk.screen.body.currentIndex() == 1  # the grid, not the "waiting" hint
    for _, door_to_screen_ms in kiosk.shown:
        assert 300 <= door_to_screen_ms < 5000  # arrived 0.3 s "ago" at the door


def test_expired_cards_never_show_and_shown_cards_leave_when_they_expire(kiosk, publisher, cards, store, wait_until):
    stale, brief, lasting = cards.member(0, ttl_s=-1), cards.member(1, ttl_s=1.0), cards.member(2)
    for card in (stale, brief, lasting):
        publish(publisher, store, card)
    wait_until(lambda: lasting.card_id in kiosk.shown_ids(), what="the lasting card")
    assert stale.card_id not in kiosk.shown_ids()
    assert brief.card_id in kiosk.screen.views
    wait_until(lambda: brief.card_id not in kiosk.screen.views, timeout=3, what="the brief card to expire")
    assert list(kiosk.screen.views) == [lasting.card_id]


def test_bad_payloads_are_counted_and_the_screen_keeps_working(kiosk, publisher, cards, store, wait_until):
    wrong_version = json.loads(encode(cards.member(0))) | {"v": 2}
    extra_field = json.loads(encode(cards.member(0))) | {"face_url": "http://x/face.jpg"}
    other_store = cards.member(0, store="elsewhere")
    for payload in (b"\xff not json", json.dumps(wrong_version).encode(), json.dumps(extra_field).encode(),
                    encode(other_store)):
        publish(publisher, store, payload)
    good = cards.member(1)
    publish(publisher, store, good)
    wait_until(lambda: good.card_id in kiosk.shown_ids(), what="the good card")
    assert kiosk.feed.stats.rejected == 4
    assert kiosk.shown_ids() == {good.card_id}


def test_only_cards_for_this_screen_or_all_screens(kiosk, publisher, cards, store, wait_until):
    elsewhere, mine = cards.member(0), cards.member(1)
    publish(publisher, store, elsewhere, screen="door2")
    publish(publisher, store, mine, screen="main")
    wait_until(lambda: mine.card_id in kiosk.shown_ids(), what="this screen's card")
    assert elsewhere.card_id not in kiosk.shown_ids()
    assert kiosk.feed.stats.for_other_screen == 1


def test_buttons_send_feedback_and_not_this_person_removes_the_card(kiosk, publisher, cards, store, wait_until):
    received: list[Feedback] = []
    got = threading.Event()

    def on_message(client, userdata, msg):
        received.append(decode(msg.payload, Feedback))
        got.set()

    publisher.on_message = on_message
    publisher.subscribe(topics.guide_feedback(BRAND, store, "main"), qos=1)
    first, second = cards.member(0), cards.member(1)
    publish(publisher, store, first)
    publish(publisher, store, second)
    wait_until(lambda: len(kiosk.shown) == 2, what="two cards")

    kiosk.screen.views[first.card_id].greet_button.click()
    kiosk.screen.views[second.card_id].reject_button.click()
    wait_until(lambda: len(received) == 2, what="two feedback messages")
    assert {(f.card_id, f.action) for f in received} == {
        (first.card_id, "greeted"), (second.card_id, "not_this_person")
    }
    assert all(f.visit_id in (first.visit_id, second.visit_id) and f.screen == "main" for f in received)
    assert list(kiosk.screen.views) == [first.card_id]
    assert not kiosk.screen.views[first.card_id].greet_button.isEnabled()


def test_offline_banner_follows_the_broker(kiosk, mosquitto, publisher, cards, store, wait_until, artifacts):
    shown_before = cards.member(0)
    publish(publisher, store, shown_before)
    wait_until(lambda: shown_before.card_id in kiosk.shown_ids(), what="a card before the outage")
    kiosk.screen.views[shown_before.card_id].greet_button.click()
    assert kiosk.screen.banner.isHidden()
    assert kiosk.screen.connection.text() == "● 已连接"
    try:
        mosquitto.stop()
        wait_until(lambda: kiosk.screen.banner.isVisible(), what="the offline banner")
        assert "断开" in kiosk.screen.banner.text()
        assert kiosk.screen.connection.text() == "● 离线"
        kiosk.screen.grab().save(str(artifacts / "kiosk_guide_screen_offline.png"))
    finally:
        mosquitto.start()
    wait_until(lambda: kiosk.screen.banner.isHidden(), timeout=15, what="the banner to clear")
    # Subscribed again after the reconnect: a new card still reaches the screen.
    url = transport.BrokerUrl.parse(mosquitto.url)
    client = transport.make_client(url, f"test-after-restart-{store}")
    transport.start(client, url)
    try:
        card = cards.member(3)
        wait_until(lambda: len(kiosk.subscribed) == 2, what="the subscription after reconnect")
        publish(client, store, card)
        wait_until(lambda: card.card_id in kiosk.shown_ids(), what="a card after the restart")
    finally:
        transport.stop(client)


def test_long_text_is_elided_and_extra_tags_summarised(qapp, cards):
    member = cards.member(0).member.model_copy(update={"tags": [f"标签{i}号很长" for i in range(12)]})
    view = CardView(cards.member(0, member=member, script="欢迎光临" * 100))
    view.show()
    script = next(w for w in view.findChildren(ElidedLabel) if w.objectName() == "script")
    lines_at = {}
    for height in (440, 415, 385):  # a landscape cell, then ever more squeezed (portrait, banner)
        view.resize(458, height)
        qapp.processEvents()
        lines_at[height] = script.text().count("\n") + 1
        assert script.text().endswith("…")
        assert view.greet_button.geometry().bottom() < height  # the buttons stay on the card
    assert lines_at == {440: 2, 415: 1, 385: 1}  # the two-line history above takes its share
    strip = view.findChild(TagStrip)
    shown = sum(chip.isVisible() for chip in strip.chips)
    assert 0 < shown < 12 and strip.more.text() == f"+{12 - shown}"
    shiboken6.delete(view)


def test_card_draws_what_the_cdp_knows(qapp, cards, artifacts):
    """Value tier, lifecycle, points and birthday month (issue 15) when the cloud sends them; an
    older cloud's card without them decodes and draws as before."""
    member = cards.member(0).member.model_copy(update={
        "value_tier": "高价值会员", "lifecycle": "活跃顾客", "points": 1200, "birthday_month": 3,
        "tags": ["VIP", "高价值", "敏感肌"]})
    view = CardView(cards.member(0, member=member))
    view.resize(700, 440)
    view.show()
    qapp.processEvents()
    shown = texts(view)
    assert "高价值会员 · 活跃顾客" in shown
    assert any("第 12 次到店 · 3月生日 · 累计 ¥38,620 · 积分 1,200 · 王丽" in t for t in shown)
    view.grab().save(str(artifacts / "kiosk_card_cdp_facts.png"))
    shiboken6.delete(view)

    old = cards.member(0).model_dump(mode="json")
    for field in ("value_tier", "lifecycle", "points", "birthday_month"):
        old["member"].pop(field, None)
    decoded = GuideCard.model_validate(old)
    assert decoded.member is not None and decoded.member.points is None
    view = CardView(decoded)
    view.show()
    qapp.processEvents()
    assert not any("积分" in t for t in texts(view)) and "高价值会员 · 活跃顾客" not in texts(view)
    shiboken6.delete(view)


def test_cards_keep_their_cells_and_a_new_card_takes_a_freed_one(qapp, cards):
    """Issue 19: a new arrival is laid out and painted in one cell; the cards already on the
    screen stay where the assistants are reading them."""
    from kiosk.guide_screen.screen import GuideScreen

    screen = GuideScreen(cards.store, "main", columns=4, rows=2)
    screen.resize(1920, 1080)
    screen.show()

    def cell(card: GuideCard) -> tuple[int, int]:
        row, column, _, _ = screen.grid.getItemPosition(screen.grid.indexOf(screen.views[card.card_id]))
        return row, column

    first = [cards.member(n, age_s=3 - n * 0.1) for n in range(3)]
    for card in first:
        screen.show_card(card)
    assert [cell(c) for c in first] == [(0, 0), (0, 1), (0, 2)]
    newest = cards.member(3, age_s=2)
    screen.show_card(newest)
    assert [cell(c) for c in first] == [(0, 0), (0, 1), (0, 2)] and cell(newest) == (0, 3)
    assert [bool(screen.views[c.card_id].property("newest")) for c in [*first, newest]] == [False] * 3 + [True]
    assert screen.forget_members([first[1].member.member_id]) == 1
    later = cards.member(4, age_s=1)
    screen.show_card(later)
    assert cell(later) == (0, 1), "the freed cell"
    assert [cell(c) for c in (first[0], first[2], newest)] == [(0, 0), (0, 2), (0, 3)]
    screen.close()
    shiboken6.delete(screen)
