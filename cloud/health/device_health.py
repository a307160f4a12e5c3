"""Device health in minutes: every edge box, camera, guide screen and label gateway that should
report during the store's opening hours and does not raises an alert, and the alert clears itself
when the device is back.

A scheduler job (``Runtime``, every ``device_health_every_s``, 60 s) reads what the ingest already
keeps (``cloud.fleet.devices.observed``: the retained ``state``, whose Last Will is ``offline``,
and every telemetry report; ``device_telemetry``: the cameras' frame rate; ``arrivals``: each box's
door events) and judges each device of each store that is open now (``stores.opening_hours``,
``HH:MM-HH:MM`` local, imported with the master data; ``DEFAULT_HOURS`` without; ``cloud.health.opening_hours``):

- ``device_offline`` (critical): its ``state`` is ``offline`` (the broker published its Last Will),
  or an edge box sent no telemetry, or a guide screen no heartbeat, for ``stale_s`` (both report
  every 30 s; the screen's heartbeat comes from its UI thread, so a frozen screen, whose network
  thread still keeps the connection and its Last Will quiet, stops it);
- ``device_silent`` (critical): an edge box reports but its cameras process no frames (fps 0);
- ``device_silent`` (warning): an edge box saw no arrival for so long that, at the store's usual
  rate for this weekday and hour (the median of ``store_metrics`` hourly arrivals over the same
  weekday of 4 weeks, shared among the store's boxes), ``SILENT_EXPECTED`` arrivals were due
  (P(none) < 0.3 % for a Poisson count): a camera that runs but looks at the wrong thing.

One alert per device and kind while the condition lasts (``alerts.open_alert``); it clears
(``cleared_at``, status ``cleared``) as soon as the device reports again, frames flow or an
arrival comes. Device alerts go through the same recording, MQTT publishing and notifications as
metric alerts (``cloud.health.notify``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from cloud import clock
from cloud.clock import iso
from cloud.db import Database
from cloud.health import alerts
from cloud.health.alerts import Alert
from cloud.health.opening_hours import OpeningHours
from protocol.messages import new_id

SILENT_EXPECTED = 6.0
ROLES = ("edge", "kiosk", "esl_gateway")
#: the roles that report every 30 s while they work, so silence for ``stale_s`` is a fault: an edge box's
#: telemetry, a guide screen's heartbeat from its UI thread (a frozen screen stops it)
BEATING = {"edge": "edge box", "kiosk": "guide screen"}


@dataclass(frozen=True)
class Finding:
    store: str
    brand: str
    device: str
    metric: str  # device_offline | device_silent
    severity: str
    value: float
    expected: float
    reason: str


def _expected_per_minute(db: Database, store: str, local: datetime) -> float:
    """The store's usual door arrivals per minute at this weekday and hour (median of 4 weeks)."""
    hours = [(local - timedelta(weeks=k)).strftime("%Y-%m-%dT%H:00") for k in range(1, 5)]
    values = [v for (v,) in db.rows(
        f"SELECT value FROM store_metrics WHERE store = ? AND grain = 'hour' AND metric = 'arrivals' "
        f"AND ts IN ({', '.join('?' for _ in hours)})", (store, *hours))]
    return median(values) / 60.0 if len(values) >= 2 else 0.0


def judge(db: Database, now: datetime, *, stale_s: float = 120.0) -> list[Finding]:
    """Every device of an open store that should report and does not, at ``now``."""
    stores = {r["id"]: r for r in db.query("SELECT id, brand, timezone, opening_hours FROM stores")}
    fps = {(s, d): f for s, d, f in db.rows(
        "SELECT t.store, t.device, t.fps FROM device_telemetry t JOIN (SELECT store, device, MAX(ts) AS ts "
        "FROM device_telemetry WHERE ts >= ? GROUP BY store, device) m "
        "ON m.store = t.store AND m.device = t.device AND m.ts = t.ts", (iso(now - timedelta(seconds=stale_s)),))}
    last_arrival = {(s, d): ts for s, d, ts in db.rows(
        "SELECT store, device, MAX(ts) FROM arrivals WHERE ts >= ? GROUP BY store, device",
        (iso(now - timedelta(hours=12)),))}
    devices = db.query(f"SELECT brand, store, device, role, last_seen, conn_state FROM devices "
                       f"WHERE role IN ({', '.join('?' for _ in ROLES)}) ORDER BY store, device", ROLES)
    edges: dict[str, int] = defaultdict(int)
    for d in devices:
        edges[d["store"]] += d["role"] == "edge"
    found: list[Finding] = []
    for d in devices:
        store = stores.get(d["store"])
        if store is None:
            continue
        local = now.astimezone(clock.zone(store["timezone"]))
        hours = OpeningHours.parse(store["opening_hours"])
        if not hours.is_open(local):
            continue
        key = (d["store"], d["device"])
        seen_s = (now - datetime.fromisoformat(d["last_seen"])).total_seconds()
        if d["conn_state"] == "offline":
            found.append(Finding(d["store"], d["brand"], d["device"], "device_offline", "critical", seen_s, 0.0,
                                 f"{d['role']} {d['device']} is offline (Last Will)"))
            continue
        if d["role"] not in BEATING:
            continue
        if seen_s > stale_s:
            found.append(Finding(d["store"], d["brand"], d["device"], "device_offline", "critical", seen_s, stale_s,
                                 f"{BEATING[d['role']]} {d['device']} sent nothing for {seen_s / 60:.0f} min"))
            continue
        if d["role"] != "edge":
            continue
        if key in fps and fps[key] <= 0:
            found.append(Finding(d["store"], d["brand"], d["device"], "device_silent", "critical", 0.0, 1.0,
                                 f"the cameras of {d['device']} process no frames"))
            continue
        rate = _expected_per_minute(db, d["store"], local) / max(1, edges[d["store"]])
        if rate <= 0:
            continue
        since = max(filter(None, (datetime.fromisoformat(last_arrival[key]) if key in last_arrival else None,
                                  hours.opened(local).astimezone(now.tzinfo))))
        gap_min = (now - since).total_seconds() / 60.0
        if rate * gap_min >= SILENT_EXPECTED:
            found.append(Finding(d["store"], d["brand"], d["device"], "device_silent", "warning", 0.0,
                                 round(rate * gap_min, 1),
                                 f"no arrival from {d['device']} for {gap_min:.0f} min, {rate * gap_min:.0f} were due"))
    return found


def scan(db: Database, now: datetime, *, stale_s: float = 120.0) -> tuple[list[Alert], list[str]]:
    """Raise an alert for each new finding and clear those whose device is back: (raised, cleared ids)."""
    findings = {(f.store, f.device, f.metric): f for f in judge(db, now, stale_s=stale_s)}
    zones = dict(db.rows("SELECT id, timezone FROM stores"))
    fresh: list[Alert] = []
    for (store, device, metric), f in findings.items():
        if alerts.open_alert(db, "device", store, device, metric) is not None:
            continue
        local = now.astimezone(clock.zone(zones.get(store)))
        fresh.append(Alert(
            id=new_id(), brand=f.brand, store=store, metric=metric, grain="hour", ts=local.strftime("%Y-%m-%dT%H:%M"),
            value=f.value, baseline=f.expected, mad=0.0, z=0.0, direction="low", severity=f.severity,
            status="open", created=now, note=None, kind="device", device=device))
    raised = alerts.record(db, fresh)
    cleared = []
    for row in db.query("SELECT id, store, device, metric FROM alerts WHERE kind = 'device' AND cleared_at IS NULL"):
        if (row["store"], row["device"], row["metric"]) not in findings and _back(db, row, now, stale_s):
            if alerts.clear(db, row["id"], now):
                cleared.append(row["id"])
    return raised, cleared


def _back(db: Database, row: dict, now: datetime, stale_s: float) -> bool:
    """Positive evidence that the device is back (not just that its store closed)."""
    dev = db.one("SELECT role, last_seen, conn_state FROM devices WHERE store = ? AND device = ?",
                 (row["store"], row["device"]))
    if dev is None:
        return True  # removed from the store
    fresh = (now - datetime.fromisoformat(dev["last_seen"])).total_seconds() <= stale_s
    if dev["conn_state"] == "offline" or (dev["role"] in BEATING and not fresh):
        return False
    if row["metric"] == "device_offline":
        return True
    created = db.scalar("SELECT created FROM alerts WHERE id = ?", (row["id"],))
    fps = db.scalar("SELECT fps FROM device_telemetry WHERE store = ? AND device = ? ORDER BY ts DESC LIMIT 1",
                    (row["store"], row["device"]))
    arrived = db.scalar("SELECT 1 FROM arrivals WHERE store = ? AND device = ? AND ts >= ? LIMIT 1",
                        (row["store"], row["device"], created))
    return bool(fps and fps > 0) and (arrived is not None or _only_frames(db, row["id"]))


def _only_frames(db: Database, alert_id: str) -> bool:
    """A frames alert (critical) clears on frames alone; an arrivals-rate one (warning) needs an arrival."""
    return db.scalar("SELECT severity FROM alerts WHERE id = ?", (alert_id,)) == "critical"
