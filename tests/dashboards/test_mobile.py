"""A store manager's page on a phone (issue 17): 375 px wide in Chromium's mobile emulation, opened
from an alert's link straight onto the store, day and metric it is about; nothing wider than the
screen but the tables that scroll inside their panel. Leaves dashboard-store-mobile.png in the
artefacts folder (and in docs/ with INSTORE_UPDATE_DOCS=1)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser

from tests.dashboards.conftest import STORE_A, Dash
from tests.dashboards.harness import KEY_STORAGE, Console, wait_ready
from tests.dashboards.test_pages import screenshot

PHONE = {"viewport": {"width": 375, "height": 812}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "user_agent": "Mozilla/5.0 (Linux; Android 12; Pixel 5) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/120.0 Mobile Safari/537.36 wxwork/4.1"}


def test_an_alert_link_opens_the_store_day_and_metric_on_a_phone(dash: Dash, browser: Browser, artifacts: Path) -> None:
    listed = dash.api(f"/v1/alerts?store={STORE_A}&status=all&limit=100", dash.manager_key)
    alert = next(a for a in listed if a["metric"] == "greeted_share")  # the idle screen's alert
    day = alert["ts"][:10]
    context = browser.new_context(**PHONE)
    context.add_init_script(f"sessionStorage.setItem({KEY_STORAGE!r}, {dash.manager_key!r});")
    page = context.new_page()
    console = Console()
    page.on("console", console.on_message)
    page.on("pageerror", console.on_error)
    # the link an alert message carries (cloud.health.alerts.Alert.link)
    page.goto(f"{dash.url}/dash/store.html?store={STORE_A}&day={day}&metric={alert['metric']}&alert={alert['id']}")
    wait_ready(page)
    assert console.errors == []
    assert page.locator("#store-day").inner_text() == day  # the alert's day, not today
    assert page.locator("#focus").is_visible()
    assert page.locator(f"#alerts tr[data-alert='{alert['id']}'].focused").count() == 1
    focused = page.locator(f"#explain tr[data-metric='{alert['metric']}']")
    if focused.count():  # a scored metric: its sub-score is open and its row marked
        assert focused.first.get_attribute("class") == "focused" and focused.first.is_visible()
    # one column at 375 px: the page never scrolls sideways, panels fit the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    widths = page.evaluate("[...document.querySelectorAll('main > .panel:not([hidden])')]"
                           ".map((p) => p.getBoundingClientRect().width)")
    assert widths and all(w <= 375 for w in widths)
    kpi = page.locator(".kpi").first.bounding_box()
    assert kpi is not None and kpi["width"] < 375 / 2  # two KPI cards a row
    assert page.locator("#hourly-chart[data-drawn=true] canvas").count() == 1
    screenshot(page, artifacts, "store-mobile")
    context.close()
