"""Anomaly alerts on planted data: precision and recall of the scan the cloud runs.

Generates hourly metrics for ``--stores`` stores over ``--weeks`` weeks with planted spikes, drops
and level shifts (``cloud/synthetic/planted.py``), writes them into ``store_metrics`` of a fresh
database (SQLite file, or ``--db postgresql://...``), then runs ``cloud.health.anomaly.scan``
every ``--every-hours`` over the last ``--eval-days`` days, as the cloud does after each rollup.
Last stdout line is JSON: ``precision``, ``recall``, counts, and the time spent scanning.

    uv run python bench/anomaly.py [--stores 20] [--weeks 10] [--eval-days 14] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from cloud.runtime import open_cdp
from cloud.synthetic.anomaly_evaluation import evaluate, load
from cloud.synthetic.planted import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--weeks", type=int, default=10, help="history plus evaluation window")
    parser.add_argument("--eval-days", type=int, default=14)
    parser.add_argument("--every-hours", type=int, default=6, help="how often the scan runs")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", help="a PostgreSQL URL; default a fresh SQLite file")
    args = parser.parse_args()

    started = time.perf_counter()
    data = generate(seed=args.seed, stores=args.stores, days=args.weeks * 7)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_cdp(args.db or Path(tmp) / "anomaly.db", sample_catalogue=False)
        try:
            load(db, data, brand="bench")
            loaded = time.perf_counter()
            result = evaluate(db, data, eval_days=args.eval_days, every=timedelta(hours=args.every_hours))
        finally:
            db.close()
    print(json.dumps({
        **asdict(result), "stores": args.stores, "weeks": args.weeks, "eval_days": args.eval_days,
        "every_hours": args.every_hours, "seed": args.seed, "rows": len(data.rows),
        "load_s": round(loaded - started, 2), "scan_ms_per_store_per_scan": round(
            1000 * result.scan_s / max(1, result.scans * args.stores), 2),
        "total_s": round(time.perf_counter() - started, 2),
    }))


if __name__ == "__main__":
    main()
