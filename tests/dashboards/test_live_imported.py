"""The brand's live sales screen on a brand's own data (issue 16, item 5): stores, catalogue and day
targets uploaded as files, orders posted as a signed stream, and the screen in Chromium shows the
day's sales and traffic targets and the member prices of what is selling and of the member deals."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from cloud import clock
from cloud.api.auth import create_key
from cloud.cdp.imports import stream
from cloud.runtime import open_cdp
from cloud.settings import Settings
from tests.dashboards.harness import CloudServer, open_page
from tests.dashboards.test_pages import money, screenshot, texts

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
SECRET = "pos-secret-for-the-live-screen-0123"


@pytest.fixture
def imported(tmp_path: Path) -> Iterator[tuple[str, str, dict]]:
    """A cloud whose only data came in through the brand's entry points: its URL, an HQ key, /v1/brand/live."""
    db = open_cdp(str(tmp_path / "cloud.db"))
    try:
        key = create_key(db, name="hq", role="hq_admin").key
    finally:
        db.close()
    settings = Settings(db=str(tmp_path / "cloud.db"), api_key=None, rate_limit_per_minute=0,
                        order_channel_secrets={"pos": SECRET})
    server = CloudServer(settings).start()
    today = clock.now_local(clock.DEFAULT_TZ).date().isoformat()
    targets = f"门店编码,日期,销售目标,客流目标,转化率目标\nsh-001,{today},42000,380,18%\nhz-002,{today},21000,200,0.2\n"
    try:
        with httpx.Client(base_url=server.url, timeout=30, headers={"X-API-Key": key}) as client:
            for kind, data in (("stores", (EXAMPLES / "stores.csv").read_bytes()),
                               ("products", (EXAMPLES / "products.csv").read_bytes()), ("targets", targets.encode())):
                response = client.post(f"/v1/master/{kind}", files={"file": (f"{kind}.csv", data)})
                assert response.status_code == 201, response.text
            now = datetime.now(UTC).isoformat()
            body = json.dumps({"orders": [
                {"order_no": "L-1", "store": "sh-001", "ts": now, "paid": 758.0,
                 "lines": [{"sku": "SKU-1001", "qty": 2, "price": 379.0}]},
                {"order_no": "L-2", "store": "hz-002", "ts": now, "paid": 54.0,
                 "lines": [{"sku": "SKU-2001", "qty": 3, "price": 18.0}]},
            ]}).encode()
            stamp = str(int(time.time()))
            posted = client.post("/v1/orders", content=body, headers={
                "X-Instore-Channel": "pos", "X-Instore-Timestamp": stamp, "Content-Type": "application/json",
                "X-Instore-Signature": stream.signature(SECRET, stamp, body)})
            assert posted.status_code == 200 and posted.json()["orders"] == 2, posted.text
            live = client.get("/v1/brand/live").json()
        yield server.url, key, live
    finally:
        server.stop()


def test_the_live_screen_shows_imported_targets_and_member_prices(imported, browser: Browser, artifacts: Path) -> None:
    url, key, live = imported
    stores = {s["store"]: s for s in live["stores"]}
    assert live["target"] == 63000 and live["traffic_target"] == 580 and live["sales"] == 812
    assert (stores["sh-001"]["target"], stores["sh-001"]["traffic_target"], stores["sh-001"]["conversion_target"]) == (
        42000, 380, 0.18)
    assert stores["hz-002"]["conversion_target"] == 0.2
    assert {p["sku"]: p["member_price"] for p in live["hot_products"]} == {"SKU-2001": 15, "SKU-1001": 359}
    assert {d["sku"]: (d["price"], d["member_price"]) for d in live["member_deals"]} == {
        "SKU-1001": (399, 359), "SKU-2001": (18, 15)}

    opened = open_page(browser, url, "live.html", key=key, viewport=(1920, 1080))
    page = opened.page
    assert opened.console.errors == []
    assert page.locator("#target").inner_text() == money(63000)
    assert page.locator("[data-kpi='live.arrivals'] .big").inner_text() == "0 / 580"
    assert texts(page, "#live-hot tbody tr td:nth-child(4)") == [money(p["member_price"]) for p in live["hot_products"]]
    assert texts(page, "#deals tbody tr td:nth-child(3)") == [money(359), money(15)]
    clipped = "[...document.querySelectorAll('.panel')].filter(p => p.scrollHeight > p.clientHeight).length"
    assert page.evaluate(clipped) == 0
    screenshot(page, artifacts, "live-imported")
    page.context.close()
