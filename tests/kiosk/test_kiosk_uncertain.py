"""Issue 18: an uncertain card ("可能是 王女士？请确认") is drawn with only the question, the enrolled
photo beside the live crop and 是 / 不是; no name, tier, tags, recommendations or script. It is shown,
not counted as a visitor, and the tap sends confirmed / rejected."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import cv2
import shiboken6

from kiosk.guide_screen.board import Board, Outcome
from kiosk.guide_screen.card_view import CardView
from protocol.messages import Candidate, Evidence
from tests.kiosk.test_kiosk_screen import texts


def _jpeg_b64(path, size: int) -> str:
    image = cv2.imread(str(path))
    h, w = image.shape[:2]
    side = min(h, w)
    square = image[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
    ok, data = cv2.imencode(".jpg", cv2.resize(square, (size, size)))
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def test_an_uncertain_card_asks_and_shows_no_profile(qapp, cards, faces_dir, artifacts):
    candidate = Candidate(member_id="m-wang", title="王女士", prompt="可能是 王女士？请确认",
                          enrolled_photo=_jpeg_b64(faces_dir / "deepface_id01" / "img2.jpg", 112))
    card = cards.visitor(candidate=candidate, confidence=0.47)
    board = Board()
    assert board.offer(card, datetime.now(UTC)) is Outcome.SHOWN and board.visitors_today == 0

    view = CardView(card)
    view.resize(700, 440)
    assert view.set_live_crop(_jpeg_b64(faces_dir / "deepface_id01" / "img4.jpg", 160))
    view.show()
    qapp.processEvents()
    shown = texts(view)
    assert "可能是 王女士？请确认" in shown
    assert view.has_enrolled_photo and view.has_live_crop
    assert {"是", "不是"} <= set(shown)
    assert not any(word in t for t in shown for word in ("话术", "金卡", "到店", "推荐", "成交"))
    view.grab().save(str(artifacts / "kiosk_card_uncertain.png"))

    sent = []
    view.feedback.connect(lambda c, action, *_: sent.append((c.card_id, action)))
    view.confirm_button.click()
    view.deny_button.click()
    assert sent == [(card.card_id, "confirmed"), (card.card_id, "rejected")]
    shiboken6.delete(view)

    member_card = cards.member(0)
    assert board.offer(member_card, datetime.now(UTC)) is Outcome.SHOWN
    assert len(board.forget(["m-wang"])) == 1 and board.cards == [member_card]


def test_a_member_card_raised_by_the_phone_says_so(qapp, cards, artifacts):
    """Issue 18: a face the member's phone confirmed (Wi-Fi fusion) carries the fused posterior; the
    card says 手机佐证 with it, so the assistant knows the face alone was borderline."""
    evidence = Evidence(fused=0.93, phone="present",
                        reasons=["人脸相似度 0.478（门槛 0.491）", "登记手机在店（似然比 9.7，依据 41 次标注到店）"])
    view = CardView(cards.member(0, evidence=evidence, confidence=0.478))
    view.resize(700, 440)
    view.show()
    qapp.processEvents()
    assert "手机佐证 · 综合置信 93%" in texts(view)
    view.grab().save(str(artifacts / "kiosk_card_wifi_fused.png"))
    shiboken6.delete(view)
    plain = CardView(cards.member(1, evidence=Evidence(fused=0.99, phone="absent")))
    assert not any("手机佐证" in t for t in texts(plain))
    shiboken6.delete(plain)
