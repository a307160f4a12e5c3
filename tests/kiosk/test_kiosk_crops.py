"""Live face crops on the store-local topic, through the real broker: shown beside the member card
of the same arrival (whichever comes first), never for a visitor, gone with the card."""

from __future__ import annotations

import base64
import io

import shiboken6
from PIL import Image, ImageDraw

from edge.crop import crop_topic
from kiosk.guide_screen.card_view import CardView
from kiosk.guide_screen.crops import CropShelf
from protocol import topics
from protocol.codec import encode
from protocol.device import FaceCrop
from protocol.messages import new_id, now

BRAND = "demo"


def avatar_jpeg(background: tuple[int, int, int] = (70, 84, 110)) -> str:
    """A drawn silhouette, not a photo: screenshots of it may go into docs/."""
    image = Image.new("RGB", (112, 112), background)
    draw = ImageDraw.Draw(image)
    draw.ellipse((34, 14, 78, 62), fill=(236, 200, 170))
    draw.ellipse((14, 66, 98, 150), fill=(40, 48, 66))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return base64.b64encode(out.getvalue()).decode()


def crop_for(store: str, arrival_event_id: str, device: str = "edge-01", jpeg: str | None = None) -> FaceCrop:
    return FaceCrop(brand=BRAND, store=store, device=device, camera="door-1", arrival_event_id=arrival_event_id,
                    ts=now(), jpeg=jpeg or avatar_jpeg())


def send(client, topic: str, message) -> None:
    data = message if isinstance(message, bytes) else encode(message)
    client.publish(topic, data, qos=1).wait_for_publish(5)


def send_crop(client, crop: FaceCrop) -> None:
    send(client, crop_topic(crop.brand, crop.store, crop.device), crop)


def view_of(screen, card) -> CardView:
    return next(v for v in screen.findChildren(CardView) if v.card.card_id == card.card_id)


def test_crop_joins_its_member_card_in_either_order_and_never_a_visitor(
    start_kiosk, publisher, cards, store, wait_until, artifacts
):
    kiosk = start_kiosk()
    early, late, visitor = cards.member(0), cards.member(1), cards.visitor()
    enrolled = avatar_jpeg(background=(200, 205, 215))  # the cloud's card carries the enrolled thumbnail
    early = early.model_copy(update={"member": early.member.model_copy(update={"enrolled_photo": enrolled})})

    send_crop(publisher, crop_for(store, early.arrival_event_id))  # the edge is usually faster than the cloud
    wait_until(lambda: kiosk.feed.stats.crops == 1, what="the early crop")
    send(publisher, topics.guide_card(BRAND, store), early)
    send(publisher, topics.guide_card(BRAND, store), late)
    send_crop(publisher, crop_for(store, late.arrival_event_id))
    wait_until(lambda: len(kiosk.shown) == 2 and view_of(kiosk.screen, late).has_live_crop, what="the late crop")
    assert view_of(kiosk.screen, early).has_live_crop
    assert view_of(kiosk.screen, early).has_enrolled_photo  # 登记照 beside 现场
    assert not view_of(kiosk.screen, late).has_enrolled_photo  # a card without one draws the crop alone
    assert len(kiosk.screen.crops) == 0  # both taken by their cards

    send_crop(publisher, crop_for(store, visitor.arrival_event_id))
    wait_until(lambda: len(kiosk.screen.crops) == 1, what="the visitor's crop held")
    send(publisher, topics.guide_card(BRAND, store), visitor)
    wait_until(lambda: kiosk.screen.board.visitors_today == 1, what="the visitor counted")
    assert len(kiosk.screen.crops) == 0  # a visitor's face is dropped, never drawn
    assert {v.card.card_id for v in kiosk.screen.findChildren(CardView)} == {late.card_id, early.card_id}
    kiosk.screen.grab().save(str(artifacts / "kiosk_guide_screen_live_crop.png"))

    view_of(kiosk.screen, early).dismiss_button.click()
    wait_until(lambda: all(v.card.card_id != early.card_id for v in kiosk.screen.views.values()), what="dismissal")
    assert len(kiosk.screen.crops) == 0  # the crop went with its card


def test_bad_crops_are_rejected_and_cards_still_show(start_kiosk, publisher, cards, store, wait_until):
    kiosk = start_kiosk()
    card = cards.member(2)
    topic = crop_topic(BRAND, store, "edge-01")
    send(publisher, topic, b"not json")
    send(publisher, topic, crop_for(store, card.arrival_event_id, device="edge-02"))  # payload names another box
    send(publisher, topic, crop_for(store, card.arrival_event_id, jpeg=base64.b64encode(b"no jpeg").decode()))
    send(publisher, topics.guide_card(BRAND, store), card)
    wait_until(lambda: len(kiosk.shown) == 1, what="the card")

    assert kiosk.feed.stats.rejected == 2
    assert not view_of(kiosk.screen, card).has_live_crop  # the unreadable JPEG is logged, not drawn


def test_the_shelf_forgets_crops_whose_card_never_came():
    shelf = CropShelf(hold_s=60, max_held=3)
    crops = [crop_for("s1", new_id()) for _ in range(5)]
    for at, crop in enumerate(crops[:4]):
        shelf.keep(crop, float(at))
    assert len(shelf) == 3 and shelf.take(crops[0].arrival_event_id, 4.0) is None  # the oldest made room
    assert shelf.take(crops[1].arrival_event_id, 4.0) == crops[1]
    shelf.keep(crops[4], 30.0)
    assert shelf.take(crops[2].arrival_event_id, 63.5) is None  # held longer than a minute
    assert len(shelf) == 1


def test_a_card_from_an_older_cloud_draws_without_the_history_line(qapp, cards):
    member = cards.member(0).member
    old = member.model_copy(update={"lifetime_value": None, "last_visit": None, "last_purchase": None,
                                    "preferences": []})
    view = CardView(cards.member(0, member=old))
    names = {label.objectName() for label in view.findChildren(type(view.arrived))}
    assert "memberHistory" not in names and "memberName" in names
    shiboken6.delete(view)
