"""HQ's alert owners page in Chromium against the real API (issue 17): an owner added, edited and
removed through the form and the table lands in ``/v1/alerts/owners`` exactly so."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.dashboards.conftest import STORE_A, Dash
from tests.dashboards.harness import open_page, wait_ready
from tests.dashboards.test_pages import screenshot


def test_hq_adds_edits_and_removes_an_owner(dash: Dash, browser: Browser, artifacts: Path) -> None:
    opened = open_page(browser, dash.url, "owners.html", key=dash.hq_key)
    page = opened.page
    form = page.locator("#owner-form")
    form.locator("select[name=scope]").select_option("store")
    form.locator("input[name=scope_id]").fill(STORE_A)
    form.locator("input[name=person]").fill("王店长")
    form.locator("select[name=channel]").select_option("wecom_app")
    form.locator("input[name=address]").fill("wangdz")
    form.locator("select[name=min_severity]").select_option("critical")
    form.locator("#owner-save").click()
    wait_ready(page)
    (owner,) = [o for o in dash.api("/v1/alerts/owners") if o["person"] == "王店长"]
    assert (owner["scope"], owner["scope_id"], owner["level"], owner["channel"], owner["min_severity"],
            owner["mute"]) == ("store", STORE_A, 0, "wecom_app", "critical", None)
    row = page.locator(f"#owners tr[data-owner='{owner['id']}']")
    expect(row).to_contain_text("wangdz")

    # edit: level 1, muted at night
    row.locator("button[data-action=edit]").click()
    expect(form.locator("input[name=address]")).to_have_value("wangdz")
    form.locator("input[name=level]").fill("1")
    form.locator("input[name=mute]").fill("22:00-08:00")
    form.locator("#owner-save").click()
    wait_ready(page)
    expect(row).to_contain_text("22:00-08:00")
    edited = next(o for o in dash.api("/v1/alerts/owners") if o["id"] == owner["id"])
    assert (edited["level"], edited["mute"], edited["person"]) == (1, "22:00-08:00", "王店长")
    screenshot(page, artifacts, "owners")

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button[data-action=remove]").click()
    expect(row).to_have_count(0)
    assert owner["id"] not in [o["id"] for o in dash.api("/v1/alerts/owners")]
    assert opened.console.errors == []
    page.context.close()
