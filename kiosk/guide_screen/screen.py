"""The guide big-screen window: a header (store, clock, today's visitors, connection) above a grid
of member cards, newest arrival first.

The window draws what ``Board`` decides; it adds only what needs Qt: timers for the clock and for
taking cards off when they expire, the offline banner, the touch overlays that ask which
assistant claims a member and what the sale came to, and the ``card_shown`` signal that carries
the door-to-screen latency the moment a card is put on screen.

With a ``join_url`` (issue 21, 入会) visitors get a faceless card with 邀请入会: the tap makes a
random token, shows ``join_url#token`` as a QR code and emits ``invited``. The visitor's live crop,
held by the card and never drawn, then waits in memory (``INVITE_HOLD_S`` at most) for the cloud's
enrol command, which comes only if the visitor consented to face recognition on their phone.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import UTC, datetime

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from kiosk.guide_screen import metrics
from kiosk.guide_screen.board import Board, Outcome
from kiosk.guide_screen.card_view import CardView
from kiosk.guide_screen.crops import CropShelf
from kiosk.guide_screen.overlay import AmountKeypad, AssistantPicker, JoinCode
from kiosk.guide_screen.theme import restyle
from protocol.device import FaceCrop
from protocol.messages import GuideCard

log = logging.getLogger(__name__)

WEEKDAYS = "一二三四五六日"
#: The expiry timer aims a little after ``expires_at``; if it still fires early, it re-aims.
EXPIRY_SLACK_MS = 20
#: How long an invited visitor's crop waits for the enrol command: the invitation's life in the cloud
#: (``cloud.arrivals.joining.TTL``); after that nobody can consent to it any more.
INVITE_HOLD_S = 15 * 60


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
    invited = Signal(object, str)  # GuideCard, the invitation's token (邀请入会)

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
        join_url: str | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("guideScreen")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setWindowTitle(f"导购屏 · {store}")
        self.join_url = join_url
        self.board = Board(capacity=columns * rows, visitor_cards=join_url is not None)
        self.columns = columns
        self.views: dict[str, CardView] = {}
        self._cells: dict[str, int] = {}  # card id -> grid cell (row * columns + column), kept while shown
        self.crops = CropShelf()
        #: invited visitors' crops by arrival event id, with when they were invited (monotonic s)
        self._invited: dict[str, tuple[FaceCrop, float]] = {}
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
        self.join = JoinCode(self)
        self.overlays = (self.picker, self.keypad, self.join)

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
        self.visitor_count.setText(str(self.board.visitors_today))
        if outcome is not Outcome.SHOWN:
            self.crops.discard(card.arrival_event_id)  # a visitor's face is never drawn
        if outcome is Outcome.SHOWN:
            self._layout_cards()
        elif outcome is not Outcome.VISITOR:
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
        if view.visitor:
            view.held_crop = crop  # kept for an invitation, never drawn
            return
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
        """Make the grid match the board: views dropped for cards that left, new views for new cards.

        A card keeps its cell while it is on the screen, and a new card takes a free cell (a member
        the first, a visitor card the last): the board's newest-first order used to move every card
        one cell over on each arrival, so Qt laid out and repainted the whole grid for one new card,
        and an assistant reading a card saw it jump. The newest member card is marked instead."""
        wanted = {card.card_id for card in self.board.cards}
        for card_id, old in list(self.views.items()):
            if card_id in wanted:
                continue
            self.grid.removeWidget(old)
            for overlay in self.overlays:
                if overlay.view is old:  # the member left the screen: nothing to answer any more
                    overlay.close_overlay()
            del self.views[card_id], self._cells[card_id]
            old.hide()  # gone now, not at the next deferred-delete pass
            old.deleteLater()
        free = sorted(set(range(self.board.capacity)) - set(self._cells.values()))
        now = utcnow()
        for index, card in enumerate(self.board.cards):
            view = self.views.get(card.card_id)
            if view is None:
                view = CardView(card, claimable=bool(self.assistants), invitable=self.join_url is not None)
                view.feedback.connect(self._on_feedback)
                view.invite_requested.connect(self._invite)
                view.claim_requested.connect(self.picker.ask)
                view.sale_requested.connect(self.keypad.ask)
                view.painted.connect(self._on_painted)
                view.refresh(now)
                crop = self.crops.take(card.arrival_event_id, time.monotonic())
                if crop is not None:
                    self._attach_crop(view, crop)
                self.views[card.card_id] = view
                cell = self._cells[card.card_id] = free.pop(-1 if view.visitor else 0)
                self.grid.addWidget(view, cell // self.columns, cell % self.columns)
                view.show()  # a layout only queues the show; the card must be up before card_shown
            view.set_newest(index == 0)
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

    def _invite(self, view: CardView) -> None:
        """邀请入会: a fresh token in a QR code; the visitor's crop waits for their consent."""
        assert self.join_url is not None  # only invitable cards have the button
        token = secrets.token_urlsafe(16)
        self._prune_invited()
        if view.held_crop is not None:
            self._invited[view.card.arrival_event_id] = (view.held_crop, time.monotonic())
        self.join.ask(view, f"{self.join_url}#{token}")
        self.invited.emit(view.card, token)

    def crop_for_enrolment(self, arrival_event_id: str) -> FaceCrop | None:
        """The cloud's enrol command: the invited visitor joined with face consent. Their crop,
        handed over once and forgotten here; None if it is gone (too old, or never seen)."""
        self._prune_invited()
        held = self._invited.pop(arrival_event_id, None)
        return held[0] if held else None

    def _prune_invited(self) -> None:
        now = time.monotonic()
        for event_id in [e for e, (_, at) in self._invited.items() if now - at > INVITE_HOLD_S]:
            del self._invited[event_id]

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        for overlay in self.overlays:
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
        self._prune_invited()
        self.visitor_count.setText(str(self.board.visitors_today))
        for view in self.views.values():
            view.refresh(now)
