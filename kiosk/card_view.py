"""One member's card on the guide screen: who arrived, how to serve them, and two big buttons.

Read top to bottom in the order an assistant needs it: how to address the member and how sure
the match is, tier and history, tags, what to recommend and why, then what to say. The buttons
are large enough for gloved fingers; "不是本人" (not this person) takes the card away at once,
because showing the wrong member's profile is the worst error this screen can make.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from kiosk.elided import ElidedLabel
from kiosk.tags import TagStrip
from kiosk.theme import restyle
from protocol.messages import GuideCard, MemberSummary, Recommendation

MAX_RECOMMENDATIONS = 2


def confidence_text(confidence: float) -> str:
    """Cosine similarity as the percentage the assistant sees; a negative match reads as 0%."""
    return f"匹配 {round(max(0.0, confidence) * 100)}%"


def visits_text(member: MemberSummary) -> str:
    return "首次到店" if member.visits == 0 else f"第 {member.visits + 1} 次到店"


def age_text(arrival: datetime, now: datetime) -> str:
    minutes = int((now - arrival).total_seconds() // 60)
    return "刚刚进店" if minutes < 1 else f"{minutes} 分钟前进店"


def _label(text: str, name: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    return label


class CardView(QFrame):
    """The widget for one member card; ``feedback`` carries (card, action) to the feed."""

    feedback = Signal(object, str)

    def __init__(self, card: GuideCard, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if card.member is None:
            raise ValueError("visitor cards are counted, never drawn")
        self.card = card
        member = card.member
        self.setObjectName("card")
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 12, 20, 14)
        layout.setSpacing(6)
        layout.addLayout(self._top(member.title or member.name, card.confidence))
        layout.addLayout(self._identity(member))
        if member.tags:
            layout.addWidget(TagStrip(member.tags))
        for reco in card.recommendations[:MAX_RECOMMENDATIONS]:
            layout.addWidget(self._recommendation(reco))
        if card.script:
            layout.addWidget(ElidedLabel(f"话术：{card.script}", "script", max_lines=3))
        layout.addStretch(1)  # buttons stay at the bottom edge, where thumbs expect them
        layout.addLayout(self._buttons())

    def _top(self, title: str, confidence: float) -> QHBoxLayout:
        """Title on the left; match confidence and how long ago they came in on the right."""
        row = QHBoxLayout()
        row.setSpacing(12)
        row.addWidget(ElidedLabel(title, "memberTitle"), 1)
        right = QVBoxLayout()
        right.setSpacing(0)
        self.arrived = _label("", "arrivedAt")
        for label in (_label(confidence_text(confidence), "confidence"), self.arrived):
            label.setAlignment(Qt.AlignmentFlag.AlignRight)
            right.addWidget(label)
        row.addLayout(right)
        return row

    def _identity(self, member: MemberSummary) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(12)
        row.addWidget(_label(member.tier, "tier"))
        row.addWidget(ElidedLabel(f"{member.name} · {visits_text(member)}", "memberName"), 1)
        return row

    def _recommendation(self, reco: Recommendation) -> QWidget:
        box = QFrame()
        box.setObjectName("reco")
        column = QVBoxLayout(box)
        column.setContentsMargins(12, 2, 0, 2)
        column.setSpacing(0)
        top = QHBoxLayout()
        top.addWidget(ElidedLabel(reco.name, "recoName"), 1)
        top.addWidget(_label(f"¥{reco.price:,.0f}", "recoPrice"))
        column.addLayout(top)
        column.addWidget(ElidedLabel(reco.reason, "recoReason"))
        return box

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(12)
        self.greet_button = self._button("已接待", "primary", "greeted")
        self.reject_button = self._button("不是本人", "secondary", "not_this_person")
        row.addWidget(self.greet_button, 3)
        row.addWidget(self.reject_button, 2)
        return row

    def _button(self, text: str, role: str, action: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName("cardButton")
        button.setProperty("role", role)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.clicked.connect(lambda: self._act(action))
        return button

    def _act(self, action: str) -> None:
        if action == "greeted":
            self.greet_button.setText("已接待 ✓")
            self.greet_button.setEnabled(False)
            self.setProperty("greeted", True)
            restyle(self)
        self.feedback.emit(self.card, action)

    def set_newest(self, newest: bool) -> None:
        self.setProperty("newest", newest)
        restyle(self)

    def refresh(self, now: datetime) -> None:
        """Update the "arrived N minutes ago" line; called by the screen's clock."""
        self.arrived.setText(age_text(self.card.arrival_ts, now))
