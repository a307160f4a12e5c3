"""Guide cards from real member rows and the sample catalogue."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloud.arrivals import visits
from cloud.arrivals.cards import VISITOR_SCRIPT, CardBuilder
from cloud.cdp import members
from cloud.db import Database
from cloud.faces.matching import Match
from cloud.guide.greeting import title_for
from protocol.embedding import Embedding
from protocol.messages import Arrival, FaceQuality, new_id, now


def _arrival() -> Arrival:
    return Arrival(
        event_id=new_id(), ts=now(), brand="lumiere", store="sh-001", device="edge-01", camera="door-1",
        track_id="t1", embedding=Embedding.from_vector([1.0, 0.0]),
        quality=FaceQuality(det_score=0.9, face_px=80, bbox=(0, 0, 80, 80)), model_pack="scrfd500m-mbf",
    )


@pytest.mark.parametrize(
    ("name", "gender", "title"),
    [
        ("王芳", "female", "王女士"),
        ("张伟", "male", "张先生"),
        ("欧阳娜娜", "female", "欧阳女士"),
        ("王芳", None, "王芳"),
        ("Alice Wang", "female", "Alice Wang"),
    ],
)
def test_title(name: str, gender: str | None, title: str) -> None:
    assert title_for(name, gender) == title


def test_member_card_recommends_preferred_categories_then_best_sellers(db: Database) -> None:
    member = members.add_member(db,
        name="李娜", phone="13800000001", gender="female", tier="钻石会员", tags=["香水爱好者"],
        categories=["香水"], face_consent=True,
    )

    card = CardBuilder(db, ttl_s=90, recommendations=4).build(_arrival(), Match(member, 0.8, "member"), new_id())

    assert card.member is not None and card.member.title == "李女士" and card.member.tags == ["香水爱好者"]
    reasons = [r.reason for r in card.recommendations]
    assert reasons == ["偏好品类：香水"] * 3 + ["本店热销"]
    assert card.recommendations[0].name == "白茶淡香水 50ml"  # the most popular 香水
    assert card.recommendations[3].name == "玻尿酸保湿精华液 30ml"  # the store's best seller
    assert card.script.startswith("李女士您好，欢迎光临！您是我们的钻石会员")
    assert "白茶淡香水 50ml" in card.script  # the script names what the card recommends
    assert card.expires_at - card.ts == timedelta(seconds=90)


def test_member_without_preferences_gets_best_sellers_and_new_arrivals(db: Database) -> None:
    member = members.add_member(db,
        name="Li Na", phone="13800000002", gender=None, tier="普通会员", tags=[], categories=[], face_consent=True,
    )

    card = CardBuilder(db, ttl_s=120, recommendations=3).build(_arrival(), Match(member, 0.8, "member"), new_id())

    assert card.member is not None and card.member.title == "Li Na"
    assert [r.sku for r in card.recommendations] == ["SK-1001", "MU-2001", "SK-1002"]
    assert {r.reason for r in card.recommendations} <= {"本店热销", "新品上市"}


def test_visitor_card_has_no_profile_and_no_recommendations(db: Database) -> None:
    card = CardBuilder(db, ttl_s=120).build(_arrival(), Match(None, 0.2, "below_threshold"), new_id())

    assert card.member is None and card.recommendations == [] and card.script == VISITOR_SCRIPT
    assert card.confidence == pytest.approx(0.2)


def test_member_card_carries_lifetime_value_last_visit_last_purchase_and_preferences(db: Database) -> None:
    from cloud.arrivals.visits import Visit
    from cloud.cdp import tags
    from tests.recommend.history import order, product

    member = members.add_member(db, name="王芳", phone="13800000009", gender="female", tier="金卡", tags=[],
                              categories=["香水"], face_consent=True)
    product(db, "T-1", "修护精华露 50ml", "护肤", 1280.0)
    product(db, "T-2", "保湿面霜", "护肤", 680.0)
    order(db, member.id, 40, [("T-2", "护肤", 680.0)])
    last = order(db, member.id, 12, [("T-2", "护肤", 680.0), ("T-1", "护肤", 1280.0), ("MU-9", "彩妆", 99.0)])
    tags.refresh(db, [member.id])
    earlier = now() - timedelta(days=3)
    visits.record_visit(db, Visit(id=new_id(), brand="lumiere", store="sh-001", member_id=member.id, confidence=0.8,
                             ts=earlier, arrival_event_id=new_id(), device="edge-01", camera="door-1", card_id=new_id()))

    card = CardBuilder(db, ttl_s=90).build(_arrival(), Match(member, 0.8, "member"), new_id())

    summary = card.member
    assert summary is not None
    assert summary.lifetime_value == pytest.approx(680 + 680 + 1280 + 99)
    assert summary.last_visit == earlier
    assert summary.last_purchase is not None and summary.last_purchase.amount == pytest.approx(2059)
    assert summary.last_purchase.items == ["修护精华露 50ml", "保湿面霜", "MU-9"]  # dearest first; unknown sku as is
    assert db.scalar("SELECT ts FROM orders WHERE id = ?", (last,)) == int(summary.last_purchase.ts.timestamp())
    assert summary.preferences == ["护肤", "彩妆"]  # spend, not the declared 香水


def test_member_without_orders_shows_declared_preferences_and_no_history(db: Database) -> None:
    member = members.add_member(db, name="李娜", phone="13800000010", gender="female", tier="普通会员", tags=[],
                              categories=["香水", "彩妆"], face_consent=True)

    summary = CardBuilder(db, ttl_s=90).build(_arrival(), Match(member, 0.8, "member"), new_id()).member

    assert summary is not None
    assert (summary.lifetime_value, summary.last_visit, summary.last_purchase) == (None, None, None)  # no "累计 ¥0"
    assert summary.preferences == ["香水", "彩妆"]


def test_a_card_from_an_older_cloud_without_the_history_fields_still_decodes(db: Database) -> None:
    import json

    from protocol.codec import decode
    from protocol.messages import GuideCard

    member = members.add_member(db, name="李娜", phone="13800000011", gender="female", tier="普通会员", tags=[],
                              categories=[], face_consent=True)
    card = CardBuilder(db, ttl_s=90).build(_arrival(), Match(member, 0.8, "member"), new_id())
    payload = json.loads(card.model_dump_json())
    for added in ("lifetime_value", "last_visit", "last_purchase", "preferences"):
        del payload["member"][added]

    old = decode(json.dumps(payload).encode(), GuideCard)

    assert old.member is not None and old.member.lifetime_value is None and old.member.last_purchase is None
    assert old.member.preferences == [] and old.card_id == card.card_id
