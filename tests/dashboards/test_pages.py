"""The dashboards in Debian's Chromium against the real API on a seeded brand.

Each page: loads with no console error, shows the numbers the API serves (and, for the headline
figures, what the raw rows add up to), switches language, and leaves a screenshot in the
artefacts folder (and in docs/ when INSTORE_UPDATE_DOCS=1, so a test run leaves the tree clean). A store
manager's key opens their store and is refused any other.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from cloud import clock
from cloud.api.auth import create_key
from cloud.runtime import open_cdp
from tests.dashboards.conftest import STORE_A, STORE_B, Dash
from tests.dashboards.harness import open_page, wait_ready

DOCS = Path(__file__).resolve().parents[2] / "docs"


def money(value: float) -> str:
    """The pages' yuan format (zh-CN grouping, whole yuan, halves rounded up like Intl does)."""
    return "¥" + f"{int(Decimal(repr(value)).quantize(Decimal(1), ROUND_HALF_UP)):,}"


def one_decimal(value: float) -> str:
    return f"{Decimal(repr(value)).quantize(Decimal('0.1'), ROUND_HALF_UP):,}"


def screenshot(page: Page, artifacts: Path, name: str) -> None:
    shot = artifacts / f"dashboard-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("INSTORE_UPDATE_DOCS") == "1":
        shutil.copyfile(shot, DOCS / shot.name)


def texts(page: Page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def chart_data(page: Page, chart: str) -> list[float]:
    """The values the ECharts instance in ``#chart`` draws (its first series)."""
    data = page.evaluate(f"echarts.getInstanceByDom(document.getElementById({chart!r})).getOption().series[0].data")
    return [d["value"] if isinstance(d, dict) else d for d in data]


def day_sales_in_db(dash: Dash, store: str | None) -> tuple[float, int]:
    """Paid sales and orders of the seeded last day, straight from the raw orders."""
    start, end = clock.utc_range(dash.data.last, dash.data.last, clock.DEFAULT_TZ)
    where, args = "ts >= ? AND ts < ?", [int(start.timestamp()), int(end.timestamp())]
    if store is not None:
        where, args = where + " AND store = ?", [*args, store]
    db = open_cdp(str(dash.db_path))
    try:
        paid, orders = db.rows(f"SELECT SUM(paid), COUNT(*) FROM orders WHERE {where}", args)[0]
    finally:
        db.close()
    return float(paid), int(orders)


def test_sign_in_lands_each_role_on_its_page(dash: Dash, browser: Browser) -> None:
    opened = open_page(browser, dash.url, "", key=None)
    page = opened.page
    for key, landing in ((dash.manager_key, f"store.html?store={STORE_A}"), (dash.hq_key, "hq.html")):
        page.goto(f"{dash.url}/dash/")
        page.fill("#key", key)
        with page.expect_navigation():
            page.click("button[type=submit]")
        wait_ready(page)
        assert page.url.endswith(landing)
    page.goto(f"{dash.url}/dash/")
    page.fill("#key", "isk_not-a-key")
    page.click("button[type=submit]")
    banner = page.locator(".banner-line[data-kind=unauthorized]")
    banner.wait_for()
    assert "密钥缺失或无效" in banner.inner_text()

    db = open_cdp(str(dash.db_path))
    try:
        device = create_key(db, name="edge box", role="device", store=STORE_A).key
    finally:
        db.close()
    page.fill("#key", device)
    page.click("button[type=submit]")
    page.locator(".banner-line", has_text="设备密钥不能打开看板").wait_for()
    assert page.url.endswith("/dash/")
    assert opened.console.besides_refusals(401) == []
    page.context.close()


def test_store_manager_sees_their_store_with_the_api_numbers(dash: Dash, browser: Browser, artifacts: Path) -> None:
    day = dash.data.last.isoformat()
    opened = open_page(browser, dash.url, f"store.html?store={STORE_A}&day={day}", key=dash.manager_key,
                       viewport=(1440, 1200))
    page = opened.page
    board = dash.api(f"/v1/stores/{STORE_A}/dashboard?day={day}", dash.manager_key)
    health = dash.api(f"/v1/health/stores/{STORE_A}?day={day}", dash.manager_key)

    assert opened.console.errors == []
    assert page.locator("#banner").is_hidden()
    sales, _ = day_sales_in_db(dash, STORE_A)
    assert board["today"]["sales"] == pytest.approx(sales)
    assert page.locator(".kpi[data-metric=sales] .value").inner_text() == money(sales)
    assert page.locator("[data-live=arrivals] .value").inner_text() == f"{board['live']['arrivals_today']:,}"
    assert page.locator(".score.overall .value").inner_text() == one_decimal(health["overall"])
    for sub in health["sub_scores"]:
        assert page.locator(f".score.{sub['name']} .value").inner_text() == one_decimal(sub["score"])
        assert page.locator(f"details[data-sub={sub['name']}] tbody tr[data-metric]").count() == len(sub["metrics"])
    # the operations score's alerts, each with its part of the day's opening hours
    assert page.locator("details[data-sub=operations] [data-incidents] tr[data-alert]").count() == len(health["incidents"])
    assert texts(page, "#assistants tbody tr td:nth-child(2)") == [a["name"] for a in board["assistants"]]
    assert texts(page, "#hot tbody tr td:nth-child(2)") == [p["sku"] for p in board["hot_products"]]
    on_floor = dash.api(f"/v1/stores/{STORE_A}/staff", dash.manager_key)["signed_in"]  # the generated floor's
    assert page.locator("#staff tr[data-signed-in]").count() == len(on_floor)
    assert texts(page, "#staff tbody tr td:nth-child(1)") == [s["name"] or s["assistant"] for s in on_floor]
    alerts = dash.api(f"/v1/alerts?store={STORE_A}&status=open&limit=100", dash.manager_key)
    assert page.locator("#alerts tr[data-alert]").count() == len(alerts) > 0  # the idle screen was flagged
    assert page.locator("#hourly-chart[data-drawn=true] canvas").count() == 1
    assert page.locator("#history-chart[data-drawn=true] canvas").count() == 1
    assert page.locator("#hq-link").is_hidden()
    screenshot(page, artifacts, "store")
    page.context.close()


def test_a_store_manager_acknowledges_an_alert_of_their_store(dash: Dash, browser: Browser) -> None:
    opened = open_page(browser, dash.url, f"store.html?store={STORE_A}&day={dash.data.last}", key=dash.manager_key)
    page = opened.page
    listed = dash.api(f"/v1/alerts?store={STORE_A}&status=open", dash.manager_key)
    alert_id = next(a["id"] for a in listed if a["metric"] != "greeted_share")  # HQ's test looks for that one
    page.locator(f"#alerts tr[data-alert='{alert_id}'] button.ack").click()
    page.locator(f"#alerts tr[data-alert='{alert_id}']").wait_for(state="detached")
    acked = dash.api(f"/v1/alerts?store={STORE_A}&status=acked", dash.manager_key)
    assert alert_id in [a["id"] for a in acked]
    assert opened.console.errors == []
    page.context.close()


def test_the_live_arrivals_counter_follows_new_arrivals(dash: Dash, browser: Browser) -> None:
    opened = open_page(browser, dash.url, f"store.html?store={STORE_A}&day={dash.data.last}&poll=1",
                       key=dash.manager_key)
    counter = opened.page.locator("[data-live=arrivals] .value")
    before = int(counter.inner_text().replace(",", ""))
    at = clock.iso_utc(clock.day_start_utc(dash.data.last, clock.DEFAULT_TZ) + timedelta(hours=12))
    db = open_cdp(str(dash.db_path))
    try:  # what the ingest writes for one more arrival at the door
        db.execute("INSERT INTO arrivals (event_id, brand, store, device, camera, ts, received) "
                         "VALUES ('live-1', 'lumiere', ?, 'edge-01', 'door-1', ?, ?)", (STORE_A, at, at))
        db.execute("INSERT INTO visits (id, brand, store, member_id, confidence, ts, arrival_event_id, device, "
                         "camera, card_id) VALUES ('vlive-1', 'lumiere', ?, NULL, 0, ?, 'live-1', 'edge-01', 'door-1', "
                         "'clive-1')", (STORE_A, at))
    finally:
        db.close()
    expect(counter).to_have_text(f"{before + 1:,}", timeout=10_000)
    assert opened.console.errors == []
    opened.page.context.close()


def test_a_store_manager_cannot_open_another_store(dash: Dash, browser: Browser, artifacts: Path) -> None:
    refused = httpx.get(f"{dash.url}/v1/stores/{STORE_B}/dashboard", headers={"X-API-Key": dash.manager_key})
    assert refused.status_code == 403

    opened = open_page(browser, dash.url, f"store.html?store={STORE_B}", key=dash.manager_key, viewport=(1280, 400))
    page = opened.page
    banner = page.locator(".banner-line[data-kind=forbidden_store]")
    assert banner.count() == 1
    assert "无权查看该门店" in banner.inner_text() and STORE_A in banner.inner_text()
    assert page.locator("main").is_hidden()
    assert page.locator(".kpi").count() == 0
    assert opened.console.besides_refusals(403) == []
    screenshot(page, artifacts, "refused")
    page.context.close()

    live = open_page(browser, dash.url, "live.html", key=dash.manager_key)
    assert live.page.locator(".banner-line[data-kind=forbidden]").count() == 1
    assert live.console.besides_refusals(403) == []
    live.page.context.close()


def test_hq_sees_every_store_ranked_by_region_and_the_anomalies(dash: Dash, browser: Browser, artifacts: Path) -> None:
    day = dash.data.last.isoformat()
    opened = open_page(browser, dash.url, f"hq.html?day={day}", key=dash.hq_key, viewport=(1440, 1100))
    page = opened.page
    ranking = dash.api(f"/v1/health/stores?day={day}")
    alerts = dash.api("/v1/alerts?status=open&limit=200")

    assert opened.console.errors == []
    assert page.locator("#banner").is_hidden()
    rows = page.locator("#ranking tbody tr[data-store]")
    assert rows.count() == len(dash.data.stores) == len(ranking["stores"])
    shown = [rows.nth(i).get_attribute("data-store") for i in range(rows.count())]
    assert shown == [s["store"] for s in ranking["stores"]]
    top = ranking["stores"][0]
    assert rows.first.locator("td").nth(4).inner_text() == one_decimal(top["overall"])
    regions = sorted({s["region"] for s in ranking["stores"]})
    assert sorted(texts(page, "#regions tbody tr td:first-child")) == regions
    assert page.locator("#anomalies tr[data-alert]").count() == len(alerts)
    planted = next(a for a in alerts if a["store"] == STORE_A and a["metric"] == "greeted_share")  # idle screen
    row = page.locator(f"#anomalies tr[data-alert='{planted['id']}']").inner_text()
    assert next(s["name"] for s in ranking["stores"] if s["store"] == STORE_A) in row and "接待率" in row
    assert page.locator("#region-chart[data-drawn=true] canvas").count() == 1
    screenshot(page, artifacts, "hq")

    # drill down: the store's name opens its own page, with HQ's key
    with page.expect_navigation():
        page.locator(f"#ranking tr[data-store='{STORE_B}'] a").click()
    wait_ready(page)
    assert f"store={STORE_B}" in page.url
    assert page.locator("#banner").is_hidden() and page.locator(".kpi").count() > 0
    assert page.locator("#hq-link").is_visible()
    assert opened.console.errors == []
    page.context.close()


def test_the_big_screen_shows_the_brands_day(dash: Dash, browser: Browser, artifacts: Path) -> None:
    day = dash.data.last.isoformat()
    opened = open_page(browser, dash.url, f"live.html?day={day}", key=dash.hq_key, viewport=(1920, 1080))
    page = opened.page
    live = dash.api(f"/v1/brand/live?day={day}")
    sales, orders = day_sales_in_db(dash, None)

    assert opened.console.errors == []
    assert live["sales"] == pytest.approx(sales) and live["orders"] == orders
    assert page.locator("#sales").inner_text() == money(sales)
    assert page.locator("[data-kpi='live.orders'] .big").inner_text() == f"{orders:,}"
    assert page.locator("#target").inner_text() == money(live["target"])
    assert texts(page, "#live-hot tbody tr td:first-child") == [p["name"] for p in live["hot_products"][:8]]
    assert texts(page, "#deals tbody tr td:first-child") == [d["name"] for d in live["member_deals"][:8]]
    for chart in ("hour-chart", "channel-chart", "stores-chart"):
        assert page.locator(f"#{chart}[data-drawn=true] canvas").count() == 1
    assert chart_data(page, "hour-chart") == [h["sales"] for h in live["by_hour"]]
    assert chart_data(page, "channel-chart") == [c["sales"] for c in live["by_channel"]]
    assert len(live["by_channel"]) > 1  # store and online channels
    # the wall is exactly one screen: nothing scrolls, no panel cuts its content off
    assert page.evaluate("document.documentElement.scrollHeight") <= 1080
    clipped = "[...document.querySelectorAll('.panel')].filter(p => p.scrollHeight > p.clientHeight).length"
    assert page.evaluate(clipped) == 0
    screenshot(page, artifacts, "live")
    page.context.close()


@pytest.mark.parametrize("path", [f"store.html?store={STORE_A}", "hq.html", "live.html"], ids=["store", "hq", "live"])
def test_language_switch_changes_the_labels_and_is_remembered(dash: Dash, browser: Browser, path: str) -> None:
    key = dash.manager_key if path.startswith("store") else dash.hq_key
    joined = "&" if "?" in path else "?"
    opened = open_page(browser, dash.url, f"{path}{joined}day={dash.data.last}", key=key)
    page = opened.page
    heading = page.locator("header h1 [data-i18n], header h1[data-i18n]").first
    zh = heading.inner_text()
    assert page.locator("#lang-switch").inner_text() == "English"
    with page.expect_navigation():
        page.click("#lang-switch")
    wait_ready(page)
    en = heading.inner_text()
    assert en != zh and en in {"Store dashboard", "HQ overview", "Brand live sales"}
    assert page.locator("#lang-switch").inner_text() == "中文"
    assert page.evaluate("document.documentElement.lang") == "en"
    page.reload()
    wait_ready(page)
    assert heading.inner_text() == en  # kept in localStorage
    assert opened.console.errors == []
    page.context.close()


@pytest.mark.parametrize(("failure", "kind", "words"), [
    ("abort", "network", "无法连接服务器"),
    (500, "server", "服务器出错"),
    (401, "unauthorized", "密钥缺失或无效"),
], ids=["network", "server", "unauthorized"])
def test_api_failures_show_a_banner_not_a_blank_page(dash: Dash, browser: Browser, failure: object, kind: str,
                                                     words: str) -> None:
    context = browser.new_context()
    context.add_init_script(f"sessionStorage.setItem('instore.dash.key', {dash.hq_key!r})")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if failure == "abort":
        page.route("**/v1/brand/live*", lambda route: route.abort())
    else:
        body = '{"detail": {"code": "boom", "message": "failed"}}'
        page.route("**/v1/brand/live*", lambda route: route.fulfill(status=failure, body=body,
                                                                     content_type="application/json"))
    page.goto(f"{dash.url}/dash/live.html")
    wait_ready(page)
    banner = page.locator(f".banner-line[data-kind={kind}]")
    assert banner.count() == 1 and words in banner.inner_text()
    assert errors == []  # no uncaught exception: the failure was handled
    context.close()
