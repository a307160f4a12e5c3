"""Visit truth (issue 15): one visit and one card per person per store whichever boxes saw them, and
"不是本人" turning a member visit into a visitor visit everywhere it was counted.

Two simulated edge boxes publish through a real Mosquitto into the real ingest path.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import paho.mqtt.client as mqtt

from cloud.arrivals import feedback, visits
from cloud.cdp import segments
from cloud.health import sources
from protocol import topics, transport
from protocol.messages import Feedback, new_id, now
from tests.cloud.test_cloud_ingest import BRAND, Guide, edge, guide, store_id  # noqa: F401


def _enrol(client, faces_dir: Path) -> str:
    wang = client.post("/v1/members", json={
        "name": "王芳", "phone": "13800138000", "gender": "female", "consent": {"face": True}}).json()["id"]
    files = {"image": ("face.jpg", (faces_dir / "deepface_id01/img1.jpg").read_bytes(), "image/jpeg")}
    assert client.post(f"/v1/members/{wang}/faces", files=files).status_code == 201
    return wang


def _counts_when(runtime, predicate, timeout: float = 15.0) -> dict:
    """The ingest worker's counters once ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        counts = asdict(runtime.ingest.counts())
        if predicate(counts) or time.monotonic() > deadline:
            return counts
        time.sleep(0.02)


def _visits(runtime, store: str) -> list:
    return visits.visits(runtime.db, store, limit=100)


def test_two_boxes_one_member_is_one_visit_and_one_card(
    start_cloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, faces_dir: Path,  # noqa: F811
    store_id: str,  # noqa: F811
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url)
    wang = _enrol(client, faces_dir)
    first = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=BRAND, store=store_id, device="edge-east")
    second = make_arrival(faces_dir / "deepface_id01" / "img4.jpg", brand=BRAND, store=store_id, device="edge-west")
    transport.publish(edge, topics.arrival(BRAND, store_id, "edge-east"), first).wait_for_publish(5)
    card = guide.next()
    assert card.member is not None and card.member.member_id == wang
    transport.publish(edge, topics.arrival(BRAND, store_id, "edge-west"), second).wait_for_publish(5)
    stats = _counts_when(runtime, lambda s: s["same_visit"] >= 1 and s["cards"] >= 1)
    assert stats["same_visit"] == 1 and stats["cards"] == 1 and stats["matched"] == 1

    stored = _visits(runtime, store_id)
    assert [v.id for v in stored] == [card.visit_id]
    assert visits.boxes_of(runtime.db, card.visit_id) == ["edge-east", "edge-west"]
    assert visits.visit_count(runtime.db, wang, BRAND) == 1
    # the same box re-sending the second arrival is still a duplicate, not a third sighting
    transport.publish(edge, topics.arrival(BRAND, store_id, "edge-west"), second).wait_for_publish(5)
    assert _counts_when(runtime, lambda s: s["duplicates"] >= 1)["duplicates"] == 1
    time.sleep(0.3)
    assert guide.cards.empty()


def test_a_visitor_seen_by_two_boxes_within_seconds_is_counted_once(
    start_cloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, faces_dir: Path,  # noqa: F811
    store_id: str,  # noqa: F811
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url)
    _enrol(client, faces_dir)
    photo = faces_dir / "deepface_id05" / "img14.jpg"
    east = make_arrival(photo, brand=BRAND, store=store_id, device="edge-east")
    west = make_arrival(photo, brand=BRAND, store=store_id, device="edge-west")  # near-identical embedding
    other = make_arrival(faces_dir / "deepface_id02" / "img26.jpg", brand=BRAND, store=store_id, device="edge-west")
    transport.publish(edge, topics.arrival(BRAND, store_id, "edge-east"), east).wait_for_publish(5)
    assert guide.next().member is None
    transport.publish(edge, topics.arrival(BRAND, store_id, "edge-west"), west).wait_for_publish(5)
    transport.publish(edge, topics.arrival(BRAND, store_id, "edge-west"), other).wait_for_publish(5)
    assert guide.next().arrival_event_id == other.event_id  # someone else: their own visit and card
    stats = _counts_when(runtime, lambda s: s["same_visit"] >= 1 and s["visitors"] >= 2 and s["cards"] >= 2)
    assert stats["visitors"] == 2 and stats["same_visit"] == 1 and stats["cards"] == 2
    assert len(_visits(runtime, store_id)) == 2


def test_not_this_person_turns_the_visit_into_a_visitor_visit(
    start_cloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, faces_dir: Path,  # noqa: F811
    store_id: str,  # noqa: F811
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url)
    wang = _enrol(client, faces_dir)
    arrival = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=BRAND, store=store_id)
    transport.publish(edge, topics.arrival(BRAND, store_id, "edge-01"), arrival).wait_for_publish(5)
    card = guide.next()
    assert card.member is not None
    visited = segments.Condition.of({"visited": {"store": store_id, "within_days": 30}})
    day = card.arrival_ts.date()

    def recognised() -> int:
        with runtime.db.transaction() as tx:
            hours = sources.hourly_counts(tx, sources.StoreRange(store_id, None, day, day))
        return sum(c.members_recognised for c in hours.values())

    assert visits.visit_count(runtime.db, wang, BRAND) == 1 and segments.count(runtime.db, visited) == 1
    assert recognised() == 1

    fb = Feedback(feedback_id=new_id(), card_id=card.card_id, visit_id=card.visit_id, brand=BRAND, store=store_id,
                  screen="s1", action="not_this_person", assistant="小李", ts=now())
    transport.publish(edge, topics.guide_feedback(BRAND, store_id, "s1"), fb).wait_for_publish(5)
    _counts_when(runtime, lambda s: s["feedback"] >= 1)

    row = runtime.db.one("SELECT member_id, corrected_member_id, corrected_reason FROM visits WHERE id = ?",
                         (card.visit_id,))
    assert row == {"member_id": None, "corrected_member_id": wang, "corrected_reason": "not_this_person:小李"}
    assert visits.visit_count(runtime.db, wang, BRAND) == 0
    assert segments.count(runtime.db, visited) == 0
    assert client.get(f"/v1/members/{wang}/profile").json()["visits"]["count"] == 0
    assert recognised() == 0
    with runtime.db.transaction() as tx:
        hours = sources.hourly_counts(tx, sources.StoreRange(store_id, None, day, day))
    assert sum(c.arrivals for c in hours.values()) == 1  # still an arrival: a visitor's
    [label] = feedback.labels(runtime.db, store_id)
    assert (label["visit_id"], label["member_id"], label["label"], label["device"]) == (
        card.visit_id, wang, "not_this_person", "edge-01")
    assert abs(label["score"] - card.confidence) < 1e-9
    assert feedback.doubts(runtime.db, wang) == 1


def test_served_on_a_member_card_is_a_confirmed_label(
    start_cloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, faces_dir: Path,  # noqa: F811
    store_id: str,  # noqa: F811
) -> None:
    client, runtime = start_cloud(broker_url=mosquitto.url)
    wang = _enrol(client, faces_dir)
    arrival = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=BRAND, store=store_id)
    transport.publish(edge, topics.arrival(BRAND, store_id, "edge-01"), arrival).wait_for_publish(5)
    card = guide.next()
    for action in ("greeted", "served", "sold"):
        fb = Feedback(feedback_id=new_id(), card_id=card.card_id, visit_id=card.visit_id, brand=BRAND,
                      store=store_id, screen="s1", action=action, ts=now())
        transport.publish(edge, topics.guide_feedback(BRAND, store_id, "s1"), fb).wait_for_publish(5)
    _counts_when(runtime, lambda s: s["feedback"] >= 3)
    assert [(r["member_id"], r["label"]) for r in feedback.labels(runtime.db)] == [(wang, "confirmed")]
    assert visits.visit_count(runtime.db, wang, BRAND) == 1
