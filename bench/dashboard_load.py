"""Dashboard load time in Chromium with a year of data for 200 stores (target: under 2 s).

    uv run python bench/dashboard_load.py                        # builds the data set (long)
    uv run python bench/dashboard_load.py --db /tmp/health.db    # one bench/health_api.py --db built

The data set is bench/health_api.py's, made by running that bench (not a copy of its code): 200
stores, a year of orders and shop floor, rolled up and scored. Keys made for the run are deleted
afterwards, so a reused database is left as it was. The real cloud app serves it on a loopback port; Debian's
Chromium opens each page as its user would (HQ key for the HQ page and the big-screen, a store
manager's key for the store page), in a fresh browser context each time (no warm cache), and the
page itself reports the time from the start of navigation to every section drawn (its
``data-ready`` marker: API answers in, tables filled, ECharts finished). One warm-up load per page,
then ``--repeats`` measured loads. Progress goes to stderr; the last stdout line is JSON with each
page's median, p95 and max milliseconds and whether all were under the target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright

from cloud import clock
from cloud.api.auth import create_key
from cloud.runtime import open_cdp
from cloud.settings import Settings
from tests.dashboards.harness import CloudServer, launch, open_page

TARGET_MS = 2000
REPO = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(url: str, pages: dict[str, tuple[str, str]], repeats: int) -> dict[str, dict]:
    results: dict[str, dict] = {}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for name, (path, key) in pages.items():
                times: list[int] = []
                for attempt in range(repeats + 1):
                    viewport = (1920, 1080) if name == "live" else (1440, 1000)
                    opened = open_page(browser, url, path, key=key, viewport=viewport)
                    if opened.console.errors:
                        raise RuntimeError(f"{name}: console errors {opened.console.errors}")
                    if opened.page.locator("#banner").is_visible():
                        raise RuntimeError(f"{name}: the page shows an error: {opened.page.inner_text('#banner')}")
                    opened.page.context.close()
                    if attempt:  # the first load warms the API's caches and the OS page cache
                        times.append(opened.ready_ms)
                results[name] = {"median_ms": statistics.median(times), "p95_ms": percentile(times, 95),
                                 "max_ms": max(times), "runs": len(times)}
                log(f"{name}: {results[name]}")
        finally:
            browser.close()
    return results


def _forget_keys(location: str, ids: tuple[str, ...]) -> None:
    """Leave a reused database as it was: with no key, its API stays in the open mode others rely on."""
    db = open_cdp(location)
    try:
        for key_id in ids:
            db.execute("DELETE FROM api_keys WHERE id = ?", (key_id,))
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="a SQLite file bench/health_api.py built (default: build one in a temp dir)")
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--day", help="the day the pages show (default: yesterday, China time: a full day of data)")
    args = parser.parse_args()
    os.environ.setdefault("INSTORE_MODELS", str(REPO.parent / "shared" / "data" / "models"))

    with tempfile.TemporaryDirectory(prefix="dash-bench-") as tmp:
        location = args.db or str(Path(tmp) / "health.db")
        started = time.perf_counter()
        if args.db is None:  # the health API bench's data set, made by that bench itself (it keeps its --db)
            log(f"building {args.stores} stores x a year in {location} with bench/health_api.py ...")
            subprocess.run([sys.executable, str(REPO / "bench" / "health_api.py"), "--db", location,
                            "--stores", str(args.stores), "--repeats", "1"], check=True, stdout=subprocess.DEVNULL)
        build_s = time.perf_counter() - started
        day = args.day or (clock.now_local(clock.DEFAULT_TZ).date() - timedelta(days=1)).isoformat()
        db = open_cdp(location)
        try:
            stores = [r[0] for r in db.rows("SELECT id FROM stores ORDER BY id")]
            days = db.scalar("SELECT COUNT(DISTINCT ts) FROM store_metrics WHERE grain = 'day'")
            manager_store = stores[len(stores) // 2]
            hq = create_key(db, name="bench hq", role="hq_admin")
            manager = create_key(db, name="bench manager", role="store_manager", store=manager_store)
        finally:
            db.close()
        server = CloudServer(Settings(db=location, api_key=None, rate_limit_per_minute=0, dev_open_mode=True)).start()
        try:
            pages = {"store": (f"store.html?store={manager_store}&day={day}", manager.key),
                     "hq": (f"hq.html?day={day}", hq.key), "live": (f"live.html?day={day}", hq.key)}
            results = measure(server.url, pages, args.repeats)
        finally:
            server.stop()
            _forget_keys(location, (hq.id, manager.id))
    print(json.dumps({
        "stores": len(stores), "days": days, "day_shown": day, "build_s": round(build_s, 1), "pages": results,
        "target_ms": TARGET_MS, "all_under_target": all(r["max_ms"] < TARGET_MS for r in results.values()),
    }))


if __name__ == "__main__":
    main()
