"""Journeys (issue 20 item 4), end to end on the simulated SMS provider and a local WeCom: a first
purchase enters the journey as the order lands, the control group is never messaged, the sends go
through the campaign checks and sender, a wait and a branch on the response (bought since: end;
else a second message); a VIP walking in tells their own guide on WeCom at once; a visit without a
purchase within 24 h, and the daily triggers (dormant, own repurchase cycle, birthday month, points
expiring) enter whom they should, once."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from cloud.activation import campaigns, consent, journeys
from cloud.arrivals import till
from cloud.arrivals.visits import Visit, record_visit
from cloud.cdp import segments, survivorship
from cloud.channels.sms_sim import SimulatedSms
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.loyalty import coupons, ledger
from cloud.runtime import Runtime
from protocol import topics, transport
from protocol.codec import decode, encode
from protocol.messages import GuideTask, GuideTaskDone, new_id
from tests.health.local_servers import Provider


@pytest.fixture
def sms() -> SimulatedSms:
    sim = SimulatedSms(per_phone_per_minute=100).start()
    yield sim
    sim.stop()


def _order(no: str, phone: str, ts: datetime, paid: float = 199.0) -> dict:
    return {"order_no": no, "ts": ts.isoformat(), "paid": paid, "member": {"phone": phone},
            "lines": [{"sku": "SKU-1", "qty": 1, "price": paid}]}


def _driven_by_the_test(start_cloud, **settings: object) -> tuple[TestClient, Runtime]:
    """A cloud whose scheduler is stopped: the test runs the journeys and campaign-send jobs itself.
    With the scheduler on, its turn could queue the first sends before the test gives consent, or
    claim sends the test then finds still in flight (two runs never send twice: see
    test_two_runs_that_read_the_same_entries_run_each_step_once and test_activation's two senders)."""
    client, runtime = start_cloud(**settings)
    runtime.scheduler.stop()
    return client, runtime


def _template(db: Database, channel: str, code: str, body: str) -> str:
    t = campaigns.create_template(db, channel=channel, code=code, body=body, params=["surname", "title"], actor="t")
    return t["id"]


def test_first_purchase_journey_with_wait_branch_and_control_group(start_cloud, sms: SimulatedSms) -> None:
    client, runtime = _driven_by_the_test(start_cloud, sms_url=sms.url)
    db = runtime.db
    thanks, comeback = _template(db, "sms", "SMS_T1", "{surname}{title} 感谢首购"), _template(db, "sms", "SMS_T2", "回购礼")
    spec = {"name": "首购+7天", "trigger": "first_purchase", "params": {"days": 7}, "holdout_pct": 25,
            "quiet_start": 0, "quiet_end": 0,  # no quiet hours: the test runs at any hour
            "steps": [{"send": "sms", "template_id": thanks}, {"wait_hours": 72},
                      {"branch": "purchased", "yes": 4, "no": 3}, {"send": "sms", "template_id": comeback}]}
    bad = client.post("/v1/journeys", json={**spec, "steps": [{"branch": "purchased", "yes": 9, "no": 0}]})
    assert bad.status_code == 422
    made = client.post("/v1/journeys", json=spec)
    assert made.status_code == 201
    jid = made.json()["id"]
    refused = client.post(f"/v1/journeys/{jid}/launch")
    assert refused.status_code == 409 and "template_not_approved" in refused.text
    for t in (thanks, comeback):
        campaigns.approve_template(db, t, actor="hq")
    assert client.post(f"/v1/journeys/{jid}/launch").json()["status"] == "running"
    assert [c["id"] for c in client.get("/v1/campaigns").json()] == []  # its steps are not HQ campaigns

    phones = [f"1390000{i:04d}" for i in range(40)]
    first = datetime.now(UTC) - timedelta(days=8)
    till.land(db, "tmall", [_order(f"F-{i}", p, first) for i, p in enumerate(phones)])
    person = dict(db.rows("SELECT i.value, COALESCE(m.merged_into, m.id) FROM identifiers i JOIN members m "
                          "ON m.id = i.member_id WHERE i.kind = 'phone'"))
    for p in phones[1:]:  # the first buyer never consented to SMS
        consent.set_consent(db, person[p], "sms", True, source="counter", actor="t")
    entries = {e["person_id"]: e for e in client.get(f"/v1/journeys/{jid}/entries").json()}
    assert len(entries) == 40  # entered as the orders landed
    control = {p for p in phones if entries[person[p]]["grp"] == "control"}
    treated = [p for p in phones if p not in control]
    assert control and treated and all(entries[person[p]]["status"] == "control" for p in control)

    now = utcnow()
    runtime.run_journeys(now=now)
    runtime.campaigns.run(now=now)
    got = Counter(m.phone for m in sms.sent)
    assert set(got) == set(treated) - {phones[0]} and all(n == 1 for n in got.values())
    assert {m.template for m in sms.sent} == {"SMS_T1"}
    assert db.scalar("SELECT reason FROM marketing_sends WHERE person_id = ?", (person[phones[0]],)) == \
        ("no_consent" if phones[0] in treated else None)

    # a third of the reached buy again (landed now: after they entered), the rest get the second message
    time.sleep(1.1)
    buyers = treated[::3]
    till.land(db, "tmall", [_order(f"R-{i}", p, datetime.now(UTC)) for i, p in enumerate(buyers)])
    later = now + timedelta(hours=73)
    runtime.run_journeys(now=later)
    runtime.campaigns.run(now=later)
    second = {m.phone for m in sms.sent if m.template == "SMS_T2"}
    assert second == set(treated) - set(buyers) - {phones[0]}
    states = {e["person_id"]: e for e in client.get(f"/v1/journeys/{jid}/entries").json()}
    assert {states[person[p]]["status"] for p in treated} == {"done"}
    assert "2:branch:purchased:yes" in states[person[buyers[0]]]["log"]
    journey = client.get(f"/v1/journeys/{jid}").json()
    assert journey["steps"][0]["sends"]["sent"] == len(set(treated) - {phones[0]})
    results = client.get(f"/v1/journeys/{jid}/results").json()
    assert results["groups"]["treatment"]["n"] == len(treated) and results["groups"]["control"]["n"] == len(control)
    assert results["groups"]["treatment"]["converted"] == len(buyers) and results["groups"]["control"]["converted"] == 0
    assert results["uplift"]["estimate"] > 0 and len(results["uplift"]["ci95"]) == 2
    assert client.post(f"/v1/journeys/{jid}/pause").json()["status"] == "paused"
    assert db.scalar("SELECT DISTINCT status FROM campaigns WHERE journey_id = ?", (jid,)) == "paused"


def _visit(db: Database, member: str, ts: datetime, n: int) -> None:
    record_visit(db, Visit(id=f"v-{n}", brand="b", store="sh-1", member_id=member, confidence=0.9, ts=ts,
                           arrival_event_id=f"a-{n}", device="edge-1", camera="door-1", card_id=f"c-{n}"))


def _members(db: Database, ids: list[str], *, tier: str = "medium", **stats: object) -> None:
    ts = iso(utcnow() - timedelta(days=400))
    with db.transaction() as tx:
        for pid in ids:
            tx.execute("INSERT INTO members (id, source, source_key, name, gender, tier, created, birthday) "
                       "VALUES (?, 'crm', ?, '王芳', 'F', '金卡', ?, ?)", (pid, pid, ts, stats.get("birthday")))
            tx.execute("INSERT INTO person_stats (member_id, orders, ltv, lifecycle, value_tier, cycle_days, "
                       "top_categories, updated) VALUES (?, 2, 400, 'active', ?, ?, '[]', ?)",
                       (pid, tier, stats.get("cycle_days"), ts))
        survivorship.store(tx, ids)  # the stats planted as the tag refresh would have stored them


def test_a_vip_walking_in_tells_their_own_guide_on_wecom_and_a_visit_without_buying(start_cloud) -> None:
    wecom = Provider("x")
    try:
        client, runtime = _driven_by_the_test(start_cloud, wecom_api=wecom.url, wecom_corp_id="corp", wecom_secret="s3cret",
                                      wecom_agent_id=1000002)
        db = runtime.db
        _members(db, ["vip-1"], tier="high")
        _members(db, ["reg-1", "walk-1", "walk-2"])
        client.put("/v1/marketing/guide/vip-1", json={"assistant": "a-07", "wecom_user": "zhangsan"})
        client.put("/v1/marketing/consent/vip-1/wecom", json={"granted": True, "source": "counter"})
        tpl = _template(db, "wecom", "vip", "{surname}{title} 到店了，请接待")
        campaigns.approve_template(db, tpl, actor="hq")
        made = client.post("/v1/journeys", json={"name": "VIP到店", "trigger": "vip_arrival", "holdout_pct": 0,
                                                 "quiet_start": 0, "quiet_end": 0,
                                                 "steps": [{"send": "wecom", "template_id": tpl}]}).json()
        walk = client.post("/v1/journeys", json={"name": "进店未购", "trigger": "visit_no_purchase", "holdout_pct": 0,
                                                 "exit_on": ["purchase"],
                                                 "steps": [{"wait_hours": 1}]}).json()
        for j in (made, walk):
            client.post(f"/v1/journeys/{j['id']}/launch")
        now = utcnow()
        _visit(db, "vip-1", now - timedelta(minutes=1), 1)
        _visit(db, "reg-1", now - timedelta(minutes=1), 2)  # not a VIP: the guide is not told
        _visit(db, "walk-1", now - timedelta(hours=25), 3)  # came yesterday, bought nothing
        _visit(db, "walk-2", now - timedelta(hours=26), 4)  # came yesterday and bought an hour later
        with db.transaction() as tx:
            tx.execute("INSERT INTO orders (id, channel, order_no, store, member_id, ts, paid, status) "
                       "VALUES ('pos:sh-1:W2', 'pos', 'W2', 'sh-1', 'walk-2', ?, 299, 'paid')",
                       (int((now - timedelta(hours=25)).timestamp()),))
        runtime.run_journeys(now=now)
        runtime.campaigns.run(now=now)
        assert len(wecom.app) == 1 and wecom.app[0]["touser"] == "zhangsan"  # the member's own guide
        assert "王女士 到店了" in wecom.app[0][wecom.app[0]["msgtype"]]["content"]
        runtime.run_journeys(now=now + timedelta(seconds=10))  # the same visit does not tell the guide twice
        assert db.scalar("SELECT COUNT(*) FROM journey_entries WHERE journey_id = ?", (made["id"],)) == 1
        assert [e["person_id"] for e in client.get(f"/v1/journeys/{walk['id']}/entries").json()] == ["walk-1"]
    finally:
        wecom.close()


def test_daily_triggers_enter_whom_they_should_once_a_day(db: Database) -> None:
    now = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)
    day = 86400
    _members(db, ["dorm-1", "recent-1"])
    _members(db, ["cyc-1"], cycle_days=30.0)
    _members(db, ["bday-6"], birthday="1990-06-21")
    _members(db, ["bday-7"], birthday="1990-07-02")
    t = int(now.timestamp())
    with db.transaction() as tx:
        tx.executemany("INSERT INTO orders (id, channel, order_no, store, member_id, ts, paid, status) "
                       "VALUES (?, 'pos', ?, NULL, ?, ?, 100, 'paid')",
                       [("o1", "o1", "dorm-1", t - 92 * day), ("o2", "o2", "recent-1", t - 10 * day),
                        ("o3", "o3", "cyc-1", t - 31 * day), ("o4", "o4", "dorm-1", t - 400 * day)])
    ledger.earn(db, "recent-1", 500, source="test", source_id="e1", at=now - timedelta(days=320))
    found = {}
    for trigger, params in (("dormant", {"days": 90}), ("repurchase_due", {}), ("birthday_month", {}),
                            ("points_expiring", {"days": 60})):
        j = journeys.create(db, journeys.JourneySpec.model_validate(
            {"name": trigger, "trigger": trigger, "params": params, "steps": [{"wait_hours": 1}], "holdout_pct": 0}),
            actor="t")
        journeys.launch(db, j["id"], now=now)
        found[trigger] = j["id"]
    assert sum(journeys.evaluate(db, now=now).values()) == 4
    assert journeys.evaluate(db, now=now + timedelta(hours=1)) == {}  # once a day
    who = dict(db.rows("SELECT j.trigger, e.person_id FROM journey_entries e JOIN journeys j ON j.id = e.journey_id"))
    assert who == {"dormant": "dorm-1", "repurchase_due": "cyc-1", "birthday_month": "bday-6",
                   "points_expiring": "recent-1"}
    # the next day: the same occurrences enter nobody again
    assert sum(journeys.evaluate(db, now=now + timedelta(days=1)).values()) == 0


def test_a_campaign_and_a_journey_issue_e_coupons_once_each_attributed(start_cloud) -> None:
    client, runtime = _driven_by_the_test(start_cloud)
    db = runtime.db
    _members(db, ["c-1", "c-2", "c-supp"])
    consent.suppress(db, "person", "c-supp", reason="asked", actor="t")
    off = coupons.add_template(db, name="满200减30", kind="amount_off", value=30, min_spend=200, valid_days=30, actor="hq")
    assert client.post("/v1/campaigns/templates", json={"channel": "coupon", "code": "ct_none", "body": "x"}).status_code == 404
    tpl = client.post("/v1/campaigns/templates", json={"channel": "coupon", "code": off["id"], "body": "满200减30"}).json()
    client.post(f"/v1/campaigns/templates/{tpl['id']}/approve")
    segment = segments.save(db, "active", segments.Condition.parse({"lifecycle": ["active"]}), actor="t")
    cid = client.post("/v1/campaigns", json={"name": "券", "segment_id": segment["id"], "channel": "coupon",
                                             "template_id": tpl["id"], "holdout_pct": 0}).json()["id"]
    client.post(f"/v1/campaigns/{cid}/launch")
    runtime.campaigns.run()  # no marketing consent needed for a coupon in the wallet; suppression holds
    assert client.get(f"/v1/campaigns/{cid}").json()["skipped"] == {"suppressed": 1}
    mine = coupons.of_person(db, "c-1")
    assert [(c["issued_by"], c["template_id"]) for c in mine] == [(f"campaign:{cid}:c-1", off["id"])]
    # a send whose answer was lost (the process died) is settled from the wallet, not issued again
    db.execute("UPDATE marketing_sends SET status = 'sending', owner = 'dead' WHERE campaign_id = ? AND person_id = 'c-1'",
               (cid,))
    assert runtime.campaigns.reconcile(stale_s=-1) == {"found": 1, "resend": 0, "unknown": 0}
    runtime.campaigns.run()
    assert len(coupons.of_person(db, "c-1")) == 1
    coupons.redeem(db, mine[0]["code"], store="s1", channel="pos", amount=300, person="c-1", order_id="o1")
    assert client.get(f"/v1/campaigns/{cid}/results").json()["coupons"] == {"issued": 2, "redeemed": 1, "discount": 30.0}
    # a journey step on the coupon channel: a coupon as the member walks in
    j = journeys.create(db, journeys.JourneySpec.model_validate(
        {"name": "到店券", "trigger": "vip_arrival", "params": {"value_tiers": ["medium"]}, "holdout_pct": 0,
         "steps": [{"send": "coupon", "template_id": tpl["id"]}]}), actor="t")
    journeys.launch(db, j["id"])
    _visit(db, "c-2", utcnow() - timedelta(minutes=1), 9)
    runtime.run_journeys()
    runtime.campaigns.run()
    assert sorted(c["issued_by"].split(":")[1] for c in coupons.of_person(db, "c-2")) == sorted([cid, f"{j['id']}-0"])
    assert journeys.results(db, j["id"])["coupons"]["issued"] == 1


def test_repurchase_due_puts_a_task_on_the_home_store_guide_screens_until_a_guide_does_it(start_cloud, mosquitto) -> None:
    client, runtime = _driven_by_the_test(start_cloud, broker_url=mosquitto.url, client_id="cloud-journeys")
    db = runtime.db
    _members(db, ["wang"], cycle_days=30.0)
    with db.transaction() as tx:
        tx.execute("INSERT INTO stores (id, brand, name, city, created, timezone) VALUES ('sh-9', 'demo', '上海店', "
                   "'上海', ?, 'Asia/Shanghai')", (iso(utcnow()),))
        tx.execute("UPDATE members SET home_store = 'sh-9' WHERE id = 'wang'")
        tx.execute("INSERT INTO orders (id, channel, order_no, store, member_id, ts, paid, status) "
                   "VALUES ('pos:sh-9:C1', 'pos', 'C1', 'sh-9', 'wang', ?, 380, 'paid')",
                   (int((utcnow() - timedelta(days=31)).timestamp()),))
    url = transport.BrokerUrl.parse(mosquitto.url)
    screen = transport.make_client(url, f"screen-{new_id()[:8]}")
    got: list[GuideTask | GuideTaskDone] = []
    screen.on_message = lambda c, u, msg: got.append(
        decode(bytes(msg.payload), GuideTask if b'"type":"guide_task"' in msg.payload else GuideTaskDone))
    transport.start(screen, url)
    screen.subscribe(topics.guide_tasks_of_store("demo", "sh-9"), qos=1)

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 5
        while len(got) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    try:
        tpl = _template(db, "guide_task", "task", "{surname}{title} 该回购面霜了：送小样")
        campaigns.approve_template(db, tpl, actor="hq")
        j = client.post("/v1/journeys", json={"name": "面霜复购", "trigger": "repurchase_due", "holdout_pct": 0,
                                              "steps": [{"send": "guide_task", "template_id": tpl}]}).json()
        client.post(f"/v1/journeys/{j['id']}/launch")
        time.sleep(0.3)  # the subscription is in place
        runtime.run_journeys()
        runtime.campaigns.run()  # no consent or quiet hours for an in-store task; the broker acknowledged it
        wait_for(1)
        task = got[0]
        assert isinstance(task, GuideTask)
        assert (task.store, task.member_id, task.title, task.text) == ("sh-9", "wang", "面霜复购", "王女士 该回购面霜了：送小样")
        assert db.scalar("SELECT receipt FROM marketing_sends WHERE person_id = 'wang'") == task.task_id
        assert client.get(f"/v1/journeys/{j['id']}/results").json()["tasks"] == {"sent": 1, "done": 0}

        # a guide taps 完成 on the counter screen: told on that screen's feedback topic
        tapped = datetime.now(UTC)
        done = GuideTaskDone(task_id=task.task_id, brand="demo", store="sh-9", screen="counter", assistant="a-07",
                             ts=tapped)
        feedback = topics.guide_feedback("demo", "sh-9", "counter")
        screen.publish(feedback, encode(done), qos=1).wait_for_publish(5)
        wait_for(2)  # the cloud passes it on to every screen of the store
        assert got[1] == done
        assert db.one("SELECT screen, assistant, done_at FROM guide_tasks_done WHERE task_id = ?", (task.task_id,)) == \
            {"screen": "counter", "assistant": "a-07", "done_at": iso(tapped)}
        assert client.get(f"/v1/journeys/{j['id']}/results").json()["tasks"] == {"sent": 1, "done": 1}
        # a second tap (another screen before the relay reached it) is recorded and relayed once only;
        # a task this cloud never sent to the store is refused
        again = done.model_copy(update={"screen": "floor"})
        screen.publish(topics.guide_feedback("demo", "sh-9", "floor"), encode(again), qos=1).wait_for_publish(5)
        forged = done.model_copy(update={"task_id": new_id()})
        screen.publish(feedback, encode(forged), qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while runtime.ingest is not None and "unknown_task" not in runtime.ingest.counts().rejected \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runtime.ingest is not None and runtime.ingest.counts().rejected == {"unknown_task": 1}
        assert runtime.ingest.counts().tasks_done == 1 and len(got) == 2
    finally:
        transport.stop(screen)


def test_two_runs_that_read_the_same_entries_run_each_step_once(db: Database) -> None:
    """Two cloud processes (or a test and the scheduler) may read the same due entries: each entry
    moves only if it is still as read, so the step's send is queued and logged once."""
    now = utcnow()
    _members(db, ["vip-a", "vip-b"], tier="high")
    tpl = _template(db, "wecom", "vip2", "{surname}{title} 到店了")
    campaigns.approve_template(db, tpl, actor="hq")
    j = journeys.create(db, journeys.JourneySpec.model_validate(
        {"name": "VIP", "trigger": "vip_arrival", "holdout_pct": 0,
         "steps": [{"send": "wecom", "template_id": tpl}, {"wait_hours": 1}]}), actor="t")
    journeys.launch(db, j["id"], now=now)
    for n, member in enumerate(["vip-a", "vip-b"]):
        _visit(db, member, now - timedelta(minutes=1), 20 + n)
    assert sum(journeys.evaluate(db, now=now).values()) == 2
    read_by_the_other = journeys.due_entries(db, now, 500)
    assert journeys.advance(db, now=now) == {"sends": 2, "active": 2}
    late: dict[str, int] = Counter()
    assert journeys.advance_batch(db, read_by_the_other, now, late) == 0 and late == {}
    assert db.scalar("SELECT COUNT(*) FROM journey_log WHERE action = 'send:wecom'") == 2
    assert db.scalar("SELECT COUNT(*) FROM marketing_sends WHERE campaign_id = ?", (f"{j['id']}-0",)) == 2
    assert {e["step"] for e in journeys.entries(db, j["id"])} == {2}
