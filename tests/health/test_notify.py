"""Alerts that reach people (issue 17): owners per store, region and brand on a signed webhook,
WeCom app message and group robot, and email, each against a local server speaking the
provider's shape; escalation of an unacknowledged critical alert, mute windows, de-duplication,
retries; acknowledgements and notes record the person. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.channels.email import EmailChannel
from cloud.channels.notice import ChannelFailed, Notice
from cloud.channels.webhook import WebhookChannel, signature, verify
from cloud.channels.wecom import WeComAppChannel, WeComRobotChannel
from cloud.clock import iso
from cloud.db import Database
from cloud.health import alerts, notify
from cloud.health.alerts import Alert
from cloud.runtime import open_cdp
from tests.health.local_servers import Provider, SmtpServer

NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)  # 14:00 in China
SECRET = "hook-secret"


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider(SECRET)
    yield p
    p.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    s = SmtpServer()
    yield s
    s.close()


@pytest.fixture
def channels(provider: Provider, smtp: SmtpServer) -> dict:
    return {"webhook": WebhookChannel(SECRET), "wecom_app": WeComAppChannel(provider.url, "corp", "s3cret", 1000002),
            "wecom_robot": WeComRobotChannel(provider.url), "email": EmailChannel("127.0.0.1", smtp.port, "alerts@brand.cn")}


@pytest.fixture
def db(db_location: str) -> Iterator[Database]:
    db = open_cdp(db_location, sample_catalogue=False)
    for store, region in (("s1", "east"), ("s2", "north")):
        db.execute("INSERT INTO stores (id, brand, name, city, created, region) VALUES (?, 'b', ?, 'x', ?, ?)",
                   (store, f"店{store}", iso(NOW), region))
    yield db
    db.close()


def _alert(store: str, metric: str, severity: str = "critical", *, created: datetime = NOW, device: str = "",
           ts: str = "2026-03-10T14:00") -> Alert:
    a = Alert(id=f"a-{store}-{metric}-{device}-{ts}", brand="b", store=store, metric=metric, grain="hour", ts=ts,
              value=0, baseline=40, mad=3, z=-9, direction="low", severity=severity, status="open",  # type: ignore[arg-type]
              created=created, kind="device" if device else "metric", device=device)
    return a


def test_the_webhook_is_signed_and_verifiable() -> None:
    body = b'{"a": 1}'
    sig = signature(SECRET, "1700000000", body)
    assert sig.startswith("sha256=") and verify(SECRET, "1700000000", body, sig, now=1700000100)
    assert not verify(SECRET, "1700000000", body + b" ", sig, now=1700000100)  # body changed
    assert not verify(SECRET, "1700000000", body, sig, now=1700000000 + 301)  # replayed late
    assert not verify("other", "1700000000", body, sig, now=1700000100)


def test_each_channel_speaks_its_providers_shape(provider: Provider, smtp: SmtpServer, channels: dict) -> None:
    notice = Notice(key="a1:0", title="[严重] 店s1 设备离线", text="门店 s1 的 box-1 离线", markdown="**设备离线**",
                    link="http://dash/dash/store.html?store=s1&day=2026-03-10&metric=device_offline", severity="critical",
                    payload={"id": "a1"})
    channels["webhook"].send(f"{provider.url}/hook", notice)
    assert provider.hooks[0]["delivery"] == "a1:0" and provider.hooks[0]["alert"] == {"id": "a1"}
    provider.expire_tokens = 1  # the cached token expired: fetched again once, then sent
    channels["wecom_app"].send("zhangsan|lisi", notice)
    assert provider.app[0] == {"touser": "zhangsan|lisi", "msgtype": "markdown", "agentid": 1000002,
                               "markdown": {"content": "**设备离线**"}}
    assert provider.tokens_issued == 2
    channels["wecom_robot"].send("robot-key-1", notice)
    assert provider.robot == [{"key": "robot-key-1", "msgtype": "markdown", "markdown": {"content": "**设备离线**"}}]
    channels["email"].send("manager@brand.cn", notice)
    (to, msg), = smtp.messages
    assert to == ["manager@brand.cn"] and msg["Subject"] == "[严重] 店s1 设备离线" and "store=s1" in msg.get_content()
    bad = WebhookChannel("wrong-secret")
    with pytest.raises(ChannelFailed):
        bad.send(f"{provider.url}/hook", notice)
    assert provider.bad_signatures == 1


def test_route_escalate_mute_dedup_and_retry(db: Database, provider: Provider, smtp: SmtpServer,
                                             channels: dict) -> None:
    hook = f"{provider.url}/hook"
    notify.add_owner(db, scope="store", scope_id="s1", level=0, person="王店长", channel="wecom_app", address="wang")
    notify.add_owner(db, scope="store", scope_id="s1", level=0, person="店铺群", channel="wecom_robot", address="k1",
                     min_severity="critical")
    notify.add_owner(db, scope="region", scope_id="east", level=1, person="李区经理", channel="email",
                     address="li@brand.cn")
    notify.add_owner(db, scope="brand", scope_id="*", level=2, person="HQ 运维", channel="webhook", address=hook)
    notify.add_owner(db, scope="store", scope_id="s2", level=0, person="赵店长", channel="email", address="zhao@brand.cn",
                     mute="12:00-15:00")
    crit = _alert("s1", "device_offline", device="box-1")
    warn = _alert("s1", "sales", "warning")
    quiet = _alert("s2", "sales", "warning")
    alerts.record(db, [crit, warn, quiet])

    first = notify.run(db, channels, NOW, escalate_after_s=600)
    # s1's manager gets both; the store group only the critical one; s2's manager is muted 12-15 local
    assert [m["touser"] for m in provider.app] == ["wang", "wang"] and len(provider.robot) == 1
    assert first.held == 1 and smtp.messages == [] and provider.hooks == []
    assert "store=s1&day=2026-03-10&metric=device_offline" in provider.robot[0]["markdown"]["content"]
    assert notify.run(db, channels, NOW + timedelta(seconds=30), escalate_after_s=600).sent == 0  # de-duplicated

    # nobody acknowledged the critical one: after 10 min the region manager, after 20 HQ's webhook
    notify.run(db, channels, NOW + timedelta(minutes=10), escalate_after_s=600)
    assert [to for to, _ in smtp.messages] == [["li@brand.cn"]] and "已升级到第 1 级" in smtp.messages[0][1]["Subject"]
    provider.fail_next = 1  # HQ's receiver is down once: retried with back-off
    failed = notify.run(db, channels, NOW + timedelta(minutes=20), escalate_after_s=600)
    assert failed.failed == 1 and provider.hooks == []
    notify.run(db, channels, NOW + timedelta(minutes=21), escalate_after_s=600)
    assert len(provider.hooks) == 1 and provider.hooks[0]["alert"]["device"] == "box-1"
    assert db.scalar("SELECT level FROM alerts WHERE id = ?", (crit.id,)) == 2
    # the warning never escalates
    assert {d["person"] for d in notify.deliveries(db, warn.id)} == {"王店长"}

    # s2's manager gets the held alert when the mute window ends (15:00 local = 07:00 UTC)
    notify.run(db, channels, NOW + timedelta(minutes=61), escalate_after_s=0)
    assert [to for to, _ in smtp.messages][-1] == ["zhao@brand.cn"]



def test_acknowledged_alerts_stop_escalating_and_notes_record_the_person(db: Database, provider: Provider,
                                                                         channels: dict) -> None:
    notify.add_owner(db, scope="store", scope_id="s1", level=0, person="王店长", channel="wecom_app", address="wang")
    notify.add_owner(db, scope="region", scope_id="east", level=1, person="李区经理", channel="wecom_app",
                     address="li")
    crit = _alert("s1", "device_offline", device="cam-1")
    alerts.record(db, [crit])
    notify.run(db, channels, NOW, escalate_after_s=600)
    # a flapping camera: the same device's alert again within 30 min is recorded as a duplicate, not sent
    again = _alert("s1", "device_offline", device="cam-1", created=NOW + timedelta(minutes=5), ts="2026-03-10T14:05")
    alerts.record(db, [again])
    assert notify.run(db, channels, NOW + timedelta(minutes=5), escalate_after_s=600).duplicates == 1
    assert alerts.clear(db, again.id, NOW + timedelta(minutes=6))
    acked = alerts.ack(db, crit.id, actor="王店长 (store_manager:k1)", note="门口摄像头被挡住，已挪开")
    assert acked.acked_by == "王店长 (store_manager:k1)"
    notify.run(db, channels, NOW + timedelta(minutes=30), escalate_after_s=600)
    assert [m["touser"] for m in provider.app] == ["wang"]  # never escalated to li
    notes = alerts.add_note(db, crit.id, actor="李区经理 (hq_admin:k2)", note="明早巡店确认")
    assert [(n["person"], n["note"]) for n in notes] == [("王店长 (store_manager:k1)", "门口摄像头被挡住，已挪开"),
                                                        ("李区经理 (hq_admin:k2)", "明早巡店确认")]


def test_a_cleared_alert_tells_everyone_it_reached_that_it_is_resolved_once(db: Database, provider: Provider,
                                                                            smtp: SmtpServer, channels: dict) -> None:
    notify.add_owner(db, scope="store", scope_id="s1", level=0, person="王店长", channel="wecom_app", address="wang")
    notify.add_owner(db, scope="region", scope_id="east", level=1, person="李区经理", channel="email",
                     address="li@brand.cn")
    notify.add_owner(db, scope="store", scope_id="s2", level=0, person="赵店长", channel="email", address="zhao@brand.cn",
                     mute="12:00-15:00")
    till = _alert("s1", "orders_low").model_copy(update={"kind": "source", "ts": "2026-03-10T13:40"})
    quiet = _alert("s2", "device_offline", device="box-2", created=NOW - timedelta(hours=3))
    alerts.record(db, [quiet])
    notify.run(db, channels, NOW - timedelta(hours=3), escalate_after_s=600)  # s2's manager told at 11:00 local
    alerts.record(db, [till])
    notify.run(db, channels, NOW, escalate_after_s=600)
    notify.run(db, channels, NOW + timedelta(minutes=10), escalate_after_s=600)  # escalated to the region
    assert [m["touser"] for m in provider.app] == ["wang"] and [to for to, _ in smtp.messages] == [
        ["zhao@brand.cn"], ["li@brand.cn"]]
    assert "收银订单骤降" in provider.app[0]["markdown"]["content"]
    # the till is back at 14:25 local, the box at 14:30: both alerts clear
    assert alerts.clear(db, till.id, NOW + timedelta(minutes=25))
    assert alerts.clear(db, quiet.id, NOW + timedelta(minutes=30))
    provider.fail_next = 1  # WeCom is down once: the store manager is told at the next run
    first = notify.run(db, channels, NOW + timedelta(minutes=31), escalate_after_s=600)
    assert first.resolved == 1 and first.failed == 1
    assert smtp.messages[-1][1]["Subject"] == "[已恢复] 店s1（s1） 收银订单骤降"
    assert "14:25 恢复" in smtp.messages[-1][1].get_content()
    again = notify.run(db, channels, NOW + timedelta(minutes=32), escalate_after_s=600)
    assert again.resolved == 1 and provider.app[-1]["markdown"]["content"].startswith("**[已恢复]")
    assert notify.run(db, channels, NOW + timedelta(minutes=33), escalate_after_s=600).resolved == 0  # once each
    # s2's manager is muted until 15:00 local: told then
    assert [to for to, _ in smtp.messages].count(["zhao@brand.cn"]) == 1
    assert notify.run(db, channels, NOW + timedelta(minutes=61), escalate_after_s=600).resolved == 1
    assert smtp.messages[-1][0] == ["zhao@brand.cn"] and "[已恢复]" in smtp.messages[-1][1]["Subject"]


def test_owners_are_validated(db: Database) -> None:
    with pytest.raises(notify.InvalidOwner):
        notify.add_owner(db, scope="store", scope_id="s1", level=0, person="x", channel="fax", address="1")
    with pytest.raises(notify.InvalidOwner):
        notify.add_owner(db, scope="store", scope_id="s1", level=0, person="x", channel="email", address="a@b",
                         mute="25:00-08:00")
    with pytest.raises(notify.InvalidOwner):
        notify.add_owner(db, scope="city", scope_id="s1", level=0, person="x", channel="email", address="a@b")  # type: ignore[arg-type]
