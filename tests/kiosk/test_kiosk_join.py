"""邀请入会 on the guide screen (issue 21), through the real broker with a paho client playing the
cloud: a visitor's faceless card, the QR code for the customer's phone, the invitation's token in
the feedback, the held crop sent only in answer to the cloud's enrol command, and the card turned
into the member card. Leaves kiosk_guide_screen_join.png (the QR code over the screen) in artifacts."""

from __future__ import annotations

import queue

import cv2
import numpy as np

from kiosk.guide_screen.card_view import CardView
from protocol import topics
from protocol.codec import decode, encode
from protocol.commands import CommandAck, EnrolCommand
from protocol.device import FaceEnrolment
from protocol.messages import Feedback, new_id, now
from tests.kiosk.test_kiosk_crops import avatar_jpeg, crop_for, send, send_crop

BRAND = "demo"
JOIN_URL = "https://cloud.example.com/dash/join.html"
DEVICE = "kiosk-main"


def qimage_to_gray(image) -> np.ndarray:
    image = image.convertToFormat(image.Format.Format_Grayscale8)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width()].copy()


def test_a_visitor_is_invited_and_their_held_crop_leaves_only_for_the_enrol_command(
    start_kiosk, publisher, cards, store, wait_until, artifacts
):
    heard: queue.Queue = queue.Queue()
    publisher.on_message = lambda c, u, m: heard.put(
        decode(m.payload, Feedback if m.topic.endswith("/feedback") else
               FaceEnrolment if m.topic.endswith("/evt/face") else CommandAck))
    for topic in (topics.guide_feedback(BRAND, store, "main"), topics.face_enrolment(BRAND, store, DEVICE),
                  topics.device_command_ack(BRAND, store, DEVICE, "enrol")):
        publisher.subscribe(topic, qos=1)
    kiosk = start_kiosk(join_url=JOIN_URL)

    def receive(what: str):  # Qt's loop must run meanwhile: the screen answers from the UI thread
        wait_until(lambda: not heard.empty(), what=what)
        return heard.get_nowait()

    member, visitor = cards.member(0, age_s=5), cards.visitor()
    crop = crop_for(store, visitor.arrival_event_id, jpeg=avatar_jpeg((120, 90, 60)))
    send_crop(publisher, crop)
    send(publisher, topics.guide_card(BRAND, store), visitor)
    send(publisher, topics.guide_card(BRAND, store), member)
    wait_until(lambda: len(kiosk.screen.views) == 2, what="the member's and the visitor's cards")
    screen = kiosk.screen
    view = next(v for v in screen.findChildren(CardView) if v.card.card_id == visitor.card_id)
    assert view.visitor and view.held_crop == crop and not view.has_live_crop  # held, never drawn
    assert screen.board.visitors_today == 1 and screen.visitor_count.text() == "1"
    assert [c.card_id for c in screen.board.cards] == [member.card_id, visitor.card_id]  # members first

    view.invite_button.click()
    assert screen.join.isVisible() and screen.join.url.startswith(f"{JOIN_URL}#")
    token = screen.join.url.split("#", 1)[1]
    invited = receive("the invitation")
    assert (invited.action, invited.invitation, invited.visit_id) == ("invited", token, visitor.visit_id)
    picture = qimage_to_gray(screen.join.code.pixmap().toImage())
    assert cv2.QRCodeDetectorAruco().detectAndDecode(picture)[0] == screen.join.url  # the phone reads exactly this
    screen.grab().save(str(artifacts / "kiosk_guide_screen_join.png"))
    assert heard.empty()  # the crop has not left the screen

    # an enrol command for an arrival the screen holds nothing of: refused, nothing sent
    stray = EnrolCommand(command_id=new_id(), brand=BRAND, store=store, device=DEVICE, invitation_id=new_id(),
                         arrival_event_id=new_id(), member_id=new_id(), ts=now())
    send(publisher, topics.device_command(BRAND, store, DEVICE, "enrol"), stray)
    refusal = receive("the refusal")
    assert isinstance(refusal, CommandAck) and (refusal.command_id, refusal.ok) == (stray.command_id, False)

    # the visitor joined with face consent: the cloud asks, the screen answers with the crop once
    command = EnrolCommand(command_id=new_id(), brand=BRAND, store=store, device=DEVICE, invitation_id=new_id(),
                           arrival_event_id=visitor.arrival_event_id, member_id="person-1", ts=now())
    send(publisher, topics.device_command(BRAND, store, DEVICE, "enrol"), command)
    face = receive("the crop")
    assert isinstance(face, FaceEnrolment)
    assert (face.command_id, face.member_id, face.jpeg, face.device) == (command.command_id, "person-1", crop.jpeg,
                                                                          DEVICE)
    assert screen.crop_for_enrolment(visitor.arrival_event_id) is None  # handed over, forgotten

    # the cloud's member card for the same visit replaces the visitor card and closes the QR code
    joined = cards.member(1, visit_id=visitor.visit_id, arrival_event_id=visitor.arrival_event_id)
    publisher.publish(topics.guide_card(BRAND, store), encode(joined), qos=1).wait_for_publish(5)
    wait_until(lambda: joined.card_id in {v.card.card_id for v in screen.views.values()}, what="the member card")
    assert visitor.card_id not in {v.card.card_id for v in screen.views.values()}
    assert not screen.join.isVisible()
    assert screen.board.visitors_today == 1


def test_a_screen_without_a_join_page_still_only_counts_visitors(start_kiosk, publisher, cards, store, wait_until):
    kiosk = start_kiosk()
    send(publisher, topics.guide_card(BRAND, store), cards.visitor())
    wait_until(lambda: kiosk.screen.board.visitors_today == 1, what="the visitor counted")
    assert kiosk.screen.views == {}
