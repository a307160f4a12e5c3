"""Following an order-source cohort on a brand's history: the tagged orders found by their ids.

    uv run python bench/cohort_source.py --orders 400000 --tagged 2000                # SQLite, temp dir
    uv run python bench/cohort_source.py --orders 400000 --tagged 2000 --channel pos
    uv run python bench/cohort_source.py --orders 400000 --db postgresql://postgres@127.0.0.1:5432

A database at the current schema gets ``--orders`` paid orders over ``--persons`` members: 4 in 5
POS over 50 stores, whose receipt numbers repeat in every store (``R<k // 50>``, as real tills
number), the rest Tmall; then ``ANALYZE``. A cohort of ``--tagged`` orders is stored as
``POST /v1/cohorts`` stores it (``--channel tmall``: bare order numbers, the form main and this
branch both read, for an A/B; ``--channel pos``: store st-000's receipts, each naming its store) and
followed with ``cohorts.cohort`` ``--reads`` times: ``read_ms`` (wall, median) and ``read_cpu_ms``
(this process's CPU, median; PostgreSQL's own work is on the server). The last stdout line is JSON,
with ``matched`` (the cohort's persons must be ``--tagged`` when each tagged order is one person's).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch import scratch_database
from cloud.activation import cohorts
from cloud.cdp.imports.canonical import order_id
from cloud.db import Database
from cloud.db.database import connect
from cloud.db.migrations import migrate
from cloud.runtime import SCHEMAS

STORES = 50
T0 = 1_760_000_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fill(db: Database, orders: int, persons: int) -> None:
    """Members and their paid orders, written by COPY. Order k belongs to person k % persons."""
    created = "2025-01-01T00:00:00+00:00"
    rows = []
    for k in range(orders):
        channel = "tmall" if k % 5 == 4 else "pos"
        store = f"st-{k % STORES:03d}" if channel == "pos" else None
        number = f"R{k // STORES}" if channel == "pos" else f"T{k}"
        rows.append((order_id(channel, number, store), channel, number, store, f"m{k % persons}", T0 + k * 30, 200.0,
                     "paid"))
    with db.transaction() as tx:
        tx.copy("members", ("id", "source", "source_key", "name", "created"),
                ((f"m{p}", "crm", f"m{p}", "王芳", created) for p in range(persons)))
        tx.copy("orders", ("id", "channel", "order_no", "store", "member_id", "ts", "paid", "status"), rows)


def tagged(orders: int, count: int, channel: str) -> list:
    """The cohort's order references as the API stores them: ``count`` of the channel's orders, with
    the channel's other buyers in the same days (POS: the other stores') as the control's pool."""
    if channel == "pos":
        return [{"order_no": f"R{k // STORES}", "store": "st-000"} for k in range(0, orders, STORES)][:count]
    return [f"T{k}" for k in range(4, orders, 10)][:count]  # every other one: the rest are the control's


def run(location: str, args: argparse.Namespace) -> dict:
    args.persons = args.persons or args.orders
    db = connect(location)
    try:
        migrate(db, SCHEMAS)
        started = time.perf_counter()
        fill(db, args.orders, args.persons)
        log(f"filled {args.orders} orders in {time.perf_counter() - started:.1f} s")
        db.execute("ANALYZE")
        definition = {"channel": args.channel, "order_nos": tagged(args.orders, args.tagged, args.channel)}
        cohort_id = "c" + uuid.uuid4().hex[:12]
        db.execute("INSERT INTO cohorts (id, name, definition, created, created_by) VALUES (?, ?, ?, ?, ?)",
                   (cohort_id, "bench", json.dumps(definition), "2026-01-01T00:00:00+00:00", "bench"))
        walls, cpus, matched = [], [], {}
        for _ in range(args.reads):
            wall, cpu = time.perf_counter(), time.process_time()
            matched = cohorts.cohort(db, cohort_id)["matched"]
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        return {"db": db.dialect.name, "orders": args.orders, "persons": args.persons, "channel": args.channel,
                "tagged": args.tagged, "matched": matched, "read_ms": round(statistics.median(walls), 1),
                "read_cpu_ms": round(statistics.median(cpus), 1), "reads": args.reads}
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=400_000)
    parser.add_argument("--persons", type=int, default=None, help="orders over persons (default: one order each)")
    parser.add_argument("--tagged", type=int, default=2_000)
    parser.add_argument("--channel", choices=("tmall", "pos"), default="tmall")
    parser.add_argument("--reads", type=int, default=5)
    parser.add_argument("--db", default=None, help="a PostgreSQL server URL (no database name); default SQLite")
    args = parser.parse_args()
    with scratch_database(args.db, "cohort") as location:
        result = run(location, args)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
