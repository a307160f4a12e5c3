"""One member's card on the guide screen: who arrived, how to serve them, and the actions.

Read top to bottom in the order an assistant needs it: how to address the member and how sure
the match is, tier and history (lifetime spend, last visit, last purchase, favourite categories)
beside the enrolled photo (登记照) and the live face crop from the door (现场) when there are any, tags, what to recommend and
why, then what to say. The buttons
are large enough for gloved fingers. The first one walks through the service in order: claim
(when the screen has assistants configured: which of them takes this member), greeted, served;
"成交" records a sale with its amount at any point; "不是本人" (not this person) takes the card
away at once, because showing the wrong member's profile is the worst error this screen can
make; the round ✕ dismisses a card nobody will act on. Every action becomes one ``Feedback``,
carrying the claiming assistant so the cloud can credit the right person.

A visitor's card (only on a screen that can invite, issue 21) says no more than 新访客 and when they
came in, with 邀请入会: no face, no name. Its live crop is held in the view (``held_crop``), never
drawn, so that it can be enrolled if, and only if, the visitor joins with face consent.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from kiosk.guide_screen.elided import ElidedLabel
from kiosk.guide_screen.tags import TagStrip
from kiosk.guide_screen.theme import restyle
from protocol.device import FaceCrop
from protocol.messages import Candidate, GuideCard, MemberSummary, Recommendation

MAX_RECOMMENDATIONS = 2
#: The live crop's side on the card: big enough to recognise a face from a step away.
CROP_PX = 64


def confidence_text(confidence: float) -> str:
    """Cosine similarity as the percentage the assistant sees; a negative match reads as 0%."""
    return f"匹配 {round(max(0.0, confidence) * 100)}%"


def visits_text(member: MemberSummary) -> str:
    return "首次到店" if member.visits == 0 else f"第 {member.visits + 1} 次到店"


def age_text(arrival: datetime, now: datetime) -> str:
    minutes = int((now - arrival).total_seconds() // 60)
    return "刚刚进店" if minutes < 1 else f"{minutes} 分钟前进店"


def days_ago_text(when: datetime, reference: datetime) -> str:
    """今天 / 昨天 / N 天前 within two months, then the date (local days, like the screen's clock)."""
    then, ref = when.astimezone().date(), reference.astimezone().date()
    days = (ref - then).days
    if days <= 0:
        return "今天"
    if days == 1:
        return "昨天"
    if days < 60:
        return f"{days} 天前"
    return f"{then.month}月{then.day}日" if then.year == ref.year else f"{then.year}年{then.month}月{then.day}日"


def identity_text(member: MemberSummary) -> str:
    """第 12 次到店 · 3月生日 · 累计 ¥38,620 · 积分 1,200 · 王丽: the full name last, it elides first
    (the title says it)."""
    parts = [visits_text(member)]
    if member.birthday_month is not None:  # short and actionable (a birthday treat): before the money
        parts.append(f"{member.birthday_month}月生日")
    if member.lifetime_value is not None:
        parts.append(f"累计 {amount_text(round(member.lifetime_value))}")
    if member.points is not None:
        parts.append(f"积分 {member.points:,}")
    return " · ".join([*parts, member.name])


def standing_text(member: MemberSummary) -> str | None:
    """高价值会员 · 活跃顾客: the CDP's value tier and lifecycle stage, when the cloud sent them."""
    return " · ".join(p for p in (member.value_tier, member.lifecycle) if p) or None


def history_text(member: MemberSummary, arrival: datetime) -> str | None:
    """上次购买 12 天前 修护精华露 50ml、保湿面霜 (¥2,059) · 上次到店 3 天前 · 偏好 护肤/彩妆

    What was bought first, because a squeezed card elides the end. None when the cloud sent none
    of it (an older cloud, or a new member with no history and no declared preferences).
    """
    parts = []
    last = member.last_purchase
    if last is not None:
        items = f" {'、'.join(last.items)}" if last.items else ""
        parts.append(f"上次购买 {days_ago_text(last.ts, arrival)}{items} ({amount_text(round(last.amount, 2))})")
    if member.last_visit is not None:
        parts.append(f"上次到店 {days_ago_text(member.last_visit, arrival)}")
    if member.preferences:
        parts.append("偏好 " + "/".join(member.preferences[:3]))
    return " · ".join(parts) or None


def _show_jpeg(target: QLabel, jpeg_base64: str) -> bool:
    """Draw a base64 JPEG into ``target``, cropped to its square; False if it is unreadable."""
    pixmap = QPixmap()
    try:
        data = base64.b64decode(jpeg_base64, validate=True)
    except (binascii.Error, ValueError):
        return False
    if not pixmap.loadFromData(data, "JPG"):
        return False
    target.setPixmap(pixmap.scaled(CROP_PX, CROP_PX, Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                                   Qt.TransformationMode.SmoothTransformation))
    return True


def _label(text: str, name: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    return label


def amount_text(amount: float) -> str:
    return f"¥{amount:,.0f}" if amount == int(amount) else f"¥{amount:,.2f}"


class CardView(QFrame):
    """The widget for one member card.

    ``feedback`` carries (card, action, assistant, amount, receipt) to the feed; claiming and selling
    need an answer first, so they emit ``claim_requested`` / ``sale_requested`` and the screen calls
    ``claim`` or ``sell`` once the assistant has picked a name or typed the amount (and receipt).
    """

    feedback = Signal(object, str, object, object, object)
    claim_requested = Signal(object)  # this view
    sale_requested = Signal(object)
    invite_requested = Signal(object)  # this view: 邀请入会 on a visitor's card
    #: The card's first paint: the moment it is really on the screen (door to screen ends here).
    painted = Signal(object)  # this view
    _was_painted = False

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if not self._was_painted:
            self._was_painted = True
            self.painted.emit(self)

    def __init__(self, card: GuideCard, parent: QWidget | None = None, *, claimable: bool = False,
                 invitable: bool = False) -> None:
        super().__init__(parent)
        self.visitor = card.member is None and card.candidate is None
        if self.visitor and not invitable:
            raise ValueError("visitor cards are counted, and drawn only where visitors can be invited to join")
        self.card = card
        self.assistant: str | None = None
        self.sold_amount: float | None = None
        #: a visitor's live crop: kept for an invitation, never drawn
        self.held_crop: FaceCrop | None = None
        if self.visitor:
            self._visitor_card()
            return
        if card.member is None:
            assert card.candidate is not None  # checked above
            self._uncertain(card.candidate)
            return
        member = card.member
        self.addressed_as = member.title or member.name
        self.setObjectName("card")
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 10, 20, 12)
        layout.setSpacing(5)
        layout.addLayout(self._top(member.title or member.name, card.confidence))
        layout.addLayout(self._who(member, card.arrival_ts))
        if card.evidence is not None and card.evidence.phone == "present":  # issue 18: the phone helped
            layout.addWidget(ElidedLabel(f"手机佐证 · 综合置信 {card.evidence.fused:.0%}", "evidence"))
        if member.tags:
            layout.addWidget(TagStrip(member.tags))
        for reco in card.recommendations[:MAX_RECOMMENDATIONS]:
            layout.addWidget(self._recommendation(reco))
        if card.script:
            layout.addWidget(ElidedLabel(f"话术：{card.script}", "script", max_lines=3))
        layout.addStretch(1)  # buttons stay at the bottom edge, where thumbs expect them
        layout.addLayout(self._buttons(claimable))

    def _visitor_card(self) -> None:
        """新访客, when they came in, and 邀请入会: nothing about the person, not even the face."""
        self.addressed_as = "新访客"
        self.setObjectName("card")
        self.setProperty("visitor", True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 10, 20, 12)
        layout.setSpacing(5)
        layout.addLayout(self._top("新访客", self.card.confidence, with_confidence=False))
        layout.addWidget(ElidedLabel("尚未入会 · 邀请顾客扫码成为会员，积分与会员价线上线下通用", "memberHistory", max_lines=2))
        layout.addStretch(1)
        self.invite_button = self._button("邀请入会", "primary", "invite")
        row = QHBoxLayout()
        row.addWidget(self.invite_button)
        layout.addLayout(row)

    def _uncertain(self, candidate: Candidate) -> None:
        """Issue 18: "可能是 王女士？请确认", the enrolled photo beside the live crop, and 是 / 不是.
        No name, tier, history, tags, recommendations or script: nothing of the profile until confirmed."""
        self.addressed_as = candidate.title
        self.setObjectName("card")
        self.setProperty("uncertain", True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 10, 20, 12)
        layout.setSpacing(5)
        layout.addLayout(self._top(candidate.prompt, self.card.confidence))
        row = QHBoxLayout()
        row.setSpacing(12)
        row.addWidget(ElidedLabel("对照登记照与现场照片，确认是否本人", "memberHistory", max_lines=2), 1)
        self.enrolled_photo, self.enrolled_photo_image = self._photo_frame("登记照")
        if candidate.enrolled_photo is None or not _show_jpeg(self.enrolled_photo_image, candidate.enrolled_photo):
            self.enrolled_photo.hide()
        row.addWidget(self.enrolled_photo, 0, Qt.AlignmentFlag.AlignTop)
        self.live_crop, self.live_crop_image = self._photo_frame("现场")
        self.live_crop.hide()
        row.addWidget(self.live_crop, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(row)
        layout.addStretch(1)
        buttons = QHBoxLayout()
        buttons.setSpacing(12)
        self.confirm_button = self._button("是", "primary", "confirmed")
        self.deny_button = self._button("不是", "secondary", "rejected")
        buttons.addWidget(self.confirm_button, 3)
        buttons.addWidget(self.deny_button, 2)
        layout.addLayout(buttons)

    def _top(self, title: str, confidence: float, *, with_confidence: bool = True) -> QHBoxLayout:
        """Title on the left; match confidence and how long ago they came in on the right."""
        row = QHBoxLayout()
        row.setSpacing(12)
        row.addWidget(ElidedLabel(title, "memberTitle"), 1)
        right = QVBoxLayout()
        right.setSpacing(0)
        self.arrived = _label("", "arrivedAt")
        shown = [_label(confidence_text(confidence), "confidence")] if with_confidence else []
        for label in (*shown, self.arrived):
            label.setAlignment(Qt.AlignmentFlag.AlignRight)
            right.addWidget(label)
        row.addLayout(right)
        self.dismiss_button = self._button("✕", "dismiss", "dismissed")
        self.dismiss_button.setObjectName("dismissButton")
        row.addWidget(self.dismiss_button, 0, Qt.AlignmentFlag.AlignTop)
        return row

    def _who(self, member: MemberSummary, arrival: datetime) -> QHBoxLayout:
        """Tier and history on the left; the enrolled photo and the live face crop (each hidden without one) on the right."""
        row = QHBoxLayout()
        row.setSpacing(12)
        column = QVBoxLayout()
        column.setSpacing(4)
        column.addLayout(self._identity(member))
        history = history_text(member, arrival)
        if history:
            column.addWidget(ElidedLabel(history, "memberHistory", max_lines=2))
        row.addLayout(column, 1)
        # 登记照 (enrolled, from the cloud's card) beside 现场 (the door's crop): the assistant compares them
        self.enrolled_photo, self.enrolled_photo_image = self._photo_frame("登记照")
        if member.enrolled_photo is None or not _show_jpeg(self.enrolled_photo_image, member.enrolled_photo):
            self.enrolled_photo.hide()
        row.addWidget(self.enrolled_photo, 0, Qt.AlignmentFlag.AlignTop)
        self.live_crop, self.live_crop_image = self._photo_frame("现场")
        self.live_crop.hide()
        row.addWidget(self.live_crop, 0, Qt.AlignmentFlag.AlignTop)
        return row

    @staticmethod
    def _photo_frame(caption_text: str) -> tuple[QFrame, QLabel]:
        """A CROP_PX square picture with its caption underneath; hidden until it has a picture."""
        frame = QFrame()
        frame.setObjectName("liveCrop")
        column = QVBoxLayout(frame)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        image = QLabel()
        image.setFixedSize(CROP_PX, CROP_PX)
        column.addWidget(image)
        caption = _label(caption_text, "liveCropCaption")
        caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column.addWidget(caption)
        return frame, image

    def set_live_crop(self, jpeg_base64: str) -> bool:
        """Show the door camera's crop of this arrival so the assistant can confirm the person.

        The crop lives only in this widget: it goes when the card goes. False if the JPEG is unreadable.
        """
        if not _show_jpeg(self.live_crop_image, jpeg_base64):
            return False
        self.live_crop.show()
        return True

    @property
    def has_enrolled_photo(self) -> bool:
        return not self.visitor and self.enrolled_photo.isVisibleTo(self)

    @property
    def has_live_crop(self) -> bool:
        """A live crop drawn on the card (a visitor's held crop is never drawn)."""
        return not self.visitor and self.live_crop.isVisibleTo(self)

    def _identity(self, member: MemberSummary) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(12)
        row.addWidget(_label(member.tier, "tier"))
        standing = standing_text(member)
        if standing:
            row.addWidget(_label(standing, "standing"))
        row.addWidget(ElidedLabel(identity_text(member), "memberName"), 1)
        self.claimed_by = _label("", "claimedBy")
        self.claimed_by.hide()
        row.addWidget(self.claimed_by)
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

    def _buttons(self, claimable: bool) -> QHBoxLayout:
        """[next service step] [成交] [不是本人]; the step slot shows one button at a time."""
        row = QHBoxLayout()
        row.setSpacing(12)
        self.claim_button = self._button("认领", "primary", "claimed")
        self.greet_button = self._button("已接待", "primary", "greeted")
        self.serve_button = self._button("服务完成", "primary", "served")
        self.sell_button = self._button("成交", "sale", "sold")
        self.reject_button = self._button("不是本人", "secondary", "not_this_person")
        for button in (self.claim_button, self.greet_button, self.serve_button):
            row.addWidget(button, 3)
        row.addWidget(self.sell_button, 2)
        row.addWidget(self.reject_button, 2)
        self.claim_button.setVisible(claimable)
        self.greet_button.setVisible(not claimable)
        self.serve_button.hide()
        return row

    def _button(self, text: str, role: str, action: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName("cardButton")
        button.setProperty("role", role)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.clicked.connect(lambda: self._act(action))
        return button

    def _act(self, action: str) -> None:
        if action == "invite":
            self.invite_requested.emit(self)
        elif action == "claimed":
            self.claim_requested.emit(self)
        elif action == "sold":
            self.sale_requested.emit(self)
        else:
            if action == "greeted":
                self._advance(self.greet_button, self.serve_button, "greeted")
            elif action == "served":
                self.serve_button.setText("已服务 ✓")
                self.serve_button.setEnabled(False)
            self._send(action)

    def claim(self, assistant: str) -> None:
        """The assistant picked on the screen takes this member; later actions carry the name."""
        self.assistant = assistant
        self.claimed_by.setText(f"导购 {assistant}")
        self.claimed_by.show()
        self._advance(self.claim_button, self.greet_button, "claimed")
        self._send("claimed")

    def sell(self, amount: float, receipt: str | None = None) -> None:
        """The sale as typed on the keypad; with the till's receipt number the till confirms it."""
        self.sold_amount = amount
        self.sell_button.setText(f"已成交 {amount_text(amount)}")  # the receipt does not fit the button
        self.sell_button.setEnabled(False)
        self.setProperty("sold", True)
        restyle(self)
        self._send("sold", amount, receipt)

    def _advance(self, done: QPushButton, following: QPushButton, state: str) -> None:
        done.setEnabled(False)
        done.hide()
        following.show()
        self.setProperty(state, True)
        restyle(self)

    def _send(self, action: str, amount: float | None = None, receipt: str | None = None) -> None:
        self.feedback.emit(self.card, action, self.assistant, amount, receipt)

    def set_newest(self, newest: bool) -> None:
        """Restyled only when it changes: a restyle repolishes and repaints the card, and the screen
        calls this for every card on every new arrival (only two of them change)."""
        if bool(self.property("newest")) == newest:
            return
        self.setProperty("newest", newest)
        restyle(self)

    def refresh(self, now: datetime) -> None:
        """Update the "arrived N minutes ago" line; called by the screen's clock."""
        self.arrived.setText(age_text(self.card.arrival_ts, now))
