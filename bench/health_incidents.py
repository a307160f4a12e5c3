"""Planted shop-floor incidents through the production rollup, scoring, scans and device health (issue 17).

A brand of ``--stores`` stores x ``--weeks`` weeks (``cloud.synthetic.brand.generate``, an average
store seeing ``--arrivals-per-day`` people on a weekday); over the last ``--eval-days`` days,
``--per-day`` random stores a day get an incident of a random kind of the six
(``cloud.synthetic.incidents.KINDS``: guide screen idle, door camera down, shelves empty, staff
absent, conversion collapse, POS down) from a random local hour (10-17) to the day's end. Then the
production code, as the cloud process runs it:

- ``rollup_days`` (hourly and daily metrics, the day scores) over the whole history;
- ``shortfall.scan``, the hourly business rule on the live rows, every ``--step-min`` minutes of
  every evaluated day's opening hours, for every store (its false alerts count against precision);
- ``anomaly.scan`` (hour and day grains) over the evaluated days;
- for camera_down, the edge box's telemetry stops at the incident's start, for screen_idle (a
  frozen screen) the guide screen's heartbeat, and ``device_health.scan`` runs every minute;
- ``views.ranking`` per day.

The truth is the planted store-days; the ranking is the product's own score. JSON last:

- ``recall``: incident store-days with an alert about that store-day (a source or device alert
  raised after the incident began, or an anomaly alert of that store-day);
- ``precision``: of the alerts about the evaluated days, those that are such an alert;
- ``p95_detect_min_device``: camera_down and screen_idle, minutes from the device's silence to the
  device alert;
- ``p95_detect_min_business``: the other four kinds, minutes from the incident's start to the first
  alert (a source alert's creation; an anomaly alert at the end of its period + the 5 min rollup
  lag), over the detected ones; ``by_kind`` has each kind's p95, recall and bottom-quarter share,
  shelves_empty in its two forms: ``shelves_empty/movements`` at the stores that export intraday
  stock movements (told by the hourly rule's stock check, ``cloud.health.stock_out``) and
  ``shelves_empty/closing_count`` at those that send only the day's count (known only after the day);
- ``false_alerts_per_store_week``: alerts about the evaluated days that are about no incident, per
  store and 7 evaluated days;
- ``incident_store_bottom_quartile``: incident store-days whose store ranks in the bottom quarter
  of that day's ranking (the default weights), and ``bottom_quartile_by_operations_weight`` the same
  share with the operations sub-score (``incident_hours_share``) at each weight of ``OPERATIONS_WEIGHTS``
  in the overall (0: without it), which is how its default weight was chosen;
- ``p95_detect_min_by_kind``: each kind's p95 minutes to detect (the device kinds' from device health).

After the scans the evaluated days are rolled up again, as the cloud process's periodic rollup goes
over a day after its alerts were raised: the day's ``incident_hours_share`` counts them.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cloud import clock
from cloud.clock import iso
from cloud.fleet import devices
from cloud.health import anomaly, device_health, model, shortfall, views
from cloud.health.alerts import Alert
from cloud.health.rollup import rollup_days
from cloud.runtime import open_cdp
from cloud.synthetic.brand import generate
from cloud.synthetic.incidents import KINDS, Incident, plant_incidents

TZ = "Asia/Shanghai"
ROLLUP_LAG_MIN = 5.0


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)


def start_of(i: Incident) -> datetime:
    return clock.day_start_utc(date.fromisoformat(i.day), TZ) + timedelta(hours=i.from_hour)


def live_scans(db, days: list[date], step_min: int) -> list[Alert]:
    """The hourly business rule over every evaluated day's opening hours (10:00-22:00 local)."""
    raised: list[Alert] = []
    for d in days:
        t = clock.day_start_utc(d, TZ) + timedelta(hours=10, minutes=step_min)
        close = clock.day_start_utc(d, TZ) + timedelta(hours=22)
        while t <= close:
            found, _ = shortfall.scan(db, t)
            raised += found
            t += timedelta(minutes=step_min)
    return raised


#: the kinds a device's silence tells, and the device: the door camera's edge box stops its telemetry, a frozen
#: guide screen its heartbeat (sent from its UI thread; ``kiosk.guide_screen.feed.CardFeed.heartbeat``)
DEVICE_KINDS = {"camera_down": "edge", "screen_idle": "kiosk"}


def device_delays(db, incidents: list[Incident]) -> dict[tuple[str, str], float]:
    """The device kinds: the device's last report at the incident's start; minutes to its alert from
    ``device_health.scan`` run every minute."""
    delays: dict[tuple[str, str], float] = {}
    for i in incidents:
        role = DEVICE_KINDS.get(i.kind)
        if role is None:
            continue
        start, device = start_of(i), f"{role}-{i.store}"
        devices.observed(db, "lumiere", i.store, device, role, ts=start, conn_state="online")
        if role == "edge":
            db.execute("INSERT INTO device_telemetry (brand, store, device, ts, model_pack, fps, received) "
                       "VALUES ('lumiere', ?, ?, ?, 'p', 9.0, ?)", (i.store, device, iso(start), iso(start)))
        for minute in range(1, 61):
            found, _ = device_health.scan(db, start + timedelta(minutes=minute))
            if any(a.store == i.store for a in found):
                delays[(i.store, i.day)] = float(minute)
                break
        db.execute("DELETE FROM devices WHERE store = ?", (i.store,))
        # the device stays down to the day's end, as planted (its alert covers those hours of the day's score)
        day_end = clock.day_start_utc(date.fromisoformat(i.day) + timedelta(days=1), TZ)
        db.execute("UPDATE alerts SET cleared_at = ? WHERE kind = 'device' AND cleared_at IS NULL", (iso(day_end),))
    return delays


#: the operations sub-score's weights tried (``bottom_quartile_by_operations_weight``); 0 is the ranking without it
OPERATIONS_WEIGHTS = (0.0, 0.25, 0.5, 1.0)


def day_ranks(db, days: list[date]) -> dict[str, tuple[dict[str, int], int]]:
    """Each day's ranking under the weights in force: (store -> rank, stores ranked)."""
    out = {}
    for d in days:
        ranked = [r for r in views.ranking(db, d)["stores"] if r["rank"] is not None]
        out[d.isoformat()] = ({r["store"]: r["rank"] for r in ranked}, len(ranked))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stores", type=int, default=20)
    ap.add_argument("--weeks", type=int, default=8)
    ap.add_argument("--eval-days", type=int, default=14)
    ap.add_argument("--per-day", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--persons", type=int, default=4000)
    ap.add_argument("--arrivals-per-day", type=float, default=60.0)
    ap.add_argument("--step-min", type=int, default=5, help="minutes between two runs of the hourly rule")
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS),
                    help="plant only these kinds (more incidents of one kind than a mixed run gives)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    end = datetime(2026, 3, 2, 16, tzinfo=UTC)  # local midnight of 2026-03-03 in China: whole days
    db = open_cdp(Path(tempfile.mkdtemp()) / "bench.db", sample_catalogue=False)
    generate(db, persons=args.persons, stores=args.stores, seed=args.seed, end=end, floor_days=args.weeks * 7,
             arrivals_per_day=args.arrivals_per_day)
    stores = [s for (s,) in db.rows("SELECT id FROM stores ORDER BY id")]
    last = date(2026, 3, 2)
    days = [last - timedelta(days=k) for k in range(args.eval_days)][::-1]
    incidents: list[Incident] = []
    for d in days:
        for store in rng.sample(stores, args.per_day):
            kind, hour = rng.choice(args.kinds), rng.randint(10, 17)
            incidents += plant_incidents(db, [store], d, from_hour=hour, kinds=[kind])
    gen_s = time.perf_counter() - started
    first = last - timedelta(days=args.weeks * 7 - 1)
    rollup_days(db, first, last, until=end)
    scan_started = time.perf_counter()
    live = live_scans(db, days, args.step_min)
    live_s = time.perf_counter() - scan_started
    config = anomaly.ScanConfig(first_lookback=timedelta(days=args.eval_days + 1))
    periods = anomaly.scan(db, None, end + timedelta(hours=1), config)
    device = device_delays(db, incidents)
    # the periodic rollup goes over each day again after its alerts (``rollup_changed``: today and yesterday)
    rollup_days(db, days[0], last, until=end)

    planted = {(i.store, i.day): i for i in incidents}
    window = {d.isoformat() for d in days}

    def about(a: Alert) -> tuple[str, str] | None:
        """The incident store-day an alert is about, if any (a live alert only once the incident began)."""
        key = (a.store, a.ts[:10])
        i = planted.get(key)
        if i is None or (a.kind == "source" and a.created < start_of(i)):
            return None
        return key

    alerts = [a for a in live + periods if a.ts[:10] in window]
    hits: dict[tuple[str, str], list[float]] = defaultdict(list)
    for a in alerts:
        key = about(a)
        if key is None:
            continue
        start = start_of(planted[key])
        if a.kind == "source":
            hits[key].append((a.created - start).total_seconds() / 60)
        else:
            local_start = datetime.fromisoformat(a.ts).replace(tzinfo=clock.zone(TZ))
            if a.grain == "hour" and local_start < start:
                continue  # an hour before the incident: chance, not a detection
            period_end = local_start + (timedelta(hours=1) if a.grain == "hour" else timedelta(days=1))
            hits[key].append((period_end - start).total_seconds() / 60 + ROLLUP_LAG_MIN)
    true_alerts = sum(about(a) is not None for a in alerts)
    ranked_by_day = day_ranks(db, days)
    bottom_by_weight = {}
    for weight in OPERATIONS_WEIGHTS:  # the operations sub-score's weight in the overall, read at ranking time
        model.save_weights(db, {"overall": {**model.DEFAULT_WEIGHTS["overall"], "operations": weight}})
        by_day = day_ranks(db, days)
        bottom_by_weight[str(weight)] = round(sum(
            by_day[i.day][0].get(i.store, 0) > 0.75 * by_day[i.day][1] for i in incidents) / len(incidents), 3) \
            if incidents else None
    db.execute("DELETE FROM settings WHERE key = ?", (model.WEIGHTS_KEY,))
    per_kind: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    business, bottom, detected = [], 0, 0
    moving = {s for (s,) in db.rows("SELECT DISTINCT store FROM stock_movements")}
    for i in incidents:
        key = (i.store, i.day)
        caught = bool(hits[key]) or key in device
        detected += caught
        form = ("/movements" if i.store in moving else "/closing_count") if i.kind == "shelves_empty" else ""
        k = per_kind[i.kind + form]
        k["caught"].append(caught)
        if key in device:
            k["delay"].append(device[key])
        elif hits[key] and i.kind not in DEVICE_KINDS:
            business.append(min(hits[key]))
            k["delay"].append(min(hits[key]))
        ranks, n = ranked_by_day[i.day]
        low = ranks.get(i.store) is not None and ranks[i.store] > 0.75 * n
        bottom += low
        k["bottom"].append(low)
    out = {
        "stores": args.stores, "weeks": args.weeks, "eval_days": args.eval_days, "incidents": len(incidents),
        "arrivals_per_day": args.arrivals_per_day, "step_min": args.step_min,
        "by_kind": {kind: {"n": len(v["caught"]), "recall": round(sum(v["caught"]) / len(v["caught"]), 3),
                           "p95_detect_min": p95(v["delay"]),
                           "bottom_quartile": round(sum(v["bottom"]) / len(v["bottom"]), 3)}
                    for kind, v in sorted(per_kind.items())},
        "alerts_in_window": len(alerts), "source_alerts": sum(a.ts[:10] in window for a in live),
        "false_alerts_by_metric": dict(sorted(Counter(f"{a.kind}:{a.metric}" for a in alerts
                                                      if about(a) is None).items())),
        "false_alerts_per_store_week": round(sum(about(a) is None for a in alerts) / (args.stores * len(days) / 7), 3),
        "recall": round(detected / len(incidents), 3) if incidents else None,
        "precision": round(true_alerts / len(alerts), 3) if alerts else None,
        "p95_detect_min_device": p95(list(device.values())), "device_incidents": len(device),
        "p95_detect_min_business": p95(business),
        "p95_detect_min_by_kind": {kind: p95(v["delay"]) for kind, v in sorted(per_kind.items())},
        "incident_store_bottom_quartile": round(bottom / len(incidents), 3) if incidents else None,
        "bottom_quartile_by_operations_weight": bottom_by_weight,
        "generate_s": round(gen_s, 1), "live_scan_s": round(live_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
