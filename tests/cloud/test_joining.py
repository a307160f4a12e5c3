"""Joining in the store (入会, issue 21): a visitor card's invitation, the customer's own phone (the
public /v1/join API with a one-time code from the simulated SMS gateway), and the live crop that
reaches enrolment only after face consent. Through the real cloud, a real Mosquitto and the
database; a plain MQTT client plays the guide screen (tests/kiosk play the cloud for the screen)."""

from __future__ import annotations

import base64
import queue
import secrets
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from cloud.arrivals import till
from cloud.cdp import members
from cloud.channels.sms_sim import SimulatedSms
from protocol import topics, transport
from protocol.codec import decode, encode
from protocol.commands import EnrolCommand
from protocol.device import FaceEnrolment
from protocol.facepack.engine import decode_image
from protocol.messages import Feedback, GuideCard, new_id, now

STORE, SCREEN = "s1", "main"
DEVICE = f"kiosk-{SCREEN}"


@pytest.fixture
def sms() -> Iterator[SimulatedSms]:
    sim = SimulatedSms().start()
    yield sim
    sim.stop()


class Screen:
    """A plain MQTT client in the guide screen's place: cards and enrol commands in, feedback and crops out."""

    def __init__(self, url: str, brand: str) -> None:
        self.brand = brand
        self.inbox: queue.Queue[object] = queue.Queue()
        self.url = transport.BrokerUrl.parse(url)
        self.client = transport.make_client(self.url, f"test-screen-{new_id()[:8]}")
        transport.subscribe_on_connect(self.client, [(topics.guide_cards_of_store(brand, STORE), 1),
                                                     (topics.device_command(brand, STORE, DEVICE, "enrol"), 1)])
        self.client.on_message = lambda c, u, m: self.inbox.put(
            decode(m.payload, EnrolCommand if m.topic.endswith("/cmd/enrol") else GuideCard))
        transport.start(self.client, self.url)

    def next(self, kind: type, timeout: float = 30.0):
        while True:
            item = self.inbox.get(timeout=timeout)
            if isinstance(item, kind):
                return item

    def send(self, topic: str, message) -> None:
        self.client.publish(topic, encode(message), qos=1).wait_for_publish(5)

    def invite(self, card: GuideCard) -> str:
        token = secrets.token_urlsafe(16)
        self.send(topics.guide_feedback(self.brand, STORE, SCREEN), Feedback(
            feedback_id=new_id(), card_id=card.card_id, visit_id=card.visit_id, brand=self.brand, store=STORE,
            screen=SCREEN, action="invited", invitation=token, ts=now()))
        return token

    def answer(self, command: EnrolCommand, jpeg: str) -> None:
        self.send(topics.face_enrolment(self.brand, STORE, DEVICE), FaceEnrolment(
            brand=self.brand, store=STORE, device=DEVICE, command_id=command.command_id,
            arrival_event_id=command.arrival_event_id, member_id=command.member_id, ts=now(), jpeg=jpeg))

    def close(self) -> None:
        transport.stop(self.client)


def live_crop(face_engine, photo: Path) -> str:
    """What the edge sends store-locally: the aligned face the recogniser saw, as a JPEG (edge.crop)."""
    image = decode_image(photo.read_bytes())
    aligned = face_engine.align(image, face_engine.detect(image)[0])
    ok, jpeg = cv2.imencode(".jpg", aligned, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return base64.b64encode(jpeg.tobytes()).decode()


def arrive(screen: Screen, make_arrival, photo: Path) -> GuideCard:
    arrival = make_arrival(photo, brand=screen.brand, store=STORE)
    screen.send(topics.arrival(screen.brand, STORE, arrival.device), arrival)
    card = screen.next(GuideCard)
    assert card.arrival_event_id == arrival.event_id
    return card


def wait_for(predicate, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def code_sent_to(sms: SimulatedSms, phone: str) -> str:
    return str(sms.messages_to(phone)[-1].params["code"])


def test_a_visitor_joins_on_their_phone_and_only_then_their_live_crop_is_enrolled(
    start_cloud, mosquitto, sms: SimulatedSms, faces_dir: Path, face_engine, make_arrival
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url, sms_url=sms.url)
    screen = Screen(mosquitto.url, f"b{new_id()[:6]}")
    try:
        card = arrive(screen, make_arrival, faces_dir / "deepface_id01" / "img1.jpg")
        assert card.member is None  # a visitor
        crop = live_crop(face_engine, faces_dir / "deepface_id01" / "img1.jpg")
        token = screen.invite(card)
        wait_for(lambda: client.get(f"/v1/join/{token}").status_code == 200)
        opened = client.get(f"/v1/join/{token}").json()
        assert (opened["status"], opened["store"], opened["face"]) == ("open", STORE, None)
        assert opened["channels"] == ["sms", "wechat", "wecom", "email"]

        # a crop nobody asked for never reaches the gallery
        screen.answer(EnrolCommand(command_id=new_id(), brand=screen.brand, store=STORE, device=DEVICE,
                                   invitation_id=new_id(), arrival_event_id=card.arrival_event_id,
                                   member_id=new_id(), ts=now()), crop)
        wait_for(lambda: runtime.ingest.counts().rejected.get("unrequested_face") == 1)
        assert runtime.db.scalar("SELECT COUNT(*) FROM faces") == 0

        phone = "13900000021"
        refused = client.post(f"/v1/join/{token}/code", json={"membership": False, "name": "林晓", "phone": phone})
        assert refused.status_code == 422  # membership is its own question, and it must be yes
        sent = client.post(f"/v1/join/{token}/code", json={"membership": True, "name": "林晓", "phone": phone})
        assert sent.status_code == 201, sent.text
        verification_id = sent.json()["id"]
        code = code_sent_to(sms, phone)
        wrong = "000000" if code != "000000" else "111111"
        body = {"verification_id": verification_id, "face": True, "marketing": {"sms": True, "wechat": False}}
        assert client.post(f"/v1/join/{token}/confirm", json={**body, "code": wrong}).json()["detail"]["code"] == "wrong_code"
        joined = client.post(f"/v1/join/{token}/confirm", json={**body, "code": code})
        assert joined.status_code == 200, joined.text
        state = joined.json()
        assert state["status"] == "joined" and state["member_card"].startswith("MC")

        # the screen's visitor card becomes the member card of the same visit, and the crop is asked for
        member_card = screen.next(GuideCard)
        assert member_card.visit_id == card.visit_id and member_card.arrival_event_id == card.arrival_event_id
        assert member_card.member is not None and member_card.member.name == "林晓"
        person = member_card.member.member_id
        command = screen.next(EnrolCommand)
        assert (command.member_id, command.arrival_event_id) == (person, card.arrival_event_id)
        assert client.get(f"/v1/join/{token}").json()["face"] == "pending"
        screen.answer(command, crop)
        wait_for(lambda: client.get(f"/v1/join/{token}").json()["face"] == "enrolled")
        assert runtime.db.scalar("SELECT COUNT(*) FROM faces WHERE member_id = ?", (person,)) == 1
        assert runtime.db.scalar("SELECT member_id FROM visits WHERE id = ?", (card.visit_id,)) == person

        # the enrolled crop recognises them in another photo (their next visit)
        probe = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=screen.brand, store=STORE)
        found = runtime.index.search(probe.embedding.to_vector())
        assert found is not None and found.member_id == person

        # each consent as ticked on the page, logged with where it was given
        consents = client.get(f"/v1/marketing/consent/{person}").json()
        assert consents["sms"]["granted"] is True and consents["wechat"]["granted"] is False
        logged = runtime.db.query("SELECT kind, granted, store FROM consent_log WHERE person_id = ? AND actor LIKE "
                                  "'join page%' ORDER BY id", (person,))
        assert [(r["kind"], bool(r["granted"]), r["store"]) for r in logged] == [
            ("face", True, STORE), ("marketing:sms", True, STORE), ("marketing:wechat", False, STORE)]

        # the member QR code carries the card number (the till's TillMember.qr)
        png = client.get(f"/v1/join/{token}/member-qr.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        image = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert cv2.QRCodeDetectorAruco().detectAndDecode(image)[0] == state["member_card"]
        assert client.post(f"/v1/join/{token}/code", json={"membership": True, "name": "林晓", "phone": phone}
                           ).json()["detail"]["code"] == "invitation_closed"
    finally:
        screen.close()


def test_an_existing_member_joining_without_face_consent_keeps_their_card_and_no_crop_is_asked_for(
    start_cloud, mosquitto, sms: SimulatedSms, faces_dir: Path, make_arrival
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url, sms_url=sms.url)
    phone = "13900000022"
    existing = members.add_member(runtime.db, name="周敏", phone=phone, gender="female", tier="金卡会员", tags=[],
                                  categories=[], face_consent=False)
    runtime.db.execute("INSERT INTO identifiers (member_id, kind, value, created) VALUES (?, 'member_card', "
                       "'MC0000000777', '2025-01-01T00:00:00.000000+00:00')", (existing.id,))
    screen = Screen(mosquitto.url, f"b{new_id()[:6]}")
    try:
        card = arrive(screen, make_arrival, faces_dir / "deepface_id02" / "img26.jpg")
        assert card.member is None
        token = screen.invite(card)
        wait_for(lambda: client.get(f"/v1/join/{token}").status_code == 200)
        sent = client.post(f"/v1/join/{token}/code", json={"membership": True, "name": "周敏", "phone": phone})
        assert sent.status_code == 201, sent.text
        joined = client.post(f"/v1/join/{token}/confirm", json={
            "verification_id": sent.json()["id"], "code": code_sent_to(sms, phone), "face": False})
        assert joined.status_code == 200, joined.text
        assert (joined.json()["member_card"], joined.json()["face"]) == ("MC0000000777", None)
        member_card = screen.next(GuideCard)
        assert member_card.member is not None and member_card.member.member_id == existing.id
        assert member_card.member.tier == "金卡会员"  # the person's tier (and points) follow them
        assert runtime.db.scalar("SELECT COUNT(*) FROM commands WHERE name = 'enrol'") == 0
        assert runtime.db.scalar("SELECT COUNT(*) FROM faces") == 0
        assert members.member(runtime.db, existing.id).face_consent is False
        assert runtime.db.scalar("SELECT member_id FROM visits WHERE id = ?", (card.visit_id,)) == existing.id
        with pytest.raises(queue.Empty):
            screen.next(EnrolCommand, timeout=0.5)

        # without a face, the member QR code the page showed is how the till knows them: same service
        sale = {"order_no": f"R-{new_id()[:8]}", "store": STORE, "ts": now().isoformat(), "paid": 199.0,
                "member": {"qr": joined.json()["member_card"]}, "lines": [{"sku": "SKU-1", "qty": 1, "price": 199.0}],
                "type": "sale"}
        till.land(runtime.db, "pos", [sale], store=STORE)
        attributed = runtime.db.one("SELECT a.member_via, a.member_id FROM order_attribution a JOIN orders o "
                                    "ON o.id = a.order_id WHERE o.order_no = ?", (sale["order_no"],))
        assert attributed is not None and attributed["member_via"] == "qr"
        assert members.person_id(runtime.db, attributed["member_id"]) == existing.id
        # earned as it landed, at the person's 金卡 multiplier (1.5 points a yuan): their tier came along
        assert client.get(f"/v1/loyalty/members/{existing.id}").json()["balance"] == 298
    finally:
        screen.close()
