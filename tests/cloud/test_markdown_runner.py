"""Perishables markdown in the running cloud, through a real Mosquitto: a product nearing expiry
with too much stock gets a lower price on its labels' redraw commands, never under the floor,
at most N changes per store-local day, and the store's plan is readable through the API."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import paho.mqtt.client as mqtt

from cloud import clock
from cloud.pricing import markdown_runner
from cloud.pricing.registry import PRICE_TTL_S
from protocol import transport
from protocol.codec import decode
from protocol.esl import LabelCommand
from protocol.topics import label_commands_of_store
from tests.cloud.test_cloud_ingest import Guide
from tests.cloud.test_hq_api import _keys

BRAND = "lumiere"
STORE = "s1"  # the test keys' store manager's store
SKU, LIST, FLOOR = "F-milk", 19.9, 10.0
MAX_CHANGES = 2


class Shelf(Guide):
    """Every label command published for one store (the guide-screen stand-in, listening to labels)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, STORE, label_commands_of_store(BRAND, STORE))

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        expiry = getattr(message.properties, "MessageExpiryInterval", None)
        self.cards.put((message.topic, decode(message.payload, LabelCommand), expiry))

    def take(self, n: int, timeout: float = 10) -> list[tuple[str, LabelCommand, int | None]]:
        return [self.cards.get(timeout=timeout) for _ in range(n)]


def _stock(db, today: date) -> None:
    """A week of 3 sold a day, and 15 on the shelf today with three selling days left: too many at list price."""
    db.execute("INSERT INTO products (sku, name, category, price, popularity, is_new) VALUES (?, ?, ?, ?, 0, 0)",
               (SKU, "鲜牛奶 950ml", "乳品", LIST))
    for back in range(6, 0, -1):
        db.execute("INSERT INTO stock_days VALUES (?, ?, ?, 10, 0, 3, 0, 0)",
                   (STORE, (today - timedelta(days=back)).isoformat(), SKU))
    db.execute("INSERT INTO stock_days VALUES (?, ?, ?, 15, 0, 0, 0, 0)", (STORE, today.isoformat(), SKU))


def test_a_perishable_nearing_expiry_is_marked_down_on_its_labels(start_cloud, mosquitto):
    api, runtime = start_cloud(broker_url=mosquitto.url, markdown_every_s=0.3, markdown_max_changes_per_day=MAX_CHANGES)
    keys = _keys(api)
    admin, manager = keys["hq_admin"], keys["store_manager"]
    assert api.post("/v1/stores", json={"id": STORE, "brand": BRAND, "name": "静安店"}, headers=admin).status_code == 201
    today = clock.now_local("Asia/Shanghai").date()
    _stock(runtime.db, today)
    for label, sku in (("L-milk-front", SKU), ("L-milk-end", SKU), ("L-bread", "F-bread")):
        api.put(f"/v1/stores/{STORE}/labels/{label}", json={"sku": sku, "tag_type": "epd29_bwr"}, headers=admin)
    shelf = Shelf(mosquitto.url)
    try:
        set_it = api.put(f"/v1/stores/{STORE}/markdown/{SKU}", headers=manager,
                         json={"expires_on": (today + timedelta(days=2)).isoformat(), "floor_price": FLOOR})
        assert set_it.status_code == 204, set_it.text

        first = shelf.take(2)  # the runtime's own periodic pass
        time.sleep(1.0)  # three more passes in the same pricing period: no second change
        assert shelf.cards.empty()

        # the later pricing periods until expiry and a day beyond, hour by hour (stock export unchanged)
        start = datetime.now(UTC)
        later = [c for hour in range(1, 96) for c in runtime.markdown.run_once(start + timedelta(hours=hour))]
        more = shelf.take(2 * len(later))
        assert shelf.cards.empty()
    finally:
        transport.stop(shelf.client)

    assert sorted(command.label for _, command, _ in first) == ["L-milk-end", "L-milk-front"]  # not the bread
    price = first[0][1].product.price
    for topic, command, expiry in first:
        assert topic == f"instore/v1/{BRAND}/{STORE}/esl/{command.label}/cmd"
        assert command.product.sku == SKU and FLOOR <= command.product.price < LIST
        assert command.product.badge.startswith("临期") and command.ttl_s == PRICE_TTL_S and 0 < expiry <= PRICE_TTL_S
    by_change = [price] + [command.product.price for _, command, _ in more[::2]]  # two labels per change
    assert sorted(command.label for _, command, _ in more) == sorted(["L-milk-end", "L-milk-front"] * len(later))
    recorded = runtime.db.rows("SELECT day, new_price FROM price_changes WHERE store = ? AND sku = ? ORDER BY id",
                                     (STORE, SKU))
    assert [p for _, p in recorded] == by_change
    assert all(p >= FLOOR for p in by_change) and by_change == sorted(set(by_change), reverse=True)  # only down
    # step by step down to the floor as expiry nears: five or six pricing periods are left (the
    # afternoon or the morning in Shanghai when the test runs), so at least three prices
    assert len(by_change) >= 3 and by_change[-1] == FLOOR
    per_day: dict[str, int] = {}
    for day, _ in recorded:
        per_day[day] = per_day.get(day, 0) + 1
    assert max(per_day.values()) <= MAX_CHANGES and len(per_day) >= 2

    # two sold at the till after the first markdown, one before it: only those two count as markdown loss
    first_at = runtime.db.scalar("SELECT MIN(ts) FROM price_changes")
    sold_at = int(datetime.fromisoformat(first_at).timestamp())
    for ts, qty in ((sold_at - 60, 1), (sold_at + 1, 2)):
        runtime.db.execute("INSERT INTO order_lines (order_id, member_id, channel, store, ts, sku, category, qty, "
                                 "price, amount) VALUES (?, NULL, 'pos', ?, ?, ?, '乳品', ?, ?, ?)",
                                 (f"o-{ts}", STORE, ts, SKU, qty, by_change[0], qty * by_change[0]))
    day = clock.local_day_of_epoch(sold_at + 1, "Asia/Shanghai")
    losses = markdown_runner.markdown_losses(runtime.db, STORE, today, today + timedelta(days=3))
    assert losses == {day: round(2 * (LIST - by_change[0]), 2)}

    plan = api.get(f"/v1/stores/{STORE}/markdown", headers=manager)
    assert plan.status_code == 200, plan.text
    item = plan.json()["items"][0]
    assert (item["sku"], item["status"], item["list_price"], item["floor_price"]) == (SKU, "planned", LIST, FLOOR)
    assert item["stock"] == 15 and item["sales_rate"] > 0 and item["current_price"] == FLOOR  # the last change
    assert [c["new_price"] for c in plan.json()["changes_today"]] == [p for d, p in recorded if d == today.isoformat()]
    assert api.get("/v1/stores/s2/markdown", headers=manager).status_code == 403
    assert api.put(f"/v1/stores/{STORE}/markdown/{SKU}", headers=keys["hq_analyst"],
                   json={"expires_on": today.isoformat(), "floor_price": FLOOR}).status_code == 403
