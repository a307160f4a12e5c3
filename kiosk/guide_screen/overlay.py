"""Full-screen touch dialogs on the guide screen: who claims a member, how much they spent (and on
which till receipt), and the QR code that invites a visitor to join (入会).

Not QDialogs: a kiosk has no window manager worth the name, and a modal top-level window can
open behind the full-screen app or on the wrong screen. An overlay is a child of the guide
screen that dims it and takes every touch until answered or cancelled, and it is torn down when
its card leaves the screen (expired, replaced), so nobody can claim a member who is gone.
"""

from __future__ import annotations

import io
from typing import Literal

import segno
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from kiosk.guide_screen.card_view import CardView
from kiosk.guide_screen.theme import restyle

#: Longest amount the keypad accepts, in characters (digits and one decimal point): up to ¥9,999,999.99.
MAX_AMOUNT_CHARS = 10
#: Longest receipt number the keypad accepts (the protocol allows 64; tills print 10-24 digits).
MAX_RECEIPT_CHARS = 32

Field = Literal["amount", "receipt"]


def touch_button(text: str, name: str, role: str = "") -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setProperty("role", role)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return button


class Overlay(QWidget):
    """A dimmed layer over the whole screen with one centred panel; ``view`` is the card it is about."""

    closed = Signal()

    def __init__(self, parent: QWidget, title: str) -> None:
        super().__init__(parent)
        self.setObjectName("overlay")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.view: CardView | None = None
        outer = QVBoxLayout(self)
        outer.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.panel = QFrame()
        self.panel.setObjectName("overlayPanel")
        outer.addWidget(self.panel, 0, Qt.AlignmentFlag.AlignCenter)
        self.body = QVBoxLayout(self.panel)
        self.body.setContentsMargins(36, 28, 36, 28)
        self.body.setSpacing(18)
        self.title = QLabel(title)
        self.title.setObjectName("overlayTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.addWidget(self.title)
        self.hide()

    def open_for(self, view: CardView, title: str) -> None:
        self.view = view
        self.title.setText(title)
        parent = self.parentWidget()
        if parent is not None:  # an overlay always sits on the screen it covers
            self.setGeometry(parent.rect())
        self.raise_()
        self.show()

    def close_overlay(self) -> None:
        self.view = None
        self.hide()
        self.closed.emit()

    def cancel_row(self, *buttons: QPushButton) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(18)
        cancel = touch_button("取消", "overlayButton", "secondary")
        cancel.clicked.connect(self.close_overlay)
        row.addWidget(cancel, 1)
        for button in buttons:
            row.addWidget(button, 1)
        return row


class AssistantPicker(Overlay):
    """"谁来接待？": one big button per assistant configured for this screen."""

    chosen = Signal(object, str)  # CardView, assistant name

    def __init__(self, parent: QWidget, assistants: list[str]) -> None:
        super().__init__(parent, "")
        grid = QGridLayout()
        grid.setSpacing(18)
        self.buttons: dict[str, QPushButton] = {}
        for index, name in enumerate(assistants):
            button = touch_button(name, "pickButton")
            button.clicked.connect(lambda _=False, n=name: self._choose(n))
            grid.addWidget(button, index // 3, index % 3)
            self.buttons[name] = button
        self.body.addLayout(grid)
        self.body.addLayout(self.cancel_row())

    def ask(self, view: CardView) -> None:
        self.open_for(view, f"谁来接待 {view.addressed_as}？")

    def _choose(self, name: str) -> None:
        view = self.view
        self.close_overlay()
        if view is not None:
            self.chosen.emit(view, name)


class AmountKeypad(Overlay):
    """A big numeric keypad for a sale: the amount, and the till's receipt number if the assistant
    has it. Tapping a field chooses which one the keys type into; confirm stays disabled until
    there is an amount. The receipt number is optional (the sale may still be at the till), but
    with it the till's order confirms this sale for this assistant (``cloud.arrivals.till``)
    instead of leaving it a typed claim."""

    entered = Signal(object, float, object)  # CardView, amount in yuan, receipt number or None

    KEYS = ("7", "8", "9", "4", "5", "6", "1", "2", "3", ".", "0", "⌫")

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent, "")
        self.text = ""
        self.receipt = ""
        self.field: Field = "amount"
        self.display = touch_button("", "amountDisplay")
        self.display.clicked.connect(lambda: self.select("amount"))
        self.receipt_display = touch_button("", "receiptDisplay")
        self.receipt_display.clicked.connect(lambda: self.select("receipt"))
        self.body.addWidget(self.display)
        self.body.addWidget(self.receipt_display)
        grid = QGridLayout()
        grid.setSpacing(14)
        self.keys: dict[str, QPushButton] = {}
        for index, key in enumerate(self.KEYS):
            button = touch_button(key, "keyButton")
            button.clicked.connect(lambda _=False, k=key: self.press(k))
            grid.addWidget(button, index // 3, index % 3)
            self.keys[key] = button
        self.body.addLayout(grid)
        self.confirm = touch_button("确认成交", "overlayButton", "primary")
        self.confirm.clicked.connect(self._confirm)
        self.body.addLayout(self.cancel_row(self.confirm))
        self._show()

    def ask(self, view: CardView) -> None:
        self.text = self.receipt = ""
        self.select("amount")
        self.open_for(view, f"{view.addressed_as} · 成交")

    def select(self, field: Field) -> None:
        """The field the keys type into next."""
        self.field = field
        self._show()

    def press(self, key: str) -> None:
        """One key into the chosen field: the amount takes digits, one decimal point and at most
        two decimals; the receipt number digits only; ⌫ deletes."""
        if self.field == "receipt":
            if key == "⌫":
                self.receipt = self.receipt[:-1]
            elif key.isdigit() and len(self.receipt) < MAX_RECEIPT_CHARS:
                self.receipt += key
            self._show()
            return
        text = self.text
        if key == "⌫":
            text = text[:-1]
        elif len(text) >= MAX_AMOUNT_CHARS or ("." in text and (key == "." or len(text.split(".")[1]) >= 2)):
            return
        elif key == ".":
            text = (text or "0") + "."
        else:
            text = key if text == "0" else text + key
        self.text = text
        self._show()

    def amount(self) -> float:
        return float(self.text) if self.text.strip(".") else 0.0

    def _show(self) -> None:
        self.display.setText(f"¥ {self.text or '0'}")
        self.receipt_display.setText(f"小票号 {self.receipt}" if self.receipt else "小票号（选填，收银后输入）")
        for field, widget in (("amount", self.display), ("receipt", self.receipt_display)):
            widget.setProperty("active", field == self.field)
            restyle(widget)
        self.keys["."].setEnabled(self.field == "amount")
        self.confirm.setEnabled(self.amount() > 0)

    def _confirm(self) -> None:
        view, amount, receipt = self.view, self.amount(), self.receipt or None
        if amount <= 0:
            return
        self.close_overlay()
        if view is not None:
            self.entered.emit(view, amount, receipt)


#: The QR code's side on the screen: a phone reads it from an arm's length at 1080p.
JOIN_QR_PX = 360


def qr_pixmap(text: str, side_px: int = JOIN_QR_PX) -> QPixmap:
    """``text`` as a QR code (error correction M, the 4-module quiet zone), scaled by whole modules."""
    qr = segno.make(text, error="m", micro=False)
    modules = qr.symbol_size(scale=1, border=4)[0]
    out = io.BytesIO()
    qr.save(out, kind="png", scale=max(1, side_px // modules), border=4)
    pixmap = QPixmap()
    pixmap.loadFromData(out.getvalue(), "PNG")
    return pixmap


class JoinCode(Overlay):
    """邀请入会: the join page's address with this invitation's token, as a QR code for the
    customer's phone. Closed by the assistant, or by itself when the card leaves the screen (the
    visitor joined and their member card took its place, or the card expired)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent, "")
        self.code = QLabel()
        self.code.setObjectName("joinCode")
        self.code.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.addWidget(self.code)
        hint = QLabel("请顾客用手机扫码：成为会员、选择是否接收消息、是否开启人脸识别，各自独立。\n"
                      "不开启人脸识别，出示会员码即可享受同样服务。")
        hint.setObjectName("joinHint")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setWordWrap(True)
        self.body.addWidget(hint)
        done = touch_button("关闭", "overlayButton", "secondary")
        done.clicked.connect(self.close_overlay)
        self.body.addWidget(done)
        self.url = ""

    def ask(self, view: CardView, url: str) -> None:
        self.url = url
        self.code.setPixmap(qr_pixmap(url))
        self.open_for(view, "扫码入会")
