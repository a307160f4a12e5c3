"""Assistants signing in (上岗) and out (离岗) on the guide screen (issue 17).

A strip along the bottom of the screen has one big button per assistant configured for it, showing
who is on the floor: an assistant coming in taps their name (上岗), and again when they leave (离岗).
Each tap is emitted as ``signed`` (assistant, action, sign id) for the feed to send; the cloud checks the
store's roster against these (``cloud.health.staff_absent``), so an assistant who did not come in is
an alert at their shift's start plus a grace instead of hours later.

The floor is the store's, not the screen's: after every sign it stores, from any screen of the store,
the cloud sends the store's floor (``StaffFloor``, retained, so a screen that starts or reconnects reads
it at once), and ``show_floor`` puts that on the strip. A tap marks its assistant at once and holds the mark
until the floor the cloud sent after storing that sign (``StaffFloor.sign_id``): a floor sent earlier, still
on its way (another tap just before, an ingest with a backlog), would otherwise undo the mark and invite
a second tap that signs them out again. An assistant signed in on another screen shows as on here too,
and a tap here signs them out. The cloud names assistants by the staff file's id and gives their name, so a button
matches whichever of the two the screen was configured with (``--assistant``). At the floor's ``until``
(the end of the store's local day) the strip empties, as the cloud's floor does. Its own module and
styles, like the task strip, so the card screen needs only ``attach``.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from kiosk.guide_screen import theme
from protocol.messages import StaffAction, StaffFloor, new_id, now

_STYLE = f"""
#staffStrip {{ background: {theme.SURFACE}; border-top: 2px solid {theme.SURFACE_RAISED}; }}
#staffHeading {{ font-size: 20px; font-weight: bold; color: {theme.MUTED}; }}
#staffButton {{
    font-size: 22px; font-weight: bold; min-height: 56px; min-width: 150px; border-radius: 12px; padding: 0 18px;
    background: {theme.SURFACE_RAISED}; color: {theme.MUTED}; border: 2px solid #3A4A6B;
}}
#staffButton[on="true"] {{ background: #143D27; color: {theme.GOOD}; border: 2px solid {theme.GOOD}; }}
"""


class StaffStrip(QFrame):
    #: an assistant tapped their name: (assistant, "sign_in" | "sign_out", the sign's id)
    signed = Signal(str, str, str)

    def __init__(self, assistants: tuple[str, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("staffStrip")
        self.setStyleSheet(_STYLE)
        self.on_floor: set[str] = set()
        #: taps the cloud's floor does not show yet: assistant -> (the sign's id, on after it)
        self._held: dict[str, tuple[str, bool]] = {}
        #: the newest floor shown: when the cloud read it, and whom it lists (by id and by name)
        self._floor_ts: datetime | None = None
        self._listed: set[str] = set()
        row = QHBoxLayout(self)
        row.setContentsMargins(28, 10, 28, 10)
        row.setSpacing(14)
        self.heading = QLabel()
        self.heading.setObjectName("staffHeading")
        row.addWidget(self.heading)
        self.buttons: dict[str, QPushButton] = {}
        for assistant in assistants:
            button = QPushButton()
            button.setObjectName("staffButton")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _=False, a=assistant: self.tap(a))
            row.addWidget(button)
            self.buttons[assistant] = button
        row.addStretch(1)
        self._day_over = QTimer(self)  # the cloud's floor holds until its ``until``, then nobody is on it
        self._day_over.setSingleShot(True)
        self._day_over.timeout.connect(self._clear)
        self._render()

    def tap(self, assistant: str) -> None:
        """The assistant's button: sign in if they are off the store's floor, out if on. Marked at once, and
        held until the cloud's floor after this sign."""
        action: StaffAction = "sign_out" if assistant in self.on_floor else "sign_in"
        sign_id = new_id()
        self._held[assistant] = (sign_id, action == "sign_in")
        (self.on_floor.discard if action == "sign_out" else self.on_floor.add)(assistant)
        self._render()
        self.signed.emit(assistant, action, sign_id)

    def show_floor(self, floor: StaffFloor) -> None:
        """The store's floor as the cloud says it: the configured assistants it lists (by id or by name) are
        on, every other one is off, but for taps here it does not show yet; empty again at its ``until``. A floor
        the cloud read before the one shown (two cloud processes publishing out of order) only releases its
        sign's tap, which the newer floor already shows."""
        self._held = {a: held for a, held in self._held.items() if held[0] != floor.sign_id}
        if self._floor_ts is not None and floor.ts < self._floor_ts:
            self._show()
            return
        self._floor_ts = floor.ts
        self._listed = {key for a in floor.assistants for key in (a.assistant, a.name) if key}
        self._show()
        # at once for a floor already past its end (a screen whose clock is ahead, a late retained copy)
        self._day_over.start(max(0, int((floor.until - now()).total_seconds() * 1000)))

    def _show(self) -> None:
        self.on_floor = {assistant for assistant in self.buttons
                         if (self._held[assistant][1] if assistant in self._held else assistant in self._listed)}
        self._render()

    def _clear(self) -> None:
        self.on_floor.clear()
        self._held.clear()
        self._listed.clear()
        self._render()

    def _render(self) -> None:
        self.heading.setText(f"在岗 {len(self.on_floor)}/{len(self.buttons)} · 点名字上岗/离岗")
        for assistant, button in self.buttons.items():
            on = assistant in self.on_floor
            button.setText(f"{assistant} · {'在岗' if on else '上岗'}")
            button.setProperty("on", on)
            theme.restyle(button)


def attach(screen: QWidget, assistants: tuple[str, ...]) -> StaffStrip:
    """Put the strip at the bottom of the screen, under the cards."""
    strip = StaffStrip(assistants, screen)
    layout = screen.layout()
    assert isinstance(layout, QVBoxLayout)
    layout.addWidget(strip)
    return strip
