"""The enrolled photo on the guide card: stored at enrolment (consent only), small, on member cards
only, and gone on erasure and on face-consent withdrawal. Real photos, real face engine, the API
on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np

from cloud.arrivals.cards import CardBuilder
from cloud.cdp import members
from cloud.faces import thumbnails
from cloud.faces.matching import Match
from protocol.codec import encode
from tests.cloud.test_cloud_api import WANG, _create, _enrol

CARD_BUDGET = 16 * 1024  # far under the codec's 64 KiB


def _card(runtime, make_arrival, photo: Path, member_id: str | None):
    member = members.member(runtime.db, member_id) if member_id else None
    match = Match(member, 0.8, "member") if member else Match(None, 0.2, "below_threshold")
    arrival = make_arrival(photo, brand="lumiere", store="sh-001")
    return CardBuilder(runtime.db, ttl_s=60).build(arrival, match, arrival.event_id)


def test_enrolment_keeps_a_small_aligned_thumbnail_that_member_cards_carry(start_cloud, make_arrival, faces_dir):
    client, runtime = start_cloud()
    photo = faces_dir / "deepface_id01" / "img1.jpg"
    member_id = _create(client)
    assert _enrol(client, member_id, photo.read_bytes()).status_code == 201

    jpeg = thumbnails.of_person(runtime.db, member_id)
    assert jpeg is not None and len(jpeg) < thumbnails.MAX_CARD_BYTES
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (112, 112, 3)  # the aligned face, not the uploaded photo
    assert len(photo.read_bytes()) > 3 * len(jpeg)

    card = _card(runtime, make_arrival, photo, member_id)
    assert card.member is not None and base64.b64decode(card.member.enrolled_photo) == jpeg
    assert len(encode(card)) < CARD_BUDGET

    visitor = _card(runtime, make_arrival, photo, None)
    assert visitor.member is None and card.member.enrolled_photo not in encode(visitor).decode()

    # no consent: no enrolment, so no thumbnail either
    refused = _create(client, phone="13900139001", consent={"face": False})
    assert _enrol(client, refused, photo.read_bytes()).status_code == 409
    assert thumbnails.of_person(runtime.db, refused) is None


def test_erasure_and_consent_withdrawal_delete_the_thumbnail(start_cloud, make_arrival, faces_dir):
    client, runtime = start_cloud()
    photo = faces_dir / "deepface_id01" / "img1.jpg"
    withdrawn = _create(client)
    erased = _create(client, **{**WANG, "name": "李娜", "phone": "13900139002"})
    for member_id in (withdrawn, erased):
        assert _enrol(client, member_id, photo.read_bytes()).status_code == 201
    assert runtime.db.scalar("SELECT COUNT(*) FROM face_thumbnails") == 2

    assert client.put(f"/v1/members/{withdrawn}/consent", json={"face": False}).status_code == 200
    assert thumbnails.of_person(runtime.db, withdrawn) is None
    assert _card(runtime, make_arrival, photo, withdrawn).member.enrolled_photo is None

    assert client.delete(f"/v1/members/{erased}").status_code == 200
    assert runtime.db.scalar("SELECT COUNT(*) FROM face_thumbnails") == 0
