"""Alerts as rows: recorded once per store, metric and period, listed for HQ, acknowledged by a person,
and published to MQTT until the broker has each one.

The row is the truth and the message its copy: ``record`` inserts (a period already alerted is
skipped by the unique index, so re-scans and concurrent scanners raise nothing twice), and
``publish_pending`` sends every alert whose message the broker has not confirmed yet, claiming each
row first so that two cloud processes never send the same alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cloud import clock
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.errors import Conflict, NotFound
from cloud.health.baseline import Direction, Severity
from protocol.health import HealthAlert

log = logging.getLogger(__name__)

Status = Literal["open", "acked", "cleared"]
#: metric: a closed period of the rollup (cloud.health.anomaly); device: a box, camera or screen offline or
#: silent (cloud.health.device_health); source: a business source dark or collapsing now (cloud.health.shortfall)
Kind = Literal["metric", "device", "source"]
#: Sends one alert; True once the broker has confirmed it.
Publish = Callable[[HealthAlert], bool]

_COLUMNS = ("id", "brand", "store", "metric", "grain", "ts", "value", "baseline", "mad", "z", "direction",
            "severity", "status", "created", "acked_by", "acked_at", "note", "kind", "device", "detail")


class Alert(BaseModel):
    """One period of one store's metric outside its normal (``ts`` is the period's local start), or
    one device of a store offline or silent (``kind`` device; ``ts`` the local minute it began)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    brand: str
    store: str
    metric: str
    grain: Literal["hour", "day"]
    ts: str
    value: float
    baseline: float
    mad: float
    z: float
    direction: Direction
    severity: Severity
    status: Status
    created: datetime
    acked_by: str | None = None
    acked_at: datetime | None = None
    note: str | None = None
    kind: Kind = "metric"
    device: str = ""
    cleared_at: datetime | None = None
    level: int = 0
    #: what it is about in words where the numbers do not say it: the assistants absent (``staff_absent``)
    detail: str | None = None

    @property
    def day(self) -> str:
        return self.ts[:10]

    def link(self, base: str = "") -> str:
        """The store manager's page opened on this alert's store, day and metric."""
        return f"{base}/dash/store.html?store={self.store}&day={self.day}&metric={self.metric}&alert={self.id}"


class AlertNotFound(NotFound):
    """No alert with that id."""

    code = "unknown_alert"


class AlreadyAcked(Conflict):
    """The alert was acknowledged before: the first person to acknowledge it stays on record."""

    code = "already_acked"


def record(db: Database, alerts: list[Alert]) -> list[Alert]:
    """Insert the alerts whose period has none yet; the ones inserted."""
    sql = (f"INSERT INTO alerts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
           "ON CONFLICT (store, metric, grain, ts, device) DO NOTHING")
    fresh: list[Alert] = []
    with db.transaction() as tx:
        for alert in alerts:
            row = alert.model_dump()
            row["created"] = iso(alert.created)
            if tx.execute(sql, tuple(row[c] for c in _COLUMNS)):
                fresh.append(alert)
    return fresh


def listing(db: Database, *, store: str | None, status: Status | None, limit: int) -> list[Alert]:
    """Newest raised first; ``store`` and ``status`` None mean every store and both states."""
    where, args = [], []
    if store is not None:
        where.append("store = ?")
        args.append(store)
    if status is not None:
        where.append("status = ?")
        args.append(status)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = db.query(f"SELECT * FROM alerts {clause} ORDER BY created DESC, ts DESC, id LIMIT ?", (*args, limit))
    return [Alert(**r) for r in rows]


def get(db: Database, alert_id: str) -> Alert:
    row = db.one("SELECT * FROM alerts WHERE id = ?", (alert_id,))
    if row is None:
        raise AlertNotFound(f"no alert {alert_id}")
    return Alert(**row)


def ack(db: Database, alert_id: str, *, actor: str, note: str | None) -> Alert:
    """Mark an alert as seen by ``actor`` (a person); acknowledging twice is refused, naming who did first.
    A device alert that cleared itself may still be acknowledged (someone looked), once."""
    with db.transaction():
        alert = get(db, alert_id)
        now = iso(utcnow())
        changed = db.execute(
            "UPDATE alerts SET status = CASE WHEN status = 'cleared' THEN status ELSE 'acked' END, acked_by = ?, "
            "acked_at = ?, note = ? WHERE id = ? AND acked_by IS NULL",
            (actor, now, note, alert_id))
        if not changed:
            raise AlreadyAcked(f"alert {alert_id} was acknowledged by {alert.acked_by} at {alert.acked_at}")
        if note:
            db.execute("INSERT INTO alert_notes (alert_id, person, ts, note) VALUES (?, ?, ?, ?)",
                       (alert_id, actor, now, note))
        return get(db, alert_id)


def add_note(db: Database, alert_id: str, *, actor: str, note: str) -> list[dict]:
    """A person's note on an alert (what was found, what was done); every note of the alert, oldest first."""
    get(db, alert_id)
    db.execute("INSERT INTO alert_notes (alert_id, person, ts, note) VALUES (?, ?, ?, ?)",
               (alert_id, actor, iso(utcnow()), note))
    return notes(db, alert_id)


def notes(db: Database, alert_id: str) -> list[dict]:
    return db.query("SELECT person, ts, note FROM alert_notes WHERE alert_id = ? ORDER BY ts, id", (alert_id,))


def open_alert(db: Database, kind: Kind, store: str, device: str, metric: str) -> Alert | None:
    """The device's (or, ``device`` '', the store's) alert of that kind and metric still in force
    (open or acknowledged, not cleared)."""
    row = db.one("SELECT * FROM alerts WHERE kind = ? AND store = ? AND device = ? AND metric = ? "
                 "AND cleared_at IS NULL ORDER BY created DESC LIMIT 1", (kind, store, device, metric))
    return Alert(**row) if row else None


def describe(db: Database, alert_id: str, detail: str | None, value: float) -> None:
    """The alert in force is about something else now (another assistant absent too, one came in): its
    words and its value follow; its period, baseline and severity stay as raised."""
    db.execute("UPDATE alerts SET detail = ?, value = ? WHERE id = ?", (detail, value, alert_id))


def clear(db: Database, alert_id: str, now: datetime) -> bool:
    """The condition is over (the device is back): the alert closes itself; False if it already was."""
    return bool(db.execute(
        "UPDATE alerts SET cleared_at = ?, status = CASE WHEN status = 'open' THEN 'cleared' ELSE status END "
        "WHERE id = ? AND cleared_at IS NULL", (iso(now), alert_id)))


def to_message(alert: Alert, zone: str | None) -> HealthAlert:
    start = datetime.fromisoformat(alert.ts).replace(tzinfo=clock.zone(zone))
    return HealthAlert(
        alert_id=alert.id, brand=alert.brand, store=alert.store, ts=alert.created, metric=alert.metric,
        grain=alert.grain, period_start=start, value=alert.value, baseline=alert.baseline, mad=alert.mad,
        z=alert.z, direction=alert.direction, severity=alert.severity,
    )


def publish_pending(db: Database, publish: Publish) -> int:
    """Publish every alert the broker has not confirmed yet, oldest first; the number sent."""
    pending = db.query(
        "SELECT a.*, s.timezone FROM alerts a LEFT JOIN stores s ON s.id = a.store "
        "WHERE a.published_at IS NULL ORDER BY a.created, a.id")
    sent = 0
    for row in pending:
        if not db.execute("UPDATE alerts SET published_at = ? WHERE id = ? AND published_at IS NULL",
                          (iso(utcnow()), row["id"])):
            continue  # another process claimed it
        try:
            delivered = publish(to_message(Alert(**row), row["timezone"]))
        except Exception:  # a broken broker connection must not lose the alert
            log.exception("alert %s not published", row["id"])
            delivered = False
        if not delivered:
            db.execute("UPDATE alerts SET published_at = NULL WHERE id = ?", (row["id"],))
            continue
        sent += 1
    return sent
