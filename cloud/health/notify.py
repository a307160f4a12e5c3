"""Alerts that reach people: per store, region or the whole brand, owners at escalation levels,
each on a channel (signed webhook, WeCom app message or group robot, email, SMS).

A scheduler job (``Runtime``, every ``notify_every_s``, 30 s) runs ``run``:

1. **Route**: every alert not cleared and not acknowledged gets one delivery row per owner of its
   store, its store's region and the brand (``alert_owners``: scope ``store``/``region``/``brand``)
   at the levels it has reached, whose ``min_severity`` it meets. The row's primary key (alert,
   owner) is the **de-duplication**: a re-run, a second cloud process or a restart never sends the
   same alert to the same person twice. An alert of the same store, metric and device sent to the
   same owner within ``dedup_s`` (a flapping camera) is recorded as ``duplicate``, not sent.
2. **Escalate**: a ``critical`` alert still open (nobody acknowledged it, it did not clear)
   ``escalate_after_s`` after it was raised moves to the next level that has owners (level 1 after
   one period, level 2 after two, ...), and those owners are told.
3. **Mute windows**: an owner's ``mute`` (``HH:MM-HH:MM`` in the store's local time) holds their
   deliveries (``held``) until the window ends; held ones whose alert was acknowledged or cleared
   meanwhile are ``dropped``. Escalation does not wait for a muted owner.
4. **Send**: through the channel adapters (``cloud.channels``); a failure is retried with back-off
   (30 s doubling, at most 15 min) up to ``MAX_ATTEMPTS``, then ``gave_up``.
5. **Resolved**: when an alert clears (the device is back, the source reports again), every owner
   it was sent to is told so on the same channel, once (``alert_deliveries.resolved_at``, claimed
   before sending so two processes never both send it; a failure is tried again at the next run,
   a muted owner is told when the window ends).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from cloud import clock
from cloud.channels.notice import Channel, ChannelFailed, Notice
from cloud.clock import iso
from cloud.db import Database
from cloud.errors import Invalid, NotFound
from cloud.health.alerts import Alert

log = logging.getLogger(__name__)

Scope = Literal["store", "region", "brand"]
CHANNELS = ("webhook", "wecom_app", "wecom_robot", "email", "sms")
SEVERITY_RANK = {"warning": 0, "critical": 1}
MAX_ATTEMPTS = 8
BACKOFF_S = 30.0
MAX_BACKOFF_S = 900.0
#: how far back routing looks for alerts still to tell someone about
HORIZON = timedelta(days=2)

METRIC_LABELS = {
    "device_offline": "设备离线", "device_silent": "设备无数据", "sales": "销售额", "orders": "订单数",
    "arrivals": "进店人数", "footfall": "客流", "conversion": "转化率", "greeted_share": "招呼率",
    "served_share": "接待率", "median_time_to_greet_s": "招呼用时", "orders_low": "收银订单骤降",
    "arrivals_low": "进店识别骤降", "footfall_low": "客流计数骤降", "claims_low": "导购接待骤降",
    "shelves_empty": "货架缺货", "staff_absent": "导购缺勤",
}


class OwnerNotFound(NotFound):
    code = "unknown_owner"


class InvalidOwner(Invalid):
    code = "invalid_owner"


@dataclass
class NotifyResult:
    routed: int = 0
    escalated: int = 0
    sent: int = 0
    failed: int = 0
    held: int = 0
    dropped: int = 0
    duplicates: int = 0
    resolved: int = 0
    errors: list[str] = field(default_factory=list)


def _minutes(hhmm: str) -> int:
    h, _, m = hhmm.partition(":")
    if not (h.isdigit() and m.isdigit() and int(h) < 24 and int(m) < 60):
        raise InvalidOwner(f"not a local time HH:MM: {hhmm!r}")
    return int(h) * 60 + int(m)


def in_window(window: str | None, local: datetime) -> bool:
    """Whether ``local`` falls in ``HH:MM-HH:MM`` (wrapping past midnight)."""
    if not window:
        return False
    start, _, end = window.partition("-")
    a, b, now = _minutes(start), _minutes(end), local.hour * 60 + local.minute
    return a <= now < b if a <= b else (now >= a or now < b)


def add_owner(db: Database, *, scope: Scope, scope_id: str, level: int, person: str, channel: str, address: str,
              min_severity: str = "warning", mute: str | None = None) -> dict:
    row = _checked(scope, scope_id, level, person, channel, address, min_severity, mute)
    db.execute("INSERT INTO alert_owners (scope, scope_id, level, person, channel, address, min_severity, mute, "
               "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*row, iso(clock.utcnow())))
    return db.query("SELECT * FROM alert_owners ORDER BY id DESC LIMIT 1")[0]


def update_owner(db: Database, owner_id: int, *, scope: Scope, scope_id: str, level: int, person: str, channel: str,
                 address: str, min_severity: str = "warning", mute: str | None = None) -> dict:
    """Change an owner in place (HQ's owners page): deliveries already made keep pointing at them."""
    row = _checked(scope, scope_id, level, person, channel, address, min_severity, mute)
    if not db.execute("UPDATE alert_owners SET scope = ?, scope_id = ?, level = ?, person = ?, channel = ?, "
                      "address = ?, min_severity = ?, mute = ? WHERE id = ?", (*row, owner_id)):
        raise OwnerNotFound(f"no alert owner {owner_id}")
    return db.query("SELECT * FROM alert_owners WHERE id = ?", (owner_id,))[0]


def _checked(scope: str, scope_id: str, level: int, person: str, channel: str, address: str, min_severity: str,
             mute: str | None) -> tuple:
    """The owner's columns, or InvalidOwner saying what is wrong."""
    if scope not in ("store", "region", "brand"):
        raise InvalidOwner(f"scope is store, region or brand, not {scope!r}")
    if channel not in CHANNELS:
        raise InvalidOwner(f"channel is one of {', '.join(CHANNELS)}, not {channel!r}")
    if min_severity not in SEVERITY_RANK:
        raise InvalidOwner("min_severity is warning or critical")
    if not person.strip() or not address.strip() or level < 0:
        raise InvalidOwner("an owner is a named person with an address, at level 0 or above")
    if mute:
        start, sep, end = mute.partition("-")
        if not sep:
            raise InvalidOwner("mute is a local window HH:MM-HH:MM")
        _minutes(start), _minutes(end)
    return scope, scope_id, level, person.strip(), channel, address.strip(), min_severity, mute or None


def owners(db: Database) -> list[dict]:
    return db.query("SELECT * FROM alert_owners ORDER BY scope, scope_id, level, id")


def remove_owner(db: Database, owner_id: int) -> None:
    if not db.execute("DELETE FROM alert_owners WHERE id = ?", (owner_id,)):
        raise OwnerNotFound(f"no alert owner {owner_id}")


def deliveries(db: Database, alert_id: str) -> list[dict]:
    return db.query("SELECT d.*, o.person, o.address FROM alert_deliveries d LEFT JOIN alert_owners o "
                    "ON o.id = d.owner_id WHERE d.alert_id = ? ORDER BY d.level, d.owner_id", (alert_id,))


def notice_of(alert: Alert, store_name: str | None, link_base: str, level: int) -> Notice:
    label = METRIC_LABELS.get(alert.metric, alert.metric)
    sev = "严重" if alert.severity == "critical" else "警告"
    where = f"{store_name or alert.store}（{alert.store}）"
    what = f"{label} {alert.device}".strip()
    if alert.kind == "device":
        detail = f"设备 {alert.device} 自 {alert.ts[11:16]} 起{'离线' if alert.metric == 'device_offline' else '无数据'}"
    elif alert.metric == "shelves_empty":
        detail = f"自 {alert.ts[11:16]} 起常销商品仅 {alert.value:g} 个有库存，共 {alert.baseline:g} 个"
    elif alert.metric == "staff_absent":
        detail = f"自 {alert.ts[11:16]} 起排班 {alert.baseline:g} 人，在岗 {alert.value:g} 人；缺勤：{alert.detail or '—'}"
    elif alert.kind == "source":
        detail = f"自 {alert.ts[11:16]} 起 {alert.value:g} 笔，平常应有 {alert.baseline:g}"
    else:
        detail = (f"{alert.ts} {label} = {alert.value:g}，平常 {alert.baseline:g}"
                  f"（{'偏高' if alert.direction == 'high' else '偏低'}，z {alert.z:g}）")
    escalated = f"（未确认，已升级到第 {level} 级）" if level else ""
    link = alert.link(link_base)
    title = f"[{sev}] {where} {what}{escalated}"
    markdown = (f"**{title}**\n> {detail}\n> 门店：{where}\n> 日期：{alert.day}\n"
                f"[打开门店页面]({link})")
    payload = alert.model_dump(mode="json")
    return Notice(key=f"{alert.id}:{level}", title=title, text=f"{title}\n{detail}", markdown=markdown, link=link,
                  severity=alert.severity, payload=payload)


def resolved_notice(alert: Alert, store_name: str | None, link_base: str, zone: str | None) -> Notice:
    """The alert cleared: the same people, the same channel, the same link."""
    where = f"{store_name or alert.store}（{alert.store}）"
    what = f"{METRIC_LABELS.get(alert.metric, alert.metric)} {alert.device}".strip()
    cleared = alert.cleared_at.astimezone(clock.zone(zone)).strftime("%H:%M") if alert.cleared_at else ""
    title = f"[已恢复] {where} {what}"
    detail = f"自 {alert.ts[11:16]} 起的问题已于 {cleared} 恢复"
    link = alert.link(link_base)
    return Notice(key=f"{alert.id}:resolved", title=title, text=f"{title}\n{detail}",
                  markdown=f"**{title}**\n> {detail}\n[打开门店页面]({link})", link=link, severity="resolved",
                  payload={**alert.model_dump(mode="json"), "resolved": True})


def run(db: Database, channels: dict[str, Channel], now: datetime, *, escalate_after_s: float = 900.0,
        dedup_s: float = 1800.0, link_base: str = "") -> NotifyResult:
    result = NotifyResult()
    stores = {r["id"]: r for r in db.query("SELECT id, name, region, timezone FROM stores")}
    all_owners = owners(db)
    rows = db.query("SELECT * FROM alerts WHERE created >= ? AND cleared_at IS NULL AND acked_by IS NULL "
                    "ORDER BY created, id", (iso(now - HORIZON),))
    for row in rows:
        alert = Alert(**row)
        store = stores.get(alert.store, {})

        def mine(level: int, alert: Alert = alert, store: dict = store) -> list[dict]:
            return [o for o in all_owners if o["level"] == level
                    and SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[o["min_severity"]]
                    and ((o["scope"] == "store" and o["scope_id"] == alert.store)
                         or (o["scope"] == "region" and o["scope_id"] == store.get("region"))
                         or (o["scope"] == "brand" and o["scope_id"] in ("*", alert.brand)))]

        # the levels with owners for this alert; level k+1 is reached escalate_after_s after level k
        levels = sorted({o["level"] for o in all_owners if o in mine(o["level"])})
        level = alert.level
        if levels:
            steps = 0
            if alert.severity == "critical" and alert.status == "open" and escalate_after_s > 0:
                steps = int((now - alert.created).total_seconds() // escalate_after_s)
            level = max(level, levels[min(steps, len(levels) - 1)])
        if level != alert.level:
            db.execute("UPDATE alerts SET level = ? WHERE id = ? AND level < ?", (level, alert.id, level))
            result.escalated += level > levels[0]
        for lvl in [v for v in levels if v <= level]:
            for owner in mine(lvl):
                status = "pending"
                recent = db.scalar(
                    "SELECT 1 FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id WHERE d.owner_id = ? "
                    "AND d.status = 'sent' AND d.sent_at >= ? AND a.store = ? AND a.metric = ? AND a.device = ? "
                    "AND a.id <> ? LIMIT 1",
                    (owner["id"], iso(now - timedelta(seconds=dedup_s)), alert.store, alert.metric, alert.device,
                     alert.id))
                if recent:
                    status = "duplicate"
                if db.execute(
                        "INSERT INTO alert_deliveries (alert_id, owner_id, level, channel, status, attempts, created, "
                        "next_try) VALUES (?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (alert_id, owner_id) DO NOTHING",
                        (alert.id, owner["id"], lvl, owner["channel"], status, iso(now), iso(now))):
                    result.routed += 1
                    result.duplicates += status == "duplicate"
    by_id = {o["id"]: o for o in all_owners}
    _send_due(db, channels, now, stores, by_id, link_base, result)
    _send_resolved(db, channels, now, stores, by_id, link_base, result)
    return result


def _send_resolved(db: Database, channels: dict[str, Channel], now: datetime, stores: dict, by_id: dict,
                   link_base: str, result: NotifyResult) -> None:
    """Tell everyone an alert was sent to that it cleared (once each; retried at the next run if it fails)."""
    rows = db.query("SELECT d.alert_id, d.owner_id, a.* FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id "
                    "WHERE d.status = 'sent' AND d.resolved_at IS NULL AND a.cleared_at IS NOT NULL "
                    "AND a.cleared_at >= ? ORDER BY a.cleared_at, d.alert_id, d.owner_id", (iso(now - HORIZON),))
    for row in rows:
        owner, store = by_id.get(row["owner_id"]), stores.get(row["store"], {})
        channel = channels.get(owner["channel"]) if owner else None
        if owner is None or channel is None \
                or in_window(owner["mute"], now.astimezone(clock.zone(store.get("timezone")))):
            continue
        key = (row["alert_id"], row["owner_id"])
        if not db.execute("UPDATE alert_deliveries SET resolved_at = ? WHERE alert_id = ? AND owner_id = ? "
                          "AND resolved_at IS NULL", (iso(now), *key)):
            continue  # another process claimed it
        alert = Alert(**row)
        try:
            channel.send(owner["address"], resolved_notice(alert, store.get("name"), link_base, store.get("timezone")))
        except ChannelFailed as exc:
            db.execute("UPDATE alert_deliveries SET resolved_at = NULL WHERE alert_id = ? AND owner_id = ?", key)
            result.failed += 1
            result.errors.append(str(exc))
            log.warning("resolved message of %s to %s not delivered: %s", alert.id, owner["person"], exc)
            continue
        result.resolved += 1


def _send_due(db: Database, channels: dict[str, Channel], now: datetime, stores: dict, by_id: dict,
              link_base: str, result: NotifyResult) -> None:
    due = db.query("SELECT * FROM alert_deliveries WHERE status IN ('pending', 'failed', 'held') AND next_try <= ? "
                   "ORDER BY created, alert_id, owner_id", (iso(now),))
    for d in due:
        row = db.one("SELECT * FROM alerts WHERE id = ?", (d["alert_id"],))
        owner = by_id.get(d["owner_id"])
        if row is None or owner is None or row["cleared_at"] is not None or row["acked_by"] is not None:
            db.execute("UPDATE alert_deliveries SET status = 'dropped' WHERE alert_id = ? AND owner_id = ?",
                       (d["alert_id"], d["owner_id"]))
            result.dropped += 1
            continue
        alert = Alert(**row)
        store = stores.get(alert.store, {})
        if in_window(owner["mute"], now.astimezone(clock.zone(store.get("timezone")))):
            if d["status"] != "held":
                db.execute("UPDATE alert_deliveries SET status = 'held', next_try = ? WHERE alert_id = ? "
                           "AND owner_id = ?", (iso(now + timedelta(minutes=1)), d["alert_id"], d["owner_id"]))
                result.held += 1
            else:
                db.execute("UPDATE alert_deliveries SET next_try = ? WHERE alert_id = ? AND owner_id = ?",
                           (iso(now + timedelta(minutes=1)), d["alert_id"], d["owner_id"]))
            continue
        # claim the row so that two cloud processes never send it both
        if not db.execute("UPDATE alert_deliveries SET next_try = ? WHERE alert_id = ? AND owner_id = ? "
                          "AND next_try = ?", (iso(now + timedelta(seconds=MAX_BACKOFF_S)), d["alert_id"],
                                               d["owner_id"], d["next_try"])):
            continue
        channel = channels.get(owner["channel"])
        try:
            if channel is None:
                raise ChannelFailed(f"channel {owner['channel']} is not configured")
            channel.send(owner["address"], notice_of(alert, store.get("name"), link_base, d["level"]))
        except ChannelFailed as exc:
            attempts = d["attempts"] + 1
            wait = min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (attempts - 1))
            status = "gave_up" if attempts >= MAX_ATTEMPTS else "failed"
            db.execute("UPDATE alert_deliveries SET status = ?, attempts = ?, error = ?, next_try = ? "
                       "WHERE alert_id = ? AND owner_id = ?",
                       (status, attempts, str(exc)[:500], iso(now + timedelta(seconds=wait)), d["alert_id"],
                        d["owner_id"]))
            result.failed += 1
            result.errors.append(str(exc))
            log.warning("alert %s to %s not delivered: %s", alert.id, owner["person"], exc)
            continue
        db.execute("UPDATE alert_deliveries SET status = 'sent', attempts = ?, sent_at = ?, error = NULL "
                   "WHERE alert_id = ? AND owner_id = ?", (d["attempts"] + 1, iso(now), d["alert_id"], d["owner_id"]))
        result.sent += 1
