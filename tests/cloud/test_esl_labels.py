"""The shelf-label registry: stored per store (migration 5), managed through the API with store
scoping, and a member's arrival flashes the labels of their card's recommended products, through
a real Mosquitto."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import paho.mqtt.client as mqtt

from cloud.pricing.registry import ARRIVAL_FLASH_TTL_S
from protocol import topics, transport
from protocol.codec import decode
from protocol.esl import ARRIVAL_FLASH, LabelCommand
from protocol.messages import GuideCard
from protocol.topics import label_commands_of_store
from tests.cloud.test_cloud_ingest import Guide
from tests.cloud.test_hq_api import _keys

BRAND = "lumiere"


def test_labels_are_registered_moved_listed_and_removed_per_store(start_cloud):
    api, _ = start_cloud()
    keys = _keys(api)
    admin, manager, analyst = keys["hq_admin"], keys["store_manager"], keys["hq_analyst"]

    made = api.put("/v1/stores/s1/labels/L-milk", json={"sku": "F-2001", "tag_type": "epd29_bwr"}, headers=manager)
    assert made.status_code == 200, made.text
    assert made.json() == {"label_id": "L-milk", "store": "s1", "sku": "F-2001", "tag_type": "epd29_bwr",
                           "width": 296, "height": 128, "colors": ["white", "black", "red"], "outcome": "created"}
    again = api.put("/v1/stores/s1/labels/L-milk", json={"sku": "F-2001", "tag_type": "epd29_bwr"}, headers=admin)
    assert again.json()["outcome"] == "unchanged"
    moved = api.put("/v1/stores/s1/labels/L-milk", json={"sku": "F-2002", "tag_type": "epd154_bw"}, headers=admin)
    assert moved.json()["outcome"] == "rebound" and moved.json()["width"] == 152
    assert api.put("/v1/stores/s2/labels/L-milk", json={"sku": "F-2001", "tag_type": "epd42_bwr"},
                   headers=admin).json()["outcome"] == "created"  # label ids are per store

    listed = api.get("/v1/stores/s1/labels", headers=analyst).json()
    assert listed["total"] == 1 and [(i["label_id"], i["sku"]) for i in listed["items"]] == [("L-milk", "F-2002")]

    assert api.put("/v1/stores/s2/labels/L-x", json={"sku": "A", "tag_type": "epd29_bwr"},
                   headers=manager).json()["detail"]["code"] == "forbidden_store"
    assert api.get("/v1/stores/s2/labels", headers=manager).status_code == 403
    assert api.put("/v1/stores/s1/labels/L-x", json={"sku": "A", "tag_type": "epd29_bwr"},
                   headers=analyst).status_code == 403  # read-only role
    assert api.put("/v1/stores/s1/labels/L-x", json={"sku": "A", "tag_type": "epd75"}, headers=admin).status_code == 422
    assert api.put("/v1/stores/s1/labels/L x", json={"sku": "A", "tag_type": "epd29_bwr"},
                   headers=admin).json()["detail"]["code"] == "invalid_label"

    assert api.delete("/v1/stores/s1/labels/L-milk", headers=manager).status_code == 204
    assert api.delete("/v1/stores/s1/labels/L-milk", headers=manager).json()["detail"]["code"] == "unknown_label"
    assert api.get("/v1/stores/s1/labels", headers=admin).json()["total"] == 0
    assert api.get("/v1/stores/s2/labels", headers=admin).json()["total"] == 1


class ShelfAndScreen(Guide):
    """Everything the store receives, guide cards and label commands, in arrival order."""

    def __init__(self, url: str, store: str) -> None:
        super().__init__(url, store, label_commands_of_store(BRAND, store))

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        expiry = getattr(message.properties, "MessageExpiryInterval", None)
        kind = GuideCard if message.topic.endswith("/card") else LabelCommand
        self.cards.put((message.topic, decode(message.payload, kind), expiry))

    def until_card(self) -> tuple[GuideCard, list[tuple[str, LabelCommand, int | None]]]:
        """The next card and the label commands received before it."""
        before = []
        while True:
            topic, message, expiry = self.cards.get(timeout=10)
            if isinstance(message, GuideCard):
                return message, before
            before.append((topic, message, expiry))


def test_a_member_arrival_flashes_the_labels_of_the_recommended_products(
    start_cloud, mosquitto, make_arrival, faces_dir: Path
):
    api, _ = start_cloud(broker_url=mosquitto.url)
    store = f"sh-{uuid4().hex[:6]}"
    member = api.post("/v1/members", json={"name": "李娜", "phone": "13800000031", "gender": "female",
                                           "preferences": ["香水"], "consent": {"face": True}}).json()["id"]
    photo = (faces_dir / "deepface_id01" / "img1.jpg").read_bytes()
    assert api.post(f"/v1/members/{member}/faces", files={"image": ("f.jpg", photo, "image/jpeg")}).status_code == 201
    picks = [i["sku"] for i in api.get(f"/v1/members/{member}/recommendations", params={"store": store}).json()["items"]]
    labels = {"L-top-front": picks[0], "L-top-end": picks[0], "L-third": picks[2], "L-unrelated": "SK-9999"}
    for label, sku in labels.items():
        assert api.put(f"/v1/stores/{store}/labels/{label}", json={"sku": sku, "tag_type": "epd29_bwr"}).status_code == 200
    api.put("/v1/stores/elsewhere/labels/L-top-front", json={"sku": picks[0], "tag_type": "epd29_bwr"})
    shelf = ShelfAndScreen(mosquitto.url, store)
    edge = transport.make_client(transport.BrokerUrl.parse(mosquitto.url), f"test-edge-{uuid4().hex[:8]}")
    transport.start(edge, transport.BrokerUrl.parse(mosquitto.url))
    topic = topics.arrival(BRAND, store, "edge-01")
    try:
        stranger = make_arrival(faces_dir / "deepface_id05" / "img14.jpg", brand=BRAND, store=store)
        transport.publish(edge, topic, stranger).wait_for_publish(5)
        known = make_arrival(faces_dir / "deepface_id01" / "img2.jpg", brand=BRAND, store=store)
        transport.publish(edge, topic, known).wait_for_publish(5)

        visitor_card, _ = shelf.until_card()
        member_card, flashes_before = shelf.until_card()
        assert visitor_card.member is None and not flashes_before  # nothing flashes for a visitor
        after = [shelf.cards.get(timeout=10) for _ in range(3)]
    finally:
        transport.stop(edge)
        transport.stop(shelf.client)

    assert member_card.member is not None and [r.sku for r in member_card.recommendations] == picks
    assert sorted(command.label for _, command, _ in after) == ["L-third", "L-top-end", "L-top-front"]
    assert shelf.cards.empty()  # not the unrelated label, not the other store's
    for topic_name, command, expiry in after:
        assert topic_name == f"instore/v1/{BRAND}/{store}/esl/{command.label}/cmd"
        assert command.flash == ARRIVAL_FLASH and command.product is None
        assert command.ttl_s == ARRIVAL_FLASH_TTL_S and 0 < expiry <= ARRIVAL_FLASH_TTL_S
        assert command.ts == member_card.ts and (command.brand, command.store) == (BRAND, store)
        product = next(r.name for r in member_card.recommendations if r.sku == labels[command.label])
        assert command.reason == f"李女士到店，推荐 {product}"
