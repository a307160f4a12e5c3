"""The join page (入会, issue 21) on a phone: Debian's Chromium in a 375 px mobile viewport against the
real cloud API, with the one-time code from the simulated SMS gateway. Membership, each marketing
channel and face recognition are separate questions, and what is ticked is what is stored. Leaves
join-page.png and join-page-done.png in the artefacts folder."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from cloud.arrivals import joining, visits
from cloud.arrivals.visits import Visit
from cloud.channels.sms_sim import SimulatedSms
from cloud.runtime import open_cdp
from cloud.settings import Settings
from protocol.messages import Feedback, new_id, now
from tests.dashboards.harness import CloudServer, Console
from tests.dashboards.test_mobile import PHONE

STORE = "st-0001"


@pytest.fixture(scope="module")
def join_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CloudServer, Path, SimulatedSms]]:
    sms = SimulatedSms().start()
    db_path = tmp_path_factory.mktemp("join") / "cloud.db"
    open_cdp(str(db_path)).close()
    server = CloudServer(Settings(db=str(db_path), api_key=None, rate_limit_per_minute=0, dev_open_mode=True,
                                  sms_url=sms.url)).start()
    yield server, db_path, sms
    server.stop()
    sms.stop()


def invitation(db_path: Path) -> tuple[str, str]:
    """A visitor's card invited on the guide screen, as the ingest records it: (token, visit id)."""
    db = open_cdp(str(db_path))
    try:
        visit = Visit(id=new_id(), brand="demo", store=STORE, member_id=None, confidence=0.2, ts=datetime.now(UTC),
                      arrival_event_id=new_id(), device="edge-01", camera="door-1", card_id=new_id())
        visits.record_visit(db, visit)
        token = secrets.token_urlsafe(16)
        feedback = Feedback(feedback_id=new_id(), card_id=visit.card_id, visit_id=visit.id, brand="demo", store=STORE,
                            screen="main", action="invited", invitation=token, ts=now())
        with db.transaction() as tx:
            assert joining.invite(tx, feedback, {"member_id": None, "arrival_event_id": visit.arrival_event_id})
        return token, visit.id
    finally:
        db.close()


def phone_page(browser: Browser, url: str) -> tuple[Page, Console]:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    console = Console()
    page.on("console", console.on_message)
    page.on("pageerror", console.on_error)
    page.goto(url)
    return page, console


def test_a_visitor_joins_on_their_phone_answering_each_question_apart(
    join_cloud, browser: Browser, artifacts: Path
) -> None:
    server, db_path, sms = join_cloud
    token, visit_id = invitation(db_path)
    page, console = phone_page(browser, f"{server.url}/dash/join.html#{token}")
    page.wait_for_selector("#join[data-state=open]")
    assert page.locator("#send-code").is_disabled()
    page.fill("#name", "林晓")
    page.fill("#phone", "13900000031")
    assert page.locator("#send-code").is_disabled()  # membership is asked, not assumed
    page.check("#membership")
    page.check("input[name=marketing][value=sms]")
    page.check("#face")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # one column, no sideways scroll
    page.screenshot(path=str(artifacts / "join-page.png"), full_page=True)
    page.click("#send-code")
    page.wait_for_selector("#join[data-state=code-sent]")
    code = str(sms.messages_to("13900000031")[-1].params["code"])
    page.fill("#code", code)
    page.click("#confirm")
    page.wait_for_selector("#join[data-state^=joined]")
    # no broker here, so no screen answers: the face stays pending, and the page says so
    assert page.locator("#face-status").inner_text() == "人脸登记中…"
    card_no = page.locator("#card-no").inner_text()
    assert card_no.startswith("MC") and len(card_no) == 12
    # polled by Playwright over the protocol: wait_for_function evals its predicate in the page on each
    # animation frame, which the page's CSP (script-src 'self', no unsafe-eval) rightly refuses
    qr = page.locator("#member-qr")
    expect(qr).to_have_js_property("complete", True)
    assert qr.evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=str(artifacts / "join-page-done.png"), full_page=True)
    assert console.errors == []

    db = open_cdp(str(db_path))
    try:
        person = db.scalar("SELECT person_id FROM join_invitations WHERE token_hash = ?", (joining.token_hash(token),))
        assert db.scalar("SELECT member_id FROM visits WHERE id = ?", (visit_id,)) == person
        granted = {r["channel"]: bool(r["granted"]) for r in db.query(
            "SELECT channel, granted FROM marketing_consent WHERE person_id = ?", (person,))}
        assert granted == {"sms": True, "wechat": False, "wecom": False, "email": False}
        assert db.scalar("SELECT face_consent FROM members WHERE id = ?", (person,))
        assert db.scalar("SELECT COUNT(*) FROM commands WHERE name = 'enrol' AND device = 'kiosk-main'") == 1
    finally:
        db.close()
    page.context.close()


def test_an_unknown_qr_code_says_so(join_cloud, browser: Browser) -> None:
    server, _, _ = join_cloud
    page, console = phone_page(browser, f"{server.url}/dash/join.html#{secrets.token_urlsafe(16)}")
    page.wait_for_selector("#join[data-state=invalid]")
    assert page.locator("#problem").is_visible() and page.locator("#ask").is_hidden()
    assert console.besides_refusals(404) == []
    page.context.close()
