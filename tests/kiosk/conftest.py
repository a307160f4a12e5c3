"""Fixtures for the guide screen: an offscreen QApplication, a paho publisher on the real broker,
and cards with the Chinese content a real store would send."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from protocol import transport
from protocol.messages import GuideCard, LastPurchase, MemberSummary, Recommendation, new_id

BRAND = "demo"
#: What the header shows in the tests' screenshots (docs/ uses them).
STORE_NAME = "上海静安嘉里中心店"

_NOW = datetime.now(UTC)


def _days_ago(days: float) -> datetime:
    return _NOW - timedelta(days=days)


MEMBERS = [
    (
        MemberSummary(
            member_id="m-wangli", name="王丽", title="王女士", tier="黑金会员", visits=11,
            tags=["高价值", "护肤偏好", "复购期", "价格不敏感", "小红书活跃", "周末到店", "敏感肌"],
            lifetime_value=38620, last_visit=_days_ago(21), preferences=["护肤", "香水"],
            last_purchase=LastPurchase(ts=_days_ago(86), items=["修护精华露 50ml", "卸妆油"], amount=1560),
        ),
        [
            Recommendation(sku="SK-1001", name="修护精华露 50ml", price=1280, reason="上次购买已 86 天，接近复购周期"),
            Recommendation(sku="SK-2040", name="保湿面霜 秋冬款", price=680, reason="同系列，敏感肌适用"),
            Recommendation(sku="SK-3300", name="旅行装套盒", price=299, reason="会员积分可抵扣"),
        ],
        "王女士您好，欢迎回来！您上次选的修护精华差不多该用完了，这次新到的同系列面霜很适合秋冬，我带您试一下？",
        0.91,
    ),
    (
        MemberSummary(
            member_id="m-zhangwei", name="张伟", title="张先生", tier="金卡", visits=3,
            tags=["商务男士", "剃须护理", "线上下单"],
            lifetime_value=2310, last_visit=_days_ago(45), preferences=["男士护理"],
            last_purchase=LastPurchase(ts=_days_ago(30), items=["须后舒缓水"], amount=218),
        ),
        [
            Recommendation(sku="SK-5010", name="男士洁面乳", price=158, reason="天猫购物车里放了 2 周"),
            Recommendation(sku="SK-5022", name="须后舒缓水", price=218, reason="与洁面乳搭配购买率高"),
        ],
        "张先生您好，您在天猫收藏的洁面乳店里有现货，可以先试用一下。",
        0.78,
    ),
    (
        MemberSummary(
            member_id="m-liuyang", name="刘洋", title="刘小姐", tier="银卡", visits=0,
            tags=["新会员", "彩妆偏好"],
            lifetime_value=0, preferences=["彩妆"],
        ),
        [Recommendation(sku="SK-7001", name="丝绒口红 #316", price=320, reason="抖音直播间浏览过")],
        "刘小姐您好，欢迎第一次来店里！新会员今天购物可享 9 折。",
        0.66,
    ),
    (
        MemberSummary(
            member_id="m-chenjing", name="陈静", title="陈阿姨", tier="钻石会员", visits=42,
            tags=["沉睡唤醒", "抗老", "高客单"],
            lifetime_value=126800, last_visit=_days_ago(210), preferences=["抗老", "护肤", "香水"],
            last_purchase=LastPurchase(ts=_days_ago(212), items=["紧致抗皱面霜", "眼部精华"], amount=4360),
        ),
        [
            Recommendation(sku="SK-8800", name="紧致抗皱眼霜", price=1580, reason="最常购买品类的新品"),
            Recommendation(sku="SK-8801", name="抗老精华套装", price=2680, reason="生日月专享礼遇"),
        ],
        "陈阿姨好久不见！这个月是您的生日月，给您准备了专属礼遇。您常用的紧致系列出了新款眼霜，质地比之前更清爽，我先给您在手背上试一下吧？",
        0.84,
    ),
    (
        MemberSummary(
            member_id="m-zhaolei", name="赵磊", title="赵先生", tier="普通会员", visits=1,
            tags=["价格敏感", "促销响应"],
        ),
        [Recommendation(sku="SK-9100", name="洗护两件套", price=99, reason="正在参加满减活动")],
        "赵先生您好，今天洗护两件套满 199 减 50，很划算。",
        0.72,
    ),
]


@dataclass
class Cards:
    """Builds GuideCards for one store; ``age_s`` is how long ago the member came through the door."""

    store: str
    _ids = count()

    def member(self, index: int = 0, *, age_s: float = 0.3, ttl_s: float = 120, **overrides) -> GuideCard:
        member, recommendations, script, confidence = MEMBERS[index % len(MEMBERS)]
        content = dict(member=member, recommendations=recommendations, script=script, confidence=confidence)
        return self._card(age_s, ttl_s, **(content | overrides))

    def visitor(self, *, age_s: float = 0.3, ttl_s: float = 120, **overrides) -> GuideCard:
        return self._card(age_s, ttl_s, **(dict(member=None, confidence=0.21) | overrides))

    def _card(self, age_s: float, ttl_s: float, **fields) -> GuideCard:
        now = datetime.now(UTC)
        defaults = dict(
            card_id=new_id(),
            ts=now,
            visit_id=f"visit-{next(self._ids):04d}-{new_id()[:8]}",
            arrival_event_id=new_id(),
            brand=BRAND,
            store=self.store,
            arrival_ts=now - timedelta(seconds=age_s),
            expires_at=now + timedelta(seconds=ttl_s),
        )
        return GuideCard(**(defaults | fields))


_stores = count()


@pytest.fixture
def store() -> str:
    """A fresh store id per test, so retained states and cards never leak between tests."""
    return f"s{os.getpid()}-{next(_stores)}"


@pytest.fixture
def cards(store: str) -> Cards:
    return Cards(store)


@pytest.fixture(scope="session")
def qapp():
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    from kiosk.guide_screen import theme

    app = QApplication.instance() or QApplication(["kiosk-tests"])
    app.setFont(theme.base_font())
    app.setStyleSheet(theme.stylesheet())
    return app


@pytest.fixture
def wait_until(qapp) -> Callable[..., None]:
    """Pump Qt events (queued signals from paho's thread) until ``predicate`` holds."""

    def wait(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            qapp.processEvents()
            if predicate():
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    return wait


@pytest.fixture
def publisher(mosquitto) -> Iterator:
    """A plain paho client on the real broker, playing the cloud."""
    url = transport.BrokerUrl.parse(mosquitto.url)
    client = transport.make_client(url, f"test-cloud-{new_id()[:8]}")
    transport.start(client, url)
    yield client
    transport.stop(client)



@dataclass
class Running:
    """A guide screen and its feed, wired as ``kiosk.guide_screen.app`` wires them, with what they emitted."""

    screen: object  # GuideScreen (Qt is imported only once the qapp fixture ran)
    feed: object  # CardFeed
    staff: object = None  # StaffStrip, when started with ``staff_strip``
    shown: list = field(default_factory=list)  # (card, door_to_screen_ms)
    subscribed: list = field(default_factory=list)

    def shown_ids(self) -> set[str]:
        return {card.card_id for card, _ in self.shown}


@pytest.fixture
def start_kiosk(qapp, mosquitto, store, wait_until):
    """Starts an in-process guide screen on the real broker; torn down on the GUI thread."""
    import shiboken6

    from kiosk.guide_screen.feed import CardFeed
    from kiosk.guide_screen.screen import GuideScreen
    from kiosk.guide_screen.staff import attach as attach_staff

    started: list[Running] = []

    def start(
        *, assistants: tuple[str, ...] = (), size: tuple[int, int] = (1920, 1080), url: str | None = None,
        join_url: str | None = None, screen_id: str = "main", staff_strip: bool = False,
    ) -> Running:
        portrait = size[1] > size[0]
        screen = GuideScreen(store, screen_id, columns=2 if portrait else 4, rows=4 if portrait else 2,
                             assistants=assistants, store_name=STORE_NAME, join_url=join_url)
        screen.resize(*size)
        feed = CardFeed(transport.BrokerUrl.parse(url or mosquitto.url), BRAND, store, screen_id)
        running = Running(screen, feed)
        feed.card_received.connect(screen.show_card)
        feed.crop_received.connect(screen.show_crop)
        feed.connection_changed.connect(screen.set_connected)
        feed.subscribed.connect(lambda: running.subscribed.append(True))
        screen.feedback.connect(feed.send_feedback)
        screen.invited.connect(lambda card, token: feed.send_feedback(card, "invited", invitation=token))
        feed.enrol_received.connect(
            lambda command: feed.answer_enrolment(command, screen.crop_for_enrolment(command.arrival_event_id)))
        screen.card_shown.connect(lambda card, ms: running.shown.append((card, ms)))
        if staff_strip:  # before the feed starts, as the app does: the retained floor comes at the subscription
            running.staff = attach_staff(screen, assistants)
            running.staff.signed.connect(feed.send_staff_sign)
            feed.floor_received.connect(running.staff.show_floor)
        screen.show()
        feed.start()
        started.append(running)
        wait_until(lambda: running.subscribed, what="the card subscription")
        return running

    yield start
    for running in started:
        running.feed.stop()
        # Delete the Qt objects here, on the GUI thread: left to Python's cyclic GC they could be
        # destroyed on whichever thread happens to trigger a collection, e.g. a paho network thread.
        shiboken6.delete(running.feed)
        shiboken6.delete(running.screen)
