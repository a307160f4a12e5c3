"""Shelf labels show what they are for, through a real Mosquitto (issue 16, item 5): a bound label
is drawn with its product, price and member price as soon as it is bound, and redrawn when a
product import changes any of them or the markdown runner marks it down; the markdown prices
from the imported stock batches and movements, without any manual expiry date."""

from __future__ import annotations

import time
from datetime import timedelta

from cloud import clock
from protocol import transport
from protocol.esl import LabelCommand
from protocol.topics import label_commands_of_store
from tests.cloud.test_cloud_ingest import Guide
from tests.cloud.test_markdown_runner import BRAND, Shelf
from tests.cloud.test_master_data import _example

STORE = "sh-001"  # docs/examples/stores.csv


class StoreShelf(Shelf):
    def __init__(self, url: str) -> None:
        Guide.__init__(self, url, STORE, label_commands_of_store(BRAND, STORE))

    def drawn(self, n: int) -> dict[str, LabelCommand]:
        """The next ``n`` redraws by label, then nothing more for a second (no label drawn twice)."""
        commands = {command.label: command for _, command, _ in self.take(n)}
        time.sleep(1.0)
        assert self.cards.empty() and len(commands) == n
        return commands


def _import(api, kind: str, data: bytes) -> dict:
    response = api.post(f"/v1/master/{kind}", files={"file": (f"{kind}.csv", data)})
    assert response.status_code == 201, response.text
    return response.json()


def _shows(command: LabelCommand) -> tuple:
    assert command.product is not None
    return command.product.sku, command.product.price, command.product.member_price, command.product.badge


def test_bound_labels_are_drawn_and_redrawn_when_their_product_changes(start_cloud, mosquitto) -> None:
    api, runtime = start_cloud(broker_url=mosquitto.url, label_sync_every_s=0.3)
    _import(api, "stores", _example("stores"))
    _import(api, "products", _example("products"))  # SKU-1001 399 (member 359), SKU-1002 299
    shelf = StoreShelf(mosquitto.url)
    try:
        bound = api.put(f"/v1/stores/{STORE}/labels/L-serum", json={"sku": "SKU-1001", "tag_type": "epd29_bwr"})
        assert bound.status_code == 200, bound.text
        first = shelf.drawn(1)["L-serum"]  # drawn on binding, before any price change
        assert _shows(first) == ("SKU-1001", 399, 359, None) and first.reason == "bound"
        assert first.product is not None and first.product.name == "焕肤精华 30ml"

        # a label under a product the catalogue does not have yet is drawn once it is imported
        api.put(f"/v1/stores/{STORE}/labels/L-new", json={"sku": "SKU-3001", "tag_type": "epd154_bw"})
        time.sleep(1.0)
        assert shelf.cards.empty()
        _import(api, "products", "sku,name,list_price,member_price\n"
                                 "SKU-1001,,379,339\nSKU-3001,洁面乳 100ml,59,\n".encode())
        redrawn = shelf.drawn(2)  # the periodic check: price and member price changed, a product arrived
        assert _shows(redrawn["L-serum"]) == ("SKU-1001", 379, 339, None)
        assert _shows(redrawn["L-new"]) == ("SKU-3001", 59, None, None)

        # the same binding again draws nothing; moving the label draws its new product
        api.put(f"/v1/stores/{STORE}/labels/L-serum", json={"sku": "SKU-1001", "tag_type": "epd29_bwr"})
        moved = api.put(f"/v1/stores/{STORE}/labels/L-new", json={"sku": "SKU-1002", "tag_type": "epd154_bw"})
        assert moved.json()["outcome"] == "rebound"
        assert _shows(shelf.drawn(1)["L-new"]) == ("SKU-1002", 299, None, None)
    finally:
        transport.stop(shelf.client)
    stored = dict(runtime.db.rows("SELECT label_id, drawn FROM esl_labels WHERE store = ?", (STORE,)))
    assert '"price":379.0' in stored["L-serum"] and '"sku":"SKU-1002"' in stored["L-new"]


def test_markdown_prices_imported_batches_and_redraws_the_labels(start_cloud, mosquitto) -> None:
    """Batches and movements imported as files; no expiry date set by hand."""
    api, runtime = start_cloud(broker_url=mosquitto.url, label_sync_every_s=0.3, markdown_every_s=0.3,
                               markdown_max_changes_per_day=2)
    _import(api, "stores", _example("stores"))
    _import(api, "products", _example("products"))  # SKU-2001 鲜榨橙汁 18 (member 15)
    shelf = StoreShelf(mosquitto.url)
    try:
        api.put(f"/v1/stores/{STORE}/labels/L-juice", json={"sku": "SKU-2001", "tag_type": "epd29_bwr"})
        assert _shows(shelf.drawn(1)["L-juice"]) == ("SKU-2001", 18, 15, None)

        now = clock.now_local("Asia/Shanghai") + timedelta(seconds=5)  # sales after the batch file was read
        today = now.date()
        batches = _import(api, "batches", (
            "门店编码,商品编码,批次号,到期日,数量\n"
            f"{STORE},SKU-2001,B1,{today + timedelta(days=1)},30\n"
            f"{STORE},SKU-2001,B2,{today + timedelta(days=5)},20\n"
            f"{STORE},SKU-1002,B9,{today - timedelta(days=1)},4\n").encode())  # expired yesterday
        assert batches["written"] == 3 and not batches["quarantined"]
        sold = now.strftime("%Y-%m-%d %H:%M:%S")
        _import(api, "movements", (
            "单号,门店编码,商品编码,发生时间,业务类型,数量,批次号\n"
            f"S-1,{STORE},SKU-2001,{sold},销售,4,B1\nS-2,{STORE},SKU-2001,{sold},报损,1,B1\n"
            f"S-3,{STORE},SKU-2001,{sold},销售,2,B2\n").encode())
        marked = shelf.drawn(1)["L-juice"]  # the runtime's markdown pass, once in this pricing period
    finally:
        transport.stop(shelf.client)
    assert marked.product is not None and 9.0 <= marked.product.price < 18 and marked.reason.startswith("markdown")
    assert marked.product.badge is not None and marked.product.badge.startswith("临期")
    # the member price stays on the label only while it is still the cheaper one
    assert marked.product.member_price == (15 if marked.product.price > 15 else None)

    # a product marked perishable by hand, with neither batches nor a stock export: really no stock data
    assert api.put(f"/v1/stores/{STORE}/markdown/SKU-1001",
                   json={"expires_on": str(today + timedelta(days=3)), "floor_price": 200}).status_code == 204
    plan = {i["sku"]: i for i in api.get(f"/v1/stores/{STORE}/markdown").json()["items"]}
    juice = plan["SKU-2001"]
    assert juice["status"] == "planned" and juice["expires_on"] == str(today + timedelta(days=1))
    assert juice["stock"] == 30 - 4 - 1  # the earliest batch, less its sales and waste since the file
    assert juice["sales_rate"] == 6.0  # the day's sale movements (both batches)
    assert juice["floor_price"] == 9.0 and juice["list_price"] == 18  # no floor given: half the list price
    assert juice["current_price"] == marked.product.price
    assert plan["SKU-1002"]["status"] == "expired"
    assert plan["SKU-1001"]["status"] == "no_stock_data"
