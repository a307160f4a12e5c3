"""Store health at brand scale: a year of shop floor for 200 stores, rolled up, then every health
endpoint timed.

Loads the brand the demo generates, drawn the same way, with the benchmarks' bulk loader
(``cloud.synthetic.bulk.load_for_benchmark`` with ``floor_days``: a year of 200 stores through the
importers and the till would take far longer than the API it times), backfills the rollup over
the whole year (``rollup_days``), times one incremental
run of the periodic job (``rollup_changed``), then calls each endpoint ``--repeats`` times through
the real FastAPI app (in process) and reports p50/p95 in milliseconds. The dashboards' target is
pages under 2 s, so each endpoint should answer well under 1 s. Last stdout line is JSON.

    uv run python bench/health_api.py [--stores 200] [--days 365] [--persons 100000] [--db postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from cloud import clock
from cloud.api.app import create_app
from cloud.health.rollup import rollup_changed, rollup_days, set_mark
from cloud.runtime import (
    Runtime,
    open_cdp,
)
from cloud.settings import Settings
from cloud.synthetic.bulk import load_for_benchmark


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _generate(db, args: argparse.Namespace, end: datetime, out: dict) -> None:
    started = time.perf_counter()
    summary = load_for_benchmark(db, persons=args.persons, stores=args.stores, end=end, floor_days=args.days, progress=True)
    out["generate_s"] = round(time.perf_counter() - started, 1)
    out["rows"] = {k: summary[k] for k in ("orders", "lines", "arrivals", "feedback", "floor_orders", "stock_rows",
                                          "footfall_rows")}
    log(f"generated in {out['generate_s']} s: {out['rows']}")
    today = end.astimezone(clock.zone(clock.DEFAULT_TZ)).date()
    result = rollup_days(db, today - timedelta(days=args.days - 1), today, until=end)
    out["rollup_s"] = round(result.seconds, 1)
    out["metric_rows"] = result.rows
    out["store_days"] = result.store_days
    log(f"rolled up {result.store_days} store-days ({result.rows} rows) in {out['rollup_s']} s")
    set_mark(db, end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--arrivals", type=float, default=60.0, help="mean arrivals per store and day")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--db", help="a SQLite file or postgresql:// URL; empty: generated, already generated: "
                        "reused (API timings only); default a fresh SQLite file")
    args = parser.parse_args()
    location = args.db or str(Path(tempfile.mkdtemp(prefix="health-bench-")) / "cloud.db")
    end = datetime.now(UTC).replace(microsecond=0)
    out: dict[str, object] = {"stores": args.stores, "days": args.days, "persons": args.persons,
                              "engine": "postgresql" if args.db and args.db.startswith("postgres") else "sqlite"}

    db = open_cdp(location, sample_catalogue=False)
    if db.scalar("SELECT COUNT(*) FROM stores"):  # a database an earlier run generated: time the API only
        log(f"reusing the brand in {location}")
        end = datetime.fromisoformat(db.scalar("SELECT MAX(ts) FROM visits"))
        out.update(reused=True, stores=db.scalar("SELECT COUNT(*) FROM stores"),
                   days=db.scalar("SELECT COUNT(DISTINCT ts) FROM store_metrics WHERE grain = 'day'"))
    else:
        _generate(db, args, end, out)
    today = end.astimezone(clock.zone(clock.DEFAULT_TZ)).date()
    incremental = rollup_changed(db, now=end + timedelta(minutes=5))
    out["rollup_incremental_s"] = round(incremental.seconds, 2)
    stores = [s for (s,) in db.rows("SELECT id FROM stores ORDER BY id")]
    db.close()

    settings = Settings(db=location, api_key=None, rate_limit_per_minute=0, dev_open_mode=True)
    runtime = Runtime.open(settings)
    yesterday = (today - timedelta(days=1)).isoformat()
    store = stores[len(stores) // 2]
    endpoints = {
        "health_stores": ("/v1/health/stores", {"day": yesterday}),
        "health_store": (f"/v1/health/stores/{store}", {"day": yesterday}),
        "health_weights": ("/v1/health/weights", {}),
        "store_dashboard_today": (f"/v1/stores/{store}/dashboard", {}),
        "store_dashboard_yesterday": (f"/v1/stores/{store}/dashboard", {"day": yesterday}),
        "brand_live_today": ("/v1/brand/live", {}),
        "brand_live_yesterday": ("/v1/brand/live", {"day": yesterday}),
    }
    timings: dict[str, dict[str, float]] = {}
    try:
        with TestClient(create_app(settings, runtime)) as client:
            for name, (path, params) in endpoints.items():
                client.get(path, params=params).raise_for_status()  # warm the caches once
                took = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    client.get(path, params=params).raise_for_status()
                    took.append((time.perf_counter() - t0) * 1000)
                timings[name] = {"p50_ms": round(median(took), 1), "p95_ms": round(percentile(took, 0.95), 1)}
                log(f"{name}: {timings[name]}")
    finally:
        runtime.close()
    out["endpoints"] = timings
    out["slowest_p95_ms"] = max(t["p95_ms"] for t in timings.values())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
