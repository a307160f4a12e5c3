"""A label that wraps to at most N lines and ends with "…" when the text does not fit.

Cards on the guide screen all have the same size, and a long script or product name must not
push the buttons off the card or be cut mid-glyph. The label asks its layout for up to
``max_lines`` lines but accepts as few as one: when a card is short of height (a portrait grid,
the offline banner) the layout shrinks this label first, and it elides to the lines it got.
Eliding by pixels, not by a character count, keeps that true for any font and screen size.
"""

from __future__ import annotations

from itertools import pairwise

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent, QTextLayout
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    def __init__(self, text: str, name: str, *, max_lines: int = 1, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setObjectName(name)
        self.full_text = text
        self.max_lines = max_lines
        self._wanted_lines = 1
        # Never let the text's natural width widen the card; take the width the layout gives,
        # and any height between one line and the lines the text needs.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Maximum)

    def sizeHint(self) -> QSize:
        return QSize(0, self._height_for(self._wanted_lines))

    def minimumSizeHint(self) -> QSize:
        return QSize(0, self._height_for(1))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        area = self.contentsRect()
        if area.width() <= 0:
            return
        lines = self.wrap(area.width())
        wanted = max(1, min(self.max_lines, len(lines)))
        if wanted != self._wanted_lines:
            self._wanted_lines = wanted
            self.updateGeometry()
        room = max(1, min(wanted, area.height() // self.fontMetrics().lineSpacing()))
        fitted = self.elide(lines, room, area.width())
        if fitted != self.text():
            self.setText(fitted)

    def wrap(self, width: int) -> list[str]:
        """The full text broken into lines no wider than ``width`` pixels, spaces kept."""
        layout = QTextLayout(self.full_text, self.font())
        layout.beginLayout()
        starts: list[int] = []
        while (line := layout.createLine()).isValid():
            line.setLineWidth(width)
            starts.append(line.textStart())
        layout.endLayout()
        return [self.full_text[a:b] for a, b in pairwise([*starts, len(self.full_text)])]

    def elide(self, lines: list[str], room: int, width: int) -> str:
        """At most ``room`` lines; the last one carries the rest of the text, elided."""
        if len(lines) <= room:
            return "\n".join(line.strip() for line in lines)
        rest = "".join(lines[room - 1 :]).strip()
        last = self.fontMetrics().elidedText(rest, Qt.TextElideMode.ElideRight, width)
        return "\n".join([*(line.strip() for line in lines[: room - 1]), last])

    def _height_for(self, lines: int) -> int:
        self.ensurePolished()  # the stylesheet's font size and padding apply from here on
        margins = self.contentsMargins()
        return lines * self.fontMetrics().lineSpacing() + margins.top() + margins.bottom()
