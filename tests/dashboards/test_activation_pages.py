"""The HQ campaign page (营销活动效果) and the cohort page (人群效果追踪), issue 20, in Chromium against
the seeded brand: a campaign launched through the API with a holdout shows the API's groups, uplift
with its interval and strata; a segment cohort shows its four horizons against the matched control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Browser

from tests.dashboards.conftest import Dash
from tests.dashboards.harness import open_page, page_pct, page_points
from tests.dashboards.test_pages import screenshot, texts


def _post(dash: Dash, path: str, body: dict) -> dict:
    response = httpx.post(f"{dash.url}{path}", json=body, headers={"X-API-Key": dash.hq_key}, timeout=60)
    response.raise_for_status()
    return response.json()


def test_campaign_and_cohort_pages_show_the_api_figures(dash: Dash, browser: Browser, artifacts: Path) -> None:
    segment = _post(dash, "/v1/segments", {"name": "一年内买过两次", "condition": {
        "dim": {"name": "order_count.any.days", "days": 365, "op": ">=", "value": 2}}})
    template = _post(dash, "/v1/campaigns/templates", {"channel": "sms", "code": "SMS_1", "body": "{surname}{title} 回购礼"})
    _post(dash, f"/v1/campaigns/templates/{template['id']}/approve", {})
    campaign = _post(dash, "/v1/campaigns", {"name": "春季回购", "segment_id": segment["id"], "channel": "sms",
                                             "template_id": template["id"], "holdout_pct": 20})
    launched = _post(dash, f"/v1/campaigns/{campaign['id']}/launch", {})
    results = dash.api(f"/v1/campaigns/{campaign['id']}/results")
    assert launched["audience"] > 0 and results["uplift"] is not None

    opened = open_page(browser, dash.url, f"campaign.html?campaign={campaign['id']}", key=dash.hq_key)
    page = opened.page
    assert page.locator("header h1").inner_text() == "营销活动效果"
    kpis = dict(zip(texts(page, "#summary .kpi .label"), texts(page, "#summary .kpi .value")))
    assert kpis["目标人数"] == f"{launched['audience']:,}" and kpis["对照组人数"] == f"{launched['control']:,}"
    u = results["uplift"]
    sign = "+" if u["estimate"] > 0 else ""
    low, high = (page_points(bound) for bound in u["ci95"])
    assert kpis["提升（95% 置信区间）"] == f"{sign}{page_points(u['estimate'])} pp [{low}, {high}]"
    assert page.locator("#strata tr[data-stratum]").count() == len(results["strata"])
    assert opened.console.errors == []
    screenshot(page, artifacts, "campaign")
    page.context.close()

    start = (datetime.now(UTC) - timedelta(days=200)).isoformat()
    cohort = _post(dash, "/v1/cohorts", {"name": "一年两单 200 天", "segment_id": segment["id"], "start": start})
    followed = dash.api(f"/v1/cohorts/{cohort['id']}")
    assert followed["matched"]["cohort"] > 0
    opened = open_page(browser, dash.url, f"cohort.html?cohort={cohort['id']}", key=dash.hq_key)
    page = opened.page
    assert page.locator("header h1").inner_text() == "人群效果追踪"
    rows = page.locator("#horizons tr[data-days]")
    assert rows.count() == 4
    first = followed["horizons"][0]
    cells = [c.strip() for c in rows.nth(0).locator("td").all_inner_texts()]
    assert cells[1] == page_pct(first["cohort"]["buyer_rate"]) and cells[2] == page_pct(first["control"]["buyer_rate"])
    assert opened.console.errors == []
    screenshot(page, artifacts, "cohort")
    page.context.close()
    # a campaign's own cohort opens on the same page
    opened = open_page(browser, dash.url, f"cohort.html?cohort=campaign:{campaign['id']}", key=dash.hq_key)
    assert opened.page.locator("#horizons tr[data-days]").count() == 4 and opened.console.errors == []
    opened.page.context.close()
