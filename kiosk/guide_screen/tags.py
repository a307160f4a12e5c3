"""A one-line strip of tag chips that shows as many as fit and a "+N" chip for the rest.

Every card on the guide screen has the same height, so tags get exactly one line: wrapping would
push the recommendations and buttons off the card for members with many or long tags.
"""

from __future__ import annotations

from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QWidget


def _chip(text: str) -> QLabel:
    chip = QLabel(text)
    chip.setObjectName("tag")
    return chip


class TagStrip(QWidget):
    def __init__(self, tags: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.setSpacing(8)
        self.chips = [_chip(tag) for tag in tags]
        self.more = _chip("")
        for chip in [*self.chips, self.more]:
            self._row.addWidget(chip)
        self._row.addStretch(1)
        self.more.hide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit(self.width())

    def fit(self, width: int) -> None:
        """Show the longest prefix of tags that fits in ``width`` together with its "+N" chip."""
        spacing = self._row.spacing()
        for chip in [*self.chips, self.more]:
            chip.ensurePolished()
        widths = [chip.sizeHint().width() for chip in self.chips]

        def needed(shown: int) -> int:
            total = sum(widths[:shown]) + spacing * max(0, shown - 1)
            if shown < len(widths):
                self.more.setText(f"+{len(widths) - shown}")
                total += spacing + self.more.sizeHint().width()
            return total

        shown = len(widths)
        while shown > 0 and needed(shown) > width:
            shown -= 1
        needed(shown)  # leaves the "+N" text matching what is shown
        for index, chip in enumerate(self.chips):
            chip.setVisible(index < shown)
        self.more.setVisible(shown < len(widths))
