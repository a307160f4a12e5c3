"""Visit truth (issue 15): one visit and one card per person per store whichever boxes saw them, and
"不是本人" turning a member visit into a visitor visit everywhere it was counted.

Two simulated edge boxes publish through a real Mosquitto into the real ingest path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from cloud import clock
from cloud.arrivals import feedback, visits
from cloud.cdp import segments
from cloud.health import sources
from cloud.runtime import Runtime
from protocol import topics, transport
from protocol.messages import Arrival, Feedback, GuideCard, new_id, now
from tests.cloud.conftest import MakeArrival, StartCloud
from tests.cloud.test_cloud_ingest import BRAND, Guide, edge, guide, store_id  # noqa: F401


@dataclass
class Scene:
    """The real cloud behind a real broker, a guide screen listening and an edge box publishing."""

    client: TestClient
    runtime: Runtime
    guide: Guide
    edge: mqtt.Client
    make_arrival: MakeArrival
    faces_dir: Path
    store: str

    def enrol(self) -> str:
        """王芳, a member with face consent and one enrolled photo."""
        wang = self.client.post("/v1/members", json={
            "name": "王芳", "phone": "13800138000", "gender": "female", "consent": {"face": True}}).json()["id"]
        files = {"image": ("face.jpg", (self.faces_dir / "deepface_id01/img1.jpg").read_bytes(), "image/jpeg")}
        assert self.client.post(f"/v1/members/{wang}/faces", files=files).status_code == 201
        return wang

    def arrival(self, photo: str, device: str = "edge-01") -> Arrival:
        return self.make_arrival(self.faces_dir / photo, brand=BRAND, store=self.store, device=device)

    def publish(self, arrival: Arrival) -> None:
        """What the box that saw ``arrival`` sends."""
        transport.publish(self.edge, topics.arrival(BRAND, self.store, arrival.device), arrival).wait_for_publish(5)

    def tap(self, card: GuideCard, action: str, assistant: str | None = None) -> None:
        """An assistant's tap on ``card`` at guide screen s1."""
        fb = Feedback(feedback_id=new_id(), card_id=card.card_id, visit_id=card.visit_id, brand=BRAND,
                      store=self.store, screen="s1", action=action, assistant=assistant, ts=now())
        transport.publish(self.edge, topics.guide_feedback(BRAND, self.store, "s1"), fb).wait_for_publish(5)

    def counts_when(self, predicate: Callable[[dict], bool], timeout: float = 15.0) -> dict:
        """The ingest worker's counters once ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            counts = asdict(self.runtime.ingest.counts())
            if predicate(counts) or time.monotonic() > deadline:
                return counts
            time.sleep(0.02)

    def visits(self) -> list:
        return visits.visits(self.runtime.db, self.store, limit=100)


@pytest.fixture
def scene(start_cloud: StartCloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, faces_dir: Path,  # noqa: F811
          store_id: str) -> Scene:  # noqa: F811
    client, runtime = start_cloud(broker_url=mosquitto.url)
    return Scene(client, runtime, guide, edge, make_arrival, faces_dir, store_id)


def test_two_boxes_one_member_is_one_visit_and_one_card(scene: Scene) -> None:
    wang = scene.enrol()
    first = scene.arrival("deepface_id01/img2.jpg", device="edge-east")
    second = scene.arrival("deepface_id01/img4.jpg", device="edge-west")
    scene.publish(first)
    card = scene.guide.next()
    assert card.member is not None and card.member.member_id == wang
    scene.publish(second)
    stats = scene.counts_when(lambda s: s["same_visit"] >= 1 and s["cards"] >= 1)
    assert stats["same_visit"] == 1 and stats["cards"] == 1 and stats["matched"] == 1

    assert [v.id for v in scene.visits()] == [card.visit_id]
    assert visits.boxes_of(scene.runtime.db, card.visit_id) == ["edge-east", "edge-west"]
    assert visits.visit_count(scene.runtime.db, wang, BRAND) == 1
    # the same box re-sending the second arrival is still a duplicate, not a third sighting
    scene.publish(second)
    assert scene.counts_when(lambda s: s["duplicates"] >= 1)["duplicates"] == 1
    time.sleep(0.3)
    assert scene.guide.cards.empty()


def test_a_visitor_seen_by_two_boxes_within_seconds_is_counted_once(scene: Scene) -> None:
    scene.enrol()
    east = scene.arrival("deepface_id05/img14.jpg", device="edge-east")
    west = scene.arrival("deepface_id05/img14.jpg", device="edge-west")  # near-identical embedding
    other = scene.arrival("deepface_id02/img26.jpg", device="edge-west")
    scene.publish(east)
    assert scene.guide.next().member is None
    scene.publish(west)
    scene.publish(other)
    assert scene.guide.next().arrival_event_id == other.event_id  # someone else: their own visit and card
    stats = scene.counts_when(lambda s: s["same_visit"] >= 1 and s["visitors"] >= 2 and s["cards"] >= 2)
    assert stats["visitors"] == 2 and stats["same_visit"] == 1 and stats["cards"] == 2
    assert len(scene.visits()) == 2


def _members_card(scene: Scene) -> tuple[str, GuideCard]:
    """王芳 enrolled, then arriving: her card on the guide screen."""
    wang = scene.enrol()
    scene.publish(scene.arrival("deepface_id01/img2.jpg"))
    card = scene.guide.next()
    assert card.member is not None
    return wang, card


def test_not_this_person_turns_the_visit_into_a_visitor_visit(scene: Scene) -> None:
    wang, card = _members_card(scene)
    db = scene.runtime.db
    visited = segments.Condition.of({"visited": {"store": scene.store, "within_days": 30}})
    day = card.arrival_ts.astimezone(clock.zone(None)).date()  # the store's local day (the brand's zone), not UTC's

    def hours() -> dict:
        with db.transaction() as tx:
            return sources.hourly_counts(tx, sources.StoreRange(scene.store, None, day, day))

    assert visits.visit_count(db, wang, BRAND) == 1 and segments.count(db, visited) == 1
    assert sum(c.members_recognised for c in hours().values()) == 1

    scene.tap(card, "not_this_person", assistant="小李")
    scene.counts_when(lambda s: s["feedback"] >= 1)

    row = db.one("SELECT member_id, corrected_member_id, corrected_reason FROM visits WHERE id = ?", (card.visit_id,))
    assert row == {"member_id": None, "corrected_member_id": wang, "corrected_reason": "not_this_person:小李"}
    assert visits.visit_count(db, wang, BRAND) == 0
    assert segments.count(db, visited) == 0
    assert scene.client.get(f"/v1/members/{wang}/profile").json()["visits"]["count"] == 0
    assert sum(c.members_recognised for c in hours().values()) == 0
    assert sum(c.arrivals for c in hours().values()) == 1  # still an arrival: a visitor's
    [label] = feedback.labels(db, scene.store)
    assert (label["visit_id"], label["member_id"], label["label"], label["device"]) == (
        card.visit_id, wang, "not_this_person", "edge-01")
    assert abs(label["score"] - card.confidence) < 1e-9
    assert feedback.doubts(db, wang) == 1


def test_served_on_a_member_card_is_a_confirmed_label(scene: Scene) -> None:
    wang, card = _members_card(scene)
    for action in ("greeted", "served", "sold"):
        scene.tap(card, action)
    scene.counts_when(lambda s: s["feedback"] >= 3)
    assert [(r["member_id"], r["label"]) for r in feedback.labels(scene.runtime.db)] == [(wang, "confirmed")]
    assert visits.visit_count(scene.runtime.db, wang, BRAND) == 1
