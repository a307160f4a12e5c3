"""The segment portrait page (人群画像, issue 15) in Chromium against the seeded brand: a segment saved
through the API with catalogue dimensions, drawn facet by facet with the numbers the API serves."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Browser

from tests.dashboards.conftest import Dash
from tests.dashboards.harness import open_page, page_pct
from tests.dashboards.test_pages import screenshot, texts

FACETS = ("city_tier", "age_band", "gender", "channel", "tier", "lifecycle")


def _save(dash: Dash, name: str, condition: dict) -> str:
    response = httpx.post(f"{dash.url}/v1/segments", json={"name": name, "condition": condition},
                          headers={"X-API-Key": dash.hq_key}, timeout=30)
    response.raise_for_status()
    return response.json()["id"]


def test_portrait_page_draws_the_segment_against_the_base(dash: Dash, browser: Browser, artifacts: Path) -> None:
    catalogue = dash.api("/v1/segments/dimensions")
    assert catalogue["count"] == len(catalogue["items"]) >= 100
    segment = _save(dash, "高价值护肤客", {"and": [
        {"dim": {"name": "order_count.any.days", "days": 365, "op": ">=", "value": 3}},
        {"dim": {"name": "order_amount.any.days", "days": 365, "op": ">=", "value": 500}},
        {"not": {"dim": {"name": "refunded.any.days", "days": 365}}},
        {"dim": {"name": "city_tier", "op": "in", "value": ["tier1"]}},
        {"dim": {"name": "visits.any.days", "days": 3650, "op": ">=", "value": 0}},
    ]})
    portrait = dash.api(f"/v1/segments/{segment}/portrait")
    assert 0 < portrait["segment"] < portrait["base"]
    for facet in FACETS:
        assert sum(v["segment"] for v in portrait["facets"][facet]) == portrait["segment"]
        assert sum(v["base"] for v in portrait["facets"][facet]) == portrait["base"]

    opened = open_page(browser, dash.url, f"portrait.html?segment={segment}", key=dash.hq_key, viewport=(1440, 1000))
    page = opened.page
    assert page.locator("header h1").inner_text() == "人群画像"
    kpis = dict(zip(texts(page, "#summary .kpi .label"), texts(page, "#summary .kpi .value")))
    assert kpis["人群人数"] == f"{portrait['segment']:,}" and kpis["全体会员"] == f"{portrait['base']:,}"
    assert kpis["可用圈人维度"] == str(catalogue["count"])
    for facet in FACETS:
        rows = page.locator(f'[data-facet="{facet}"] .facet-row[data-value]')
        assert rows.count() == len(portrait["facets"][facet])
        first = portrait["facets"][facet][0]
        row = page.locator(f'[data-facet="{facet}"] .facet-row[data-value="{first["value"]}"]')
        assert row.locator('[data-share="segment"]').inner_text() == page_pct(first["segment_share"])
    assert page.locator('[data-facet="gender"] .facet-row[data-value="female"] .facet-label').inner_text() == "女"
    assert opened.console.errors == []
    screenshot(page, artifacts, "portrait")
    with page.expect_navigation():
        page.click("#lang-switch")
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("header h1").inner_text() == "Segment portrait"
    page.context.close()
