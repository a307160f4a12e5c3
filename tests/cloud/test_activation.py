"""Activation (issue 20): consent per channel, the checks every send makes and their recorded
reasons, the stratified holdout, no duplicates after a sender dies mid-campaign, unsubscribes by SMS
reply and link, delivery receipts, the WeChat adapter, and the campaign API with its results."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from cloud.activation import audience, campaigns, consent
from cloud.activation.sender import CampaignSender
from cloud.cdp import segments, survivorship
from cloud.channels.notice import Notice, SmsChannel
from cloud.channels.sms import SmsSender
from cloud.channels.sms_sim import SimulatedSms
from cloud.channels.wechat import WeChatRefused, WeChatSubscribeChannel
from cloud.channels.wechat_sim import SimulatedWeChat
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.errors import Conflict
from cloud.synthetic import campaign_brand

NOON_SHANGHAI = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, 23:00 the day before in New York


@pytest.fixture
def sms() -> SimulatedSms:
    sim = SimulatedSms(per_phone_per_minute=100).start()
    yield sim
    sim.stop()


def _people(db: Database) -> None:
    ts = iso(NOON_SHANGHAI - timedelta(days=100))
    with db.transaction() as tx:
        tx.executemany("INSERT INTO stores (id, brand, name, city, created, timezone) VALUES (?, 'b', ?, '上海', ?, ?)",
                       [("sh", "上海店", ts, "Asia/Shanghai"), ("ny", "纽约店", ts, "America/New_York")])
        people = [("p-ok", "sh", "13900000001"), ("p-noconsent", "sh", "13900000002"), ("p-supp", "sh", "13900000003"),
                  ("p-night", "ny", "13900000004"), ("p-nophone", "sh", None), ("p-email-only", "sh", "13900000006")]
        for pid, store, phone in people:
            tx.execute("INSERT INTO members (id, source, source_key, name, gender, tier, created, home_store) "
                       "VALUES (?, 'crm', ?, '王芳', 'F', '金卡', ?, ?)", (pid, pid, ts, store))
            if phone:
                tx.execute("INSERT INTO identifiers (member_id, kind, value, created) VALUES (?, 'phone', ?, ?)",
                           (pid, phone, ts))
            tx.execute("INSERT INTO person_stats (member_id, orders, ltv, lifecycle, value_tier, top_categories, "
                       "updated) VALUES (?, 1, 100, 'active', 'high', '[]', ?)", (pid, ts))
        survivorship.store(tx)  # the stats planted as the tag refresh would have stored them
    for pid in ("p-ok", "p-supp", "p-night", "p-nophone"):
        consent.set_consent(db, pid, "sms", True, source="counter", actor="test", now=NOON_SHANGHAI)
    consent.set_consent(db, "p-email-only", "email", True, source="form", actor="test", now=NOON_SHANGHAI)
    consent.suppress(db, "phone", "13900000003", reason="complained", actor="test")


def _campaign(db: Database, *, holdout: float = 0, cap: int = 2, name: str = "关怀") -> dict:
    segment = segments.save(db, "active", segments.Condition.parse({"lifecycle": ["active"]}), actor="test")
    template = campaigns.create_template(db, channel="sms", code="SMS_1", body="{surname}{title} 您好 {link}",
                                         params=["surname", "title"], actor="test")
    campaign = campaigns.create(db, name=name, segment_id=segment["id"], channel="sms", template_id=template["id"],
                                holdout_pct=holdout, weekly_cap=cap, start_at=NOON_SHANGHAI, actor="test")
    with pytest.raises(Conflict):
        campaigns.launch(db, campaign["id"], now=NOON_SHANGHAI)  # the template is not approved yet
    campaigns.approve_template(db, template["id"], actor="hq")
    return campaigns.launch(db, campaign["id"], now=NOON_SHANGHAI)


def _launched(db: Database, *, persons: int, holdout_pct: int) -> tuple[datetime, campaign_brand.CampaignBrand]:
    """A generated brand's segment with an approved SMS campaign launched now: when, and the brand."""
    now = utcnow()
    brand = campaign_brand.generate(db, persons=persons, now=now, night_share=0)
    template = campaigns.create_template(db, channel="sms", code="SMS_2", body="{name}", params=["name"], actor="t")
    campaigns.approve_template(db, template["id"], actor="t")
    campaign = campaigns.create(db, name="c", segment_id=brand.segment_id, channel="sms",
                                template_id=template["id"], holdout_pct=holdout_pct, start_at=now, actor="t")
    campaigns.launch(db, campaign["id"], now=now)
    return now, brand


def _sender(db: Database, url: str) -> CampaignSender:
    return CampaignSender(db, {"sms": SmsChannel(SmsSender(url, "品牌"), "SMS_ALERT")}, workers=4)


def test_every_send_checks_consent_suppression_address_quiet_hours_and_cap(db: Database, sms: SimulatedSms) -> None:
    _people(db)
    campaign = _campaign(db, cap=1)
    sender = _sender(db, sms.url)
    tally = sender.run(now=NOON_SHANGHAI)
    assert tally.sent == 1 and [m.phone for m in sms.sent] == ["13900000001"]
    assert sms.sent[0].template == "SMS_1" and sms.sent[0].params == {"surname": "王", "title": "女士"}
    assert sms.sent[0].out_id == f"{campaign['id']}:p-ok"  # the idempotency key travels as OutId
    rows = {r["person_id"]: r for r in db.query("SELECT * FROM marketing_sends WHERE campaign_id = ?",
                                               (campaign["id"],))}
    assert {p: (r["status"], r["reason"]) for p, r in rows.items()} == {
        "p-ok": ("sent", None), "p-noconsent": ("skipped", "no_consent"), "p-supp": ("skipped", "suppressed"),
        "p-night": ("pending", "deferred:quiet_hours"), "p-nophone": ("skipped", "no_address"),
        "p-email-only": ("skipped", "no_consent")}
    # New York's quiet hours end at 09:00 there: the send waits until then and goes
    assert rows["p-night"]["due"] == iso(datetime(2026, 3, 2, 14, 0, tzinfo=UTC))
    sender.run(now=datetime(2026, 3, 2, 14, 1, tzinfo=UTC))
    assert [m.phone for m in sms.sent] == ["13900000001", "13900000004"]
    # a second campaign the same week: the weekly cap (1) holds the person back
    second = _campaign(db, cap=1, name="第二波")
    sender.run(now=datetime(2026, 3, 3, 2, 0, tzinfo=UTC))  # 10:00 the next day in Shanghai
    reasons = dict(db.rows("SELECT person_id, reason FROM marketing_sends WHERE campaign_id = ?", (second["id"],)))
    assert reasons["p-ok"] == "frequency_cap" and len(sms.sent) == 2
    assert campaigns.get(db, campaign["id"])["skipped"] == {"no_consent": 2, "no_address": 1, "suppressed": 1}
    sender.close()


def test_holdout_is_deterministic_and_stratified() -> None:
    strata = {f"p{i}": ("high|active" if i < 1000 else "low|dormant") for i in range(3000)}
    groups = campaigns.assign(strata, "salt", 10)
    assert groups == campaigns.assign(dict(reversed(list(strata.items()))), "salt", 10)
    held = Counter(strata[p] for p, g in groups.items() if g == "control")
    assert held == {"high|active": 100, "low|dormant": 200}
    assert groups != campaigns.assign(strata, "other", 10)


def test_a_sender_killed_mid_batch_sends_nothing_twice(db: Database, sms: SimulatedSms) -> None:
    now, brand = _launched(db, persons=300, holdout_pct=10)
    first = _sender(db, sms.url)
    stop = threading.Event()
    original = first.channels["sms"].send
    count = Counter()

    def send_then_die(address: str, notice: Notice) -> str:  # the process dies after its 50th request
        count["n"] += 1
        if count["n"] >= 50:
            stop.set()
        return original(address, notice)

    first.channels["sms"].send = send_then_die  # type: ignore[method-assign]
    first.run_once(now=now, stop=stop)
    first.close()
    stranded = db.scalar("SELECT COUNT(*) FROM marketing_sends WHERE status = 'sending'")
    assert stranded > 0 and 0 < len(sms.sent) < stranded
    second = _sender(db, sms.url)
    settled = second.reconcile(stale_s=0)
    assert settled["found"] == len(sms.sent) and settled["found"] + settled["resend"] == stranded
    second.run(now=now)
    second.close()
    keys = Counter(m.out_id for m in sms.sent)
    assert max(keys.values()) == 1
    assert len(keys) == db.scalar("SELECT COUNT(*) FROM marketing_sends WHERE status = 'sent'")
    assert all(brand.phones[m.phone] in brand.consented for m in sms.sent)


def test_two_senders_on_the_same_due_rows_send_each_once(db: Database, sms: SimulatedSms) -> None:
    """Two cloud processes run the campaign-send job at once (or a test beside the scheduler): both
    read the same due rows, each row is claimed by one of them only (its claim checks it is still
    pending), so no phone gets the message twice."""
    now = utcnow()
    brand = campaign_brand.generate(db, persons=300, now=now, night_share=0)
    template = campaigns.create_template(db, channel="sms", code="SMS_3", body="{name}", params=["name"], actor="t")
    campaigns.approve_template(db, template["id"], actor="t")
    campaign = campaigns.create(db, name="c", segment_id=brand.segment_id, channel="sms",
                                template_id=template["id"], holdout_pct=10, start_at=now, actor="t")
    campaigns.launch(db, campaign["id"], now=now)
    senders = [_sender(db, sms.url) for _ in range(2)]
    start = threading.Barrier(2)

    def run(sender: CampaignSender) -> None:
        start.wait()
        sender.run(now=now)

    threads = [threading.Thread(target=run, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in senders:
        s.close()
    per_phone = Counter(m.phone for m in sms.sent)
    assert per_phone and max(per_phone.values()) == 1
    assert len(per_phone) == db.scalar("SELECT COUNT(*) FROM marketing_sends WHERE status = 'sent'")


def test_unsubscribe_by_sms_reply_and_by_link_and_delivery_receipts(start_cloud, sms: SimulatedSms) -> None:
    client, runtime = start_cloud(sms_url=sms.url)
    db = runtime.db
    _people(db)
    campaign = _campaign(db)
    runtime.campaigns.run(now=NOON_SHANGHAI)
    assert len(sms.messages_to("13900000001")) == 1
    # delivery receipts (SmsReport) mark the send delivered
    biz = sms.sent[0].biz_id
    answer = client.post("/callbacks/aliyun/sms-report", json=[{"biz_id": biz, "success": True, "err_code": "DELIVERED",
                                                               "phone_number": "13900000001"}])
    assert answer.json() == {"code": 0, "msg": "成功"}
    assert db.scalar("SELECT status FROM marketing_sends WHERE receipt = ?", (biz,)) == "delivered"
    # the member answers 退订: SMS consent withdrawn, logged
    up = [{"phone_number": "13900000001", "send_time": "2026-03-02 12:01:00", "content": " td ", "sign_name": "品牌",
           "dest_code": "1234", "sequence_id": 1}]
    assert client.post("/callbacks/aliyun/sms-up", json=up).json() == {"code": 0, "msg": "成功"}
    assert client.get("/v1/marketing/consent/p-ok").json()["sms"]["granted"] is False
    assert db.scalar("SELECT how FROM consent_log WHERE person_id = 'p-ok' ORDER BY id DESC LIMIT 1") == "sms_reply"
    # the link in a message withdraws that channel only; a forged link is refused
    token = runtime.campaigns._tokens.token("p-night", "sms")
    assert client.get(f"/u/{token}").status_code == 200
    assert client.get("/v1/marketing/consent/p-night").json()["sms"]["granted"] is False
    assert client.get(f"/u/{token[:-1]}x").status_code == 422
    assert campaigns.get(db, campaign["id"])["status"] == "running"


def test_campaign_api_and_results_with_uplift(start_cloud) -> None:
    client, runtime = start_cloud()
    db = runtime.db
    now = utcnow()
    brand = campaign_brand.generate(db, persons=2000, now=now, night_share=0)
    assert brand.as_drawn == {"stage": 1.0, "tier": 1.0}  # the tags computed every drawn stage and tier
    t = client.post("/v1/campaigns/templates", json={"channel": "sms", "code": "SMS_9", "body": "{name} {link}",
                                                      "params": ["name"]}).json()
    body = {"name": "回购", "segment_id": brand.segment_id, "channel": "sms", "template_id": t["id"],
            "holdout_pct": 20, "window_days": 7}
    made = client.post("/v1/campaigns", json=body)
    assert made.status_code == 201
    cid = made.json()["id"]
    refused = client.post(f"/v1/campaigns/{cid}/launch")
    assert refused.status_code == 409 and "template_not_approved" in refused.text
    assert client.post(f"/v1/campaigns/templates/{t['id']}/approve").status_code == 200
    launched = client.post(f"/v1/campaigns/{cid}/launch").json()
    assert launched["status"] == "running" and launched["audience"] == 2000
    assert abs(launched["control"] - 400) <= 5  # 20% of each tier x lifecycle stratum, rounded
    assert client.post(f"/v1/campaigns/{cid}/pause").json()["status"] == "paused"
    assert client.post(f"/v1/campaigns/{cid}/launch").json()["status"] == "running"
    # pretend every consented treatment person was reached, then plant the window's orders
    db.execute("UPDATE marketing_sends SET status = 'sent', sent_at = ? WHERE campaign_id = ? AND person_id IN "
               "(SELECT person_id FROM marketing_consent WHERE channel = 'sms' AND granted = 1)", (iso(now), cid))
    # the holdout is a hash of the campaign's salt and the person id, which OneID draws at random:
    # the groups differ on every run, so the window's orders are planted exactly (each cell converts
    # its planted share) and the interval must cover the planted effect on every run, not 95 in 100
    planted = campaign_brand.outcomes(db, brand, campaign_id=cid, exact=True,
                                      launched=datetime.fromisoformat(launched["launched_at"]))
    results = client.get(f"/v1/campaigns/{cid}/results").json()
    assert results["groups"]["control"]["n"] == launched["control"]
    assert results["groups"]["treatment"]["n"] == 2000 - launched["control"]
    low, high = results["uplift"]["ci95"]
    assert high - low == pytest.approx(2 * 1.96 * results["uplift"]["se"], abs=1e-4)
    assert low <= planted <= high  # the 95% interval covers the planted effect
    assert {r["channel"] for r in results["orders_by_channel"]} == {"pos", "tmall"}
    assert client.get("/v1/campaigns/nope").status_code == 404
    cohort = client.get(f"/v1/cohorts/campaign:{cid}").json()
    assert [h["days"] for h in cohort["horizons"]] == [30, 60, 90, 180]
    first = cohort["horizons"][0]
    assert first["treatment"]["persons"] == 2000 - launched["control"]
    assert first["treatment"]["buyer_rate"] == results["groups"]["treatment"]["rate"]  # all orders fall in 7 days
    assert set(first["control"]["channel_mix"]) <= {"pos", "tmall"}
    assert client.get("/v1/cohorts/segment:x").status_code == 404


def test_wechat_subscribe_message_in_the_documented_shape() -> None:
    wx = SimulatedWeChat(appid="wx1", secret="sec").start()
    try:
        channel = WeChatSubscribeChannel(wx.url, "wx1", "sec")
        notice = Notice(key="k", title="t", text="x", markdown="x", link="", severity="info",
                        payload={"wechat_template": "TPL", "wechat_data": {"thing1": {"value": "到店礼"}}, "page": "index"})
        wx.subscriptions[("openid-1", "TPL")] = 1
        assert channel.send("openid-1", notice) == "1"
        sent = wx.sent[0]
        assert set(sent) == {"touser", "template_id", "page", "data", "miniprogram_state", "lang"}
        wx.expire_tokens()  # 40001: the adapter fetches a new token and sends again
        wx.subscriptions[("openid-1", "TPL")] = 1
        assert channel.send("openid-1", notice) == "2"
        with pytest.raises(WeChatRefused):  # 43101: no subscription left, not retried
            channel.send("openid-1", notice)
    finally:
        wx.stop()


def test_a_wechat_campaign_reaches_openids_and_a_member_gets_a_guide(start_cloud) -> None:
    wx = SimulatedWeChat(appid="wx1", secret="sec").start()
    try:
        client, runtime = start_cloud(wechat_api=wx.url, wechat_appid="wx1", wechat_secret="sec")
        db = runtime.db
        _people(db)
        with db.transaction() as tx:
            tx.execute("INSERT INTO identifiers (member_id, kind, value, created) VALUES ('p-ok', 'openid', 'o-1', ?)",
                       (iso(NOON_SHANGHAI),))
        wx.subscriptions[("o-1", "TPL_W")] = 1
        client.put("/v1/marketing/consent/p-ok/wechat", json={"granted": True, "source": "mini_program"})
        assert client.put("/v1/marketing/guide/p-ok", json={"assistant": "a-1", "wecom_user": "zhangsan"}).json()[
            "wecom_user"] == "zhangsan"
        segment = segments.save(db, "active", segments.Condition.parse({"lifecycle": ["active"]}), actor="t")
        t = campaigns.create_template(db, channel="wechat", code="TPL_W", body="{name}", params=["name"], actor="t")
        campaigns.approve_template(db, t["id"], actor="t")
        c = campaigns.create(db, name="w", segment_id=segment["id"], channel="wechat", template_id=t["id"],
                             holdout_pct=0, start_at=NOON_SHANGHAI, actor="t")
        campaigns.launch(db, c["id"], now=NOON_SHANGHAI)
        runtime.campaigns.run(now=NOON_SHANGHAI)
        assert [m["touser"] for m in wx.sent] == ["o-1"] and wx.sent[0]["data"] == {"name": {"value": "王芳"}}
        assert campaigns.get(db, c["id"])["sends"] == {"sent": 1, "skipped": 5}
    finally:
        wx.stop()


def test_audience_sync_exports_hashed_normalised_phones_only(start_cloud) -> None:
    import hashlib

    client, runtime = start_cloud()
    _people(runtime.db)
    with runtime.db.transaction() as tx:
        tx.execute("INSERT INTO identifiers (member_id, kind, value, created) VALUES ('p-ok', 'phone', "
                   "'+86 139-0000-0001', ?)", (iso(NOON_SHANGHAI),))
    segment = segments.save(runtime.db, "a", segments.Condition.parse({"lifecycle": ["active"]}), actor="t")
    body = client.get(f"/v1/audiences/{segment['id']}").text
    lines = body.split()
    assert f"phone_sha256,{hashlib.sha256(b'13900000001').hexdigest()}" in lines
    assert len(lines) == 4  # p-ok's two spellings are one line; the suppressed phone and p-nophone are absent
    assert "1390000" not in body
    md5 = client.get(f"/v1/audiences/{segment['id']}?hash=md5").text.split()
    assert f"phone_md5,{hashlib.md5(b'13900000001').hexdigest()}" in md5
    # a scheduled sync: the file is rebuilt when its interval has passed, with what changed
    assert client.get(f"/v1/audiences/{segment['id']}/snapshot").status_code == 404
    assert client.put(f"/v1/audiences/{segment['id']}/sync", json={"every_hours": 24}).json()["refreshed"] is None
    first = audience.refresh_due(runtime.db, now=NOON_SHANGHAI)
    assert [(r["lines"], r["added"], r["removed"]) for r in first] == [(4, 4, 0)]
    snap = client.get(f"/v1/audiences/{segment['id']}/snapshot")
    assert sorted(snap.text.split()) == sorted(lines) and snap.headers["X-Added"] == "4"
    consent.suppress(runtime.db, "phone", "13900000001", reason="asked", actor="t")
    assert audience.refresh_due(runtime.db, now=NOON_SHANGHAI + timedelta(hours=1)) == []  # not due yet
    again = audience.refresh_due(runtime.db, now=NOON_SHANGHAI + timedelta(hours=25))
    assert [(r["lines"], r["added"], r["removed"]) for r in again] == [(3, 0, 1)]
    assert f"phone_sha256,{hashlib.sha256(b'13900000001').hexdigest()}" not in \
        client.get(f"/v1/audiences/{segment['id']}/snapshot").text


def test_quiet_hours_are_checked_again_as_each_message_goes(db: Database, sms: SimulatedSms) -> None:
    """A batch claimed at 20:59:59.3 in Shanghai: what would leave after 21:00 waits until 09:00."""
    ts = iso(NOON_SHANGHAI - timedelta(days=100))
    with db.transaction() as tx:
        tx.execute("INSERT INTO stores (id, brand, name, city, created, timezone) VALUES ('sh', 'b', '上海店', '上海', ?, "
                   "'Asia/Shanghai')", (ts,))
        for i in range(4):
            tx.execute("INSERT INTO members (id, source, source_key, name, gender, tier, created, home_store) "
                       "VALUES (?, 'crm', ?, '王芳', 'F', '金卡', ?, 'sh')", (f"q{i}", f"q{i}", ts))
            tx.execute("INSERT INTO identifiers (member_id, kind, value, created) VALUES (?, 'phone', ?, ?)",
                       (f"q{i}", f"1390000010{i}", ts))
            tx.execute("INSERT INTO person_stats (member_id, orders, ltv, lifecycle, value_tier, top_categories, "
                       "updated) VALUES (?, 1, 100, 'active', 'high', '[]', ?)", (f"q{i}", ts))
            consent.set_consent(db, f"q{i}", "sms", True, source="counter", actor="t", now=NOON_SHANGHAI)
        survivorship.store(tx)  # the stats planted as the tag refresh would have stored them
    evening = datetime(2026, 3, 2, 12, 59, 59, 300_000, tzinfo=UTC)  # 20:59:59.3 in Shanghai
    campaign = _campaign(db)
    db.execute("UPDATE marketing_sends SET due = ? WHERE campaign_id = ?", (iso(evening), campaign["id"]))
    sender = CampaignSender(db, {"sms": SmsChannel(SmsSender(sms.url, "品牌"), "SMS_ALERT")}, workers=1,
                            rate_per_s={"sms": 1})  # one message a second: the second would leave after 21:00
    tally = sender.run_once(now=evening)
    sender.close()
    assert tally.sent == 1 and tally.deferred == 3 and len(sms.sent) == 1
    waiting = db.query("SELECT due, reason, attempts FROM marketing_sends WHERE status = 'pending'")
    assert {(r["due"], r["reason"], r["attempts"]) for r in waiting} == {
        (iso(datetime(2026, 3, 3, 1, 0, tzinfo=UTC)), "deferred:quiet_hours", 0)}


def test_a_send_whose_answer_was_lost_is_asked_about_never_sent_twice(db: Database, sms: SimulatedSms) -> None:
    """The gateway takes a message and the connection drops before its answer (a network reset): the
    sender cannot tell that from "not taken", so it sends nothing again and leaves the row for
    ``reconcile``, which finds it by its OutId (QuerySendDetails) instead of sending it twice."""
    now, _ = _launched(db, persons=60, holdout_pct=0)
    sender = _sender(db, sms.url)
    sms.lose_answers = 3
    tally = sender.run(now=now)
    assert tally.unanswered == 3 and len(sms.sent) == tally.sent + 3
    left = db.rows("SELECT status, owner, reason FROM marketing_sends WHERE owner IS NULL AND status = 'sending'")
    assert len(left) == 3 and all("did not answer" in reason for _, _, reason in left)
    assert sender.run(now=now).sent == 0  # nothing due: the unanswered rows wait for the question
    assert sender.reconcile(stale_s=-1) == {"found": 3, "resend": 0, "unknown": 0}
    sender.run(now=now)
    sender.close()
    keys = Counter(m.out_id for m in sms.sent)
    assert max(keys.values()) == 1
    assert len(keys) == db.scalar("SELECT COUNT(*) FROM marketing_sends WHERE status = 'sent'")
