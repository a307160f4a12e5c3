"""Wires the guide screen together and runs Qt's event loop until asked to stop.

Separate from ``cli`` so that only running the screen, not ``instore --help``, loads Qt. Standard
output carries JSON event lines and nothing else: one ``ready`` once the card subscription is
acknowledged (the demo waits for it before sending arrivals), then one ``card_shown`` per card,
from which the demo reads door-to-screen latency. Every log line goes to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from protocol.messages import GuideCard
from protocol.transport import BrokerUrl

log = logging.getLogger(__name__)

#: How often Qt hands control back to Python so SIGINT/SIGTERM handlers can run.
SIGNAL_POLL_MS = 200


@dataclass(frozen=True)
class Options:
    url: BrokerUrl
    brand: str
    store: str
    screen: str
    width: int
    height: int
    screenshot: Path | None = None
    exit_after_s: float | None = None
    assistants: tuple[str, ...] = ()
    store_name: str | None = None
    metrics_port: int | None = None  # Prometheus /metrics (stage timings); None: off
    join_url: str | None = None  # the cloud's join page (…/dash/join.html): visitors get 邀请入会; None: off

    def __post_init__(self) -> None:
        if self.screenshot is not None:  # absolute, whatever directory Qt or a caller moves to
            object.__setattr__(self, "screenshot", Path(self.screenshot).expanduser().resolve())


def print_event(event: dict) -> None:
    print(json.dumps(event), flush=True)


def print_card_shown(card: GuideCard, door_to_screen_ms: float) -> None:
    print_event({
        "event": "card_shown",
        "card_id": card.card_id,
        "member_id": card.member.member_id if card.member else None,
        "visit_id": card.visit_id,
        "door_to_screen_ms": round(door_to_screen_ms, 1),
    })


def announce_ready_once(options: Options) -> Callable[[], None]:
    """A slot printing the ``ready`` line on the first subscription, not after every reconnect."""
    announced = False

    def announce() -> None:
        nonlocal announced
        if not announced:
            announced = True
            print_event({"event": "ready", "brand": options.brand, "store": options.store, "screen": options.screen})

    return announce


def run(options: Options) -> int:
    """Show the screen and follow the store's cards; returns the process exit code."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from kiosk.guide_screen import theme
    from kiosk.guide_screen.feed import HEARTBEAT_S, CardFeed
    from kiosk.guide_screen.screen import GuideScreen
    from kiosk.guide_screen.staff import attach as attach_staff
    from kiosk.guide_screen.tasks import attach as attach_tasks

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setFont(theme.base_font())
    app.setStyleSheet(theme.stylesheet())
    if theme.pick_family() is None:
        log.warning("no CJK font found (tried %s); Chinese text will not render", ", ".join(theme.CJK_FAMILIES))

    portrait = options.height > options.width
    window = GuideScreen(options.store, options.screen, columns=2 if portrait else 4, rows=4 if portrait else 2,
                         assistants=options.assistants, store_name=options.store_name, join_url=options.join_url)
    window.resize(options.width, options.height)
    feed = CardFeed(options.url, options.brand, options.store, options.screen)
    feed.card_received.connect(window.show_card)
    feed.crop_received.connect(window.show_crop)
    feed.erase_received.connect(lambda command: feed.acknowledge(command, window.forget_members(command.member_ids)))
    feed.enrol_received.connect(
        lambda command: feed.answer_enrolment(command, window.crop_for_enrolment(command.arrival_event_id)))
    window.invited.connect(lambda card, token: feed.send_feedback(card, "invited", invitation=token))
    feed.connection_changed.connect(window.set_connected)
    strip = attach_tasks(window)
    feed.task_received.connect(strip.show_task)
    feed.task_done_received.connect(lambda done: strip.done(done.task_id))
    strip.completed.connect(feed.send_task_done)
    if options.assistants:  # the screen's assistants sign in and out on it (上岗/离岗); it shows the store's floor
        staff = attach_staff(window, options.assistants)
        staff.signed.connect(feed.send_staff_sign)
        feed.floor_received.connect(staff.show_floor)
    window.feedback.connect(feed.send_feedback)
    window.card_shown.connect(print_card_shown)
    feed.subscribed.connect(announce_ready_once(options))

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: app.quit())
    poll = QTimer()
    poll.timeout.connect(lambda: None)
    poll.start(SIGNAL_POLL_MS)
    alive = QTimer()  # on the UI thread: a frozen screen stops beating
    alive.timeout.connect(feed.heartbeat)
    alive.start(HEARTBEAT_S * 1000)
    if options.exit_after_s is not None:
        QTimer.singleShot(int(options.exit_after_s * 1000), app.quit)

    from protocol import metrics

    metrics.serve(options.metrics_port)
    feed.start()
    window.show()
    log.info("guide screen for %s/%s (%s) following %s", options.brand, options.store, options.screen, options.url)
    code = app.exec()
    try:
        if options.screenshot is not None:
            app.processEvents()  # quit may come before the last card's layout pass
            code = save_screenshot(window, options.screenshot) or code
    finally:
        feed.stop()
    return code


def save_screenshot(window, path: Path) -> int:
    """Save the window as a PNG; 1 if that failed (the screen itself ran fine)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path), "PNG"):
        log.error("could not save screenshot to %s", path)
        return 1
    log.info("screenshot saved to %s", path)
    return 0
