"""Planted shop-floor incidents through the production rollup, scoring, anomaly scan and device
health (issue 17), PARTIAL: three of the issue's six kinds exist as planters
(``cloud.synthetic.incidents``: guide screen idle, door camera down, shelves empty); staff absent,
conversion collapse and POS down are not planted yet.

A brand of ``--stores`` stores x ``--weeks`` weeks (``cloud.synthetic.brand.generate``); over the
last ``--eval-days`` days, ``--per-day`` random stores a day get an incident of a random kind from a
random local hour (10-17) to the day's end. Then the production code: ``rollup_days`` (scores),
``anomaly.scan`` (hour and day grains), ``views.ranking`` per day and, for camera_down, the edge
box's telemetry stops at the incident's start and ``device_health.scan`` runs every minute.

JSON last: recall (incident store-days with an alert on that store-day: anomaly or device),
precision (alerts on incident store-days / all alerts in the window), p95_detect_min_device,
p95_detect_min_business (end of the first alerting period + 5 min rollup lag - incident start),
incident_store_bottom_quartile (incident store-days ranked in the bottom quarter that day).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cloud import clock
from cloud.clock import iso
from cloud.fleet import devices
from cloud.health import anomaly, device_health, views
from cloud.health.rollup import rollup_days
from cloud.runtime import open_cdp
from cloud.synthetic.brand import generate
from cloud.synthetic.incidents import KINDS, plant_incidents


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stores", type=int, default=20)
    ap.add_argument("--weeks", type=int, default=8)
    ap.add_argument("--eval-days", type=int, default=14)
    ap.add_argument("--per-day", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--persons", type=int, default=4000)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    end = datetime(2026, 3, 2, 16, tzinfo=UTC)  # local midnight of 2026-03-03 in China: whole days
    db = open_cdp(Path(tempfile.mkdtemp()) / "bench.db", sample_catalogue=False)
    generate(db, persons=args.persons, stores=args.stores, seed=args.seed, end=end, floor_days=args.weeks * 7)
    stores = [s for (s,) in db.rows("SELECT id FROM stores ORDER BY id")]
    last = date(2026, 3, 2)
    days = [last - timedelta(days=k) for k in range(args.eval_days)][::-1]
    incidents = []
    for d in days:
        for store in rng.sample(stores, args.per_day):
            kind, hour = rng.choice(KINDS), rng.randint(10, 17)
            incidents += plant_incidents(db, [store], d, from_hour=hour, kinds=[kind])
    gen_s = time.perf_counter() - started
    first = last - timedelta(days=args.weeks * 7 - 1)
    rollup_days(db, first, last, until=end)
    # the anomaly scan, as the cloud runs it, over the evaluated days (first scan looks back that far)
    config = anomaly.ScanConfig(first_lookback=timedelta(days=args.eval_days + 1))
    raised = anomaly.scan(db, None, end + timedelta(hours=1), config)
    by_store_day: dict[tuple[str, str], list] = {}
    for a in raised:
        by_store_day.setdefault((a.store, a.ts[:10]), []).append(a)
    window = {d.isoformat() for d in days}
    in_window = [a for a in raised if a.ts[:10] in window]
    planted_keys = {(i.store, i.day) for i in incidents}
    # device health: the door camera's edge box stops reporting at the incident's start
    device_delays = []
    device_caught: set[tuple[str, str]] = set()
    for i in incidents:
        if i.kind != "camera_down":
            continue
        start = clock.day_start_utc(date.fromisoformat(i.day), "Asia/Shanghai") + timedelta(hours=i.from_hour)
        devices.observed(db, "lumiere", i.store, f"edge-{i.store}", "edge", ts=start, conn_state="online")
        db.execute("INSERT INTO device_telemetry (brand, store, device, ts, model_pack, fps, received) "
                   "VALUES ('lumiere', ?, ?, ?, 'p', 9.0, ?)", (i.store, f"edge-{i.store}", iso(start), iso(start)))
        for minute in range(1, 61):
            found, _ = device_health.scan(db, start + timedelta(minutes=minute))
            if any(a.store == i.store for a in found):
                device_delays.append(float(minute))
                device_caught.add((i.store, i.day))
                break
        db.execute("DELETE FROM devices WHERE store = ?", (i.store,))
        db.execute("UPDATE alerts SET cleared_at = ? WHERE kind = 'device' AND cleared_at IS NULL", (iso(start),))
    detected, business_delays, bottom = 0, [], 0
    for i in incidents:
        found = by_store_day.get((i.store, i.day), [])
        device_hit = (i.store, i.day) in device_caught
        if found or device_hit:
            detected += 1
        start = datetime.fromisoformat(f"{i.day}T{i.from_hour:02d}:00")
        ends = [datetime.fromisoformat(a.ts) + (timedelta(hours=1) if a.grain == "hour" else timedelta(days=1))
                for a in found if a.grain == "day" or a.ts >= start.strftime("%Y-%m-%dT%H:00")]
        if ends and i.kind != "camera_down":
            business_delays.append((min(ends) - start).total_seconds() / 60 + 5)
        ranking = views.ranking(db, date.fromisoformat(i.day))
        ranked = [r for r in ranking["stores"] if r["rank"] is not None]
        rank = next((r["rank"] for r in ranked if r["store"] == i.store), None)
        if rank is not None and rank > 0.75 * len(ranked):
            bottom += 1
    true_alerts = sum(1 for a in in_window if (a.store, a.ts[:10]) in planted_keys)
    out = {
        "stores": args.stores, "weeks": args.weeks, "eval_days": args.eval_days, "incidents": len(incidents),
        "kinds_planted": sorted({i.kind for i in incidents}), "kinds_missing": ["staff_absent", "conversion_collapse",
                                                                                "pos_down"],
        "recall": round(detected / len(incidents), 3) if incidents else None,
        "precision": round(true_alerts / len(in_window), 3) if in_window else None,
        "alerts_in_window": len(in_window),
        "p95_detect_min_device": p95(device_delays), "device_incidents": len(device_delays),
        "p95_detect_min_business": p95(business_delays),
        "incident_store_bottom_quartile": round(bottom / len(incidents), 3) if incidents else None,
        "generate_s": round(gen_s, 1), "total_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
