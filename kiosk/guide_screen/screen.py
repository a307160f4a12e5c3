"""The guide big-screen window: a header (store, clock, today's visitors, connection) above a grid
of member cards, newest arrival first.

The window draws what ``Board`` decides; it adds only what needs Qt: timers for the clock and for
taking cards off when they expire, the offline banner, the touch overlays that ask which
assistant claims a member and what the sale came to, and the ``card_shown`` signal that carries
the door-to-screen latency the moment a card is put on screen.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from kiosk.guide_screen import metrics
from kiosk.guide_screen.board import Board, Outcome
from kiosk.guide_screen.card_view import CardView
from kiosk.guide_screen.crops import CropShelf
from kiosk.guide_screen.overlay import AmountKeypad, AssistantPicker
from kiosk.guide_screen.theme import restyle
from protocol.device import FaceCrop
from protocol.messages import GuideCard

log = logging.getLogger(__name__)

WEEKDAYS = "一二三四五六日"
#: The expiry timer aims a little after ``expires_at``; if it still fires early, it re-aims.
EXPIRY_SLACK_MS = 20


def utcnow() -> datetime:
    return datetime.now(UTC)


def _label(text: str, name: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    return label


class GuideScreen(QWidget):
    """The whole screen. Feed it cards with ``show_card`` and connectivity with ``set_connected``."""

    card_shown = Signal(object, float)  # GuideCard, door-to-screen milliseconds (laid out on screen)
    card_drawn = Signal(object, float)  # GuideCard, door-to-screen milliseconds at the card's first paint
    feedback = Signal(object, str, object, object, object)  # GuideCard, FeedbackAction, assistant, amount, receipt

    #: Actions after which the card leaves the screen at once.
    REMOVING = ("not_this_person", "dismissed", "confirmed", "rejected")

    def __init__(
        self,
        store: str,
        screen: str,
        *,
        columns: int,
        rows: int,
        assistants: tuple[str, ...] = (),
        store_name: str | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("guideScreen")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setWindowTitle(f"导购屏 · {store}")
        self.board = Board(capacity=columns * rows)
        self.columns = columns
        self.views: dict[str, CardView] = {}
        self.crops = CropShelf()
        self._ever_connected = False

        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        root.addWidget(self._header(store_name or f"门店 {store}", screen))

        self.banner = _label("", "offlineBanner")
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        root.addWidget(self.banner)

        self.body = QStackedWidget()
        self.body.addWidget(self._empty_hint())
        grid_page = QWidget()
        self.grid = QGridLayout(grid_page)
        self.grid.setContentsMargins(20, 20, 20, 20)
        self.grid.setSpacing(16)
        for column in range(columns):
            self.grid.setColumnStretch(column, 1)
        for row in range(rows):
            self.grid.setRowStretch(row, 1)
        self.body.addWidget(grid_page)
        root.addWidget(self.body, 1)

        self.assistants = assistants
        self.picker = AssistantPicker(self, list(assistants))
        self.picker.chosen.connect(lambda view, name: view.claim(name))
        self.keypad = AmountKeypad(self)
        self.keypad.entered.connect(lambda view, amount, receipt: view.sell(amount, receipt))

        self._expiry = QTimer(self)
        self._expiry.setSingleShot(True)
        self._expiry.setTimerType(Qt.TimerType.PreciseTimer)
        self._expiry.timeout.connect(self._expire)
        self._clock = QTimer(self)
        self._clock.timeout.connect(self._tick)
        self._clock.start(1000)
        self.set_connected(False)
        self._tick()

    def _header(self, store_name: str, screen: str) -> QWidget:
        header = QWidget()
        header.setObjectName("header")
        header.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        row = QHBoxLayout(header)
        row.setContentsMargins(28, 8, 28, 8)

        who = QVBoxLayout()
        who.setSpacing(2)
        who.addWidget(_label(store_name, "storeName"))
        who.addWidget(_label(f"会员到店导购屏 · {screen}", "screenRole"))
        row.addLayout(who)
        row.addStretch(1)

        when = QVBoxLayout()
        when.setSpacing(0)
        self.clock = _label("", "clock")
        self.date = _label("", "date")
        for label in (self.clock, self.date):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            when.addWidget(label)
        row.addLayout(when)
        row.addStretch(1)

        visitors = QVBoxLayout()
        visitors.setSpacing(0)
        self.visitor_count = _label("0", "visitorCount")
        visitor_label = _label("今日访客", "visitorLabel")
        for label in (self.visitor_count, visitor_label):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            visitors.addWidget(label)
        row.addLayout(visitors)
        row.addSpacing(36)

        self.connection = _label("", "connection")
        row.addWidget(self.connection, 0, Qt.AlignmentFlag.AlignVCenter)
        return header

    def _empty_hint(self) -> QWidget:
        hint = _label("等待会员到店…", "emptyHint")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return hint

    # Inputs

    def show_card(self, card: GuideCard) -> None:
        """Slot for the feed: put a member card on screen, or count a visitor."""
        outcome = self.board.offer(card, utcnow())
        if outcome is not Outcome.SHOWN:
            self.crops.discard(card.arrival_event_id)  # a visitor's face is never drawn
        if outcome is Outcome.VISITOR:
            self.visitor_count.setText(str(self.board.visitors_today))
        elif outcome is Outcome.SHOWN:
            self._layout_cards()
        else:
            log.info("card %s not shown: %s", card.card_id, outcome.value)
            return
        shown = utcnow()
        if outcome is Outcome.SHOWN:
            metrics.reached(card, "shown", shown)
        metrics.DOOR_TO_SCREEN.observe((shown - card.arrival_ts).total_seconds())
        self.card_shown.emit(card, (shown - card.arrival_ts).total_seconds() * 1000)

    def _on_painted(self, view: CardView) -> None:
        drawn = utcnow()
        metrics.reached(view.card, "drawn", drawn)
        self.card_drawn.emit(view.card, (drawn - view.card.arrival_ts).total_seconds() * 1000)

    def show_crop(self, crop: FaceCrop) -> None:
        """Slot for the feed: a live face crop goes beside its member card, or waits for that card."""
        view = next((v for v in self.views.values() if v.card.arrival_event_id == crop.arrival_event_id), None)
        if view is None:
            self.crops.keep(crop, time.monotonic())
        else:
            self._attach_crop(view, crop)

    @staticmethod
    def _attach_crop(view: CardView, crop: FaceCrop) -> None:
        if not view.set_live_crop(crop.jpeg):
            log.warning("unreadable face crop for arrival %s from %s", crop.arrival_event_id, crop.device)

    def set_connected(self, connected: bool) -> None:
        """Slot for the feed: the connection pill, and the banner that says cards may be stale."""
        self._ever_connected |= connected
        self.connection.setText("● 已连接" if connected else "● 离线")
        self.connection.setProperty("online", connected)
        restyle(self.connection)
        self.banner.setText(
            "与服务器的连接已断开，正在重连…  新到店会员暂时无法显示"
            if self._ever_connected
            else "正在连接服务器…"
        )
        self.banner.setVisible(not connected)

    # Internals

    def _layout_cards(self) -> None:
        """Make the grid match the board: new views for new cards, old views dropped, reordered."""
        wanted = {card.card_id for card in self.board.cards}
        for card_id, old in list(self.views.items()):
            self.grid.removeWidget(old)
            if card_id not in wanted:
                for overlay in (self.picker, self.keypad):
                    if overlay.view is old:  # the member left the screen: nothing to answer any more
                        overlay.close_overlay()
                del self.views[card_id]
                old.hide()  # gone now, not at the next deferred-delete pass
                old.deleteLater()
        now = utcnow()
        for index, card in enumerate(self.board.cards):
            view = self.views.get(card.card_id)
            if view is None:
                view = CardView(card, claimable=bool(self.assistants))
                view.feedback.connect(self._on_feedback)
                view.claim_requested.connect(self.picker.ask)
                view.sale_requested.connect(self.keypad.ask)
                view.painted.connect(self._on_painted)
                view.refresh(now)
                crop = self.crops.take(card.arrival_event_id, time.monotonic())
                if crop is not None:
                    self._attach_crop(view, crop)
                self.views[card.card_id] = view
            view.set_newest(index == 0)
            self.grid.addWidget(view, index // self.columns, index % self.columns)
            view.show()  # a layout only queues the show; the card must be up before card_shown
        self.body.setCurrentIndex(1 if self.board.cards else 0)
        self._aim_expiry()

    def _aim_expiry(self) -> None:
        """One timer, always aimed at the card that expires soonest."""
        if not self.board.cards:
            self._expiry.stop()
            return
        soonest = min(card.expires_at for card in self.board.cards)
        self._expiry.start(max(0, int((soonest - utcnow()).total_seconds() * 1000)) + EXPIRY_SLACK_MS)

    def _on_feedback(self, card: GuideCard, action: str, assistant: str | None, amount: float | None,
                     receipt: str | None) -> None:
        if action in self.REMOVING:
            self.board.remove(card.card_id)
            self._layout_cards()
        self.feedback.emit(card, action, assistant, amount, receipt)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        for overlay in (self.picker, self.keypad):
            overlay.setGeometry(self.rect())

    def forget_members(self, member_ids: list[str]) -> int:
        """An erasure: the members' cards leave the screen now; how many did."""
        dropped = self.board.forget(member_ids)
        self._layout_cards()
        return len(dropped)

    def _expire(self) -> None:
        for card in self.board.expire(utcnow()):
            log.info("card %s expired, taken off the screen", card.card_id)
        self._layout_cards()

    def _tick(self) -> None:
        now = utcnow()
        local = now.astimezone()
        self.clock.setText(local.strftime("%H:%M:%S"))
        self.date.setText(f"{local.month}月{local.day}日 周{WEEKDAYS[local.weekday()]}")
        self.board.tick(now)
        self.visitor_count.setText(str(self.board.visitors_today))
        for view in self.views.values():
            view.refresh(now)
