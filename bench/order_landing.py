"""One landed order batch, in process (issue 16): statements, transactions and CPU per batch, by stage.

``bench/order_stream.py`` measures the stream end to end through one API process, which on a shared
two-core machine mostly measures the machine. This lands the same kind of batches (``--batch``
orders from ``bench/order_batches.py``, the stream bench's builder) straight through
``cloud.arrivals.till.land`` with the runtime's order hooks (journeys, loyalty), counting every
statement by the first cloud module on the stack (``bench.ingest_statements.StatementCount``), the
process CPU time and, on PostgreSQL, the CPU time of the database's server processes serving it
(from ``/proc``): CPU per order moves far less with the machine's load than wall time does.

    uv run python bench/order_landing.py [--engine postgresql] [--batches 20] [--batch 200] [--profile]

``--profile`` prints cProfile's top functions by CPU time (cumulative) to stderr. The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fleet.cloud import drop_database, fresh_database
from bench.ingest_statements import StatementCount
from bench.order_batches import Batches, order
from bench.order_stream import EXAMPLES, backend_cpu, gather_statistics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--cold-statistics", action="store_true",
                        help="PostgreSQL: no ANALYZE after the members are in (a database seconds old)")
    args = parser.parse_args()

    from cloud.arrivals import till
    from cloud.masterdata.importer import import_master
    from cloud.runtime import open_cdp, register_order_hooks

    count = StatementCount()
    count.install()
    register_order_hooks()
    url = fresh_database() if args.engine == "postgresql" else str(Path(tempfile.mkdtemp()) / "cdp.db")
    rng = random.Random(16)
    try:
        db = open_cdp(url)
        for kind in ("stores", "products", "staff", "targets", "stock"):
            import_master(db, kind, (EXAMPLES / f"{kind}.csv").read_bytes(), source=f"{kind}.csv")
        cards = [f"C-{i:07d}" for i in range(args.members)]
        first = datetime.now(UTC) - timedelta(days=30)
        for start in range(0, len(cards), 500):  # the members exist: one first order each (not counted)
            till.land(db, "pos", [order(f"W-{c}", "pos", c, first, rng) for c in cards[start:start + 500]])
        if not args.cold_statistics:
            gather_statistics(url)
        making = Batches("L", cards, rng)
        work = [making.next(args.batch) for _ in range(args.batches)]
        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not waiting
        landed = 0
        count.counting = True
        db_before = backend_cpu(url) if args.engine == "postgresql" else {}
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for channel, rows in work:
            report = till.land(db, channel, rows)
            landed += report["orders"]
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        count.counting = False
        db_cpu = sum(t - db_before.get(pid, 0.0) for pid, t in backend_cpu(url).items()) \
            if args.engine == "postgresql" else None
        db.close()
    finally:
        if args.engine == "postgresql":
            drop_database(url)
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
    n = len(work)
    for stage, k in count.statements.most_common():
        print(f"{k / n:7.1f}  {stage}", file=sys.stderr)
    print(json.dumps({
        "benchmark": "order_landing", "engine": args.engine, "batches": n, "batch": args.batch,
        "cold_statistics": args.cold_statistics,
        "orders_landed": landed, "statements_per_batch": round(sum(count.statements.values()) / n, 1),
        "transactions_per_batch": round(count.transactions / n, 1),
        "pipelines_per_batch": round(sum(count.pipelines.values()) / n, 1),
        "by_stage": {stage: round(k / n, 1) for stage, k in count.statements.most_common()},
        "cpu_ms_per_order": round(cpu * 1000 / landed, 3),
        "db_cpu_ms_per_order": None if db_cpu is None else round(db_cpu * 1000 / landed, 3),
        "wall_ms_per_batch": round(wall * 1000 / n, 1),
        "orders_per_s_in_process": round(landed / wall, 1), "profiled": args.profile,
    }))


if __name__ == "__main__":
    main()
