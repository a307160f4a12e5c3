"""What keeping an erased person out of the quarantine costs an import (``tombstones.erased_rows``).

    uv run python bench/quarantine_erased.py --rows 20000                 # SQLite in a temp dir
    uv run python bench/quarantine_erased.py --rows 20000 --db postgresql://postgres@127.0.0.1:5432

A POS export of ``--rows`` receipts (one line each, a member card and a phone per receipt) is
imported once. Then two files whose every row is quarantined with its raw row are imported, each
timed ``--repeats`` times each way, alternated: ``again``, the same export (every row a
``duplicate_order``: an order whose buyer is asked as a landing order's is, ``erased_buyers``), and
``garbled``, the export with every time unreadable (``bad_time``: rows that never became an order,
every value hashed as each identifier kind, ``erased_rows``). The ways: ``none``, no erasure on
record (the checks return at their first query), and ``erased``, ``--erased`` tombstones on record
(none naming a row, so nothing is cleared: the full cost). The quarantine rows a run adds are
deleted before the next. The last stdout line is JSON: each run's wall seconds, the median per file
and way and the extra microseconds per quarantined row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch import scratch_database
from cloud.cdp import tombstones
from cloud.cdp.imports.importer import import_text
from cloud.db import Database
from cloud.db.migrations import open_database
from cloud.runtime import SCHEMAS

HEAD = "receipt_no,store,member_card,phone,ts,sku,category,qty,unit_price,amount,currency,type,original_receipt_no\n"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def export(rows: int, *, garbled: bool = False) -> str:
    return HEAD + "".join(f"R{k},s1,C{k:07d},139{k:08d},{'garbled' if garbled else '2026-10-01'} 10:{k % 60:02d}:00,"
                          f"SKU-{k % 300},护肤,1,100,100,CNY,sale,\n" for k in range(rows))


def erased_on_record(db: Database, count: int) -> None:
    with db.transaction() as tx:
        tx.execute("DELETE FROM erased_identifiers")
        if count:  # phones no row of the export carries
            tombstones.remember(tx, [("phone", f"137{k:08d}") for k in range(count)], "2026-12-01T00:00:00+00:00")


def run(location: str, rows: int, erased: int, repeats: int) -> dict:
    db = open_database(location, SCHEMAS)
    try:
        started = time.perf_counter()
        first = import_text(db, "pos", export(rows), source="first.csv")
        log(f"first import: {first.orders} orders in {time.perf_counter() - started:.1f} s")
        files = {"again": (export(rows), "duplicate_order"), "garbled": (export(rows, garbled=True), "bad_time")}
        runs: dict[str, dict[str, list[float]]] = {name: {"none": [], "erased": []} for name in files}
        for _ in range(repeats):
            for name, (text, reason) in files.items():
                for way in ("none", "erased"):
                    erased_on_record(db, erased if way == "erased" else 0)
                    db.execute("DELETE FROM quarantine")
                    started = time.perf_counter()
                    report = import_text(db, "pos", text, source=f"{name}.csv")
                    runs[name][way].append(round(time.perf_counter() - started, 3))
                    assert report.quarantined == {reason: rows}, report.quarantined
                    log(f"{name} {way}: {runs[name][way][-1]} s")
        median = {name: {way: statistics.median(times) for way, times in ways.items()} for name, ways in runs.items()}
        extra = {name: round((m["erased"] - m["none"]) / rows * 1e6, 1) for name, m in median.items()}
        return {"rows": rows, "erased_on_record": erased, "runs_s": runs, "median_s": median,
                "extra_us_per_quarantined_row": extra}
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--erased", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", default=None, help="a PostgreSQL server URL without a database name; SQLite if absent")
    args = parser.parse_args()
    with scratch_database(args.db, "quarantine_erased") as location:
        result = run(location, args.rows, args.erased, args.repeats)
    print(json.dumps({"engine": "postgresql" if args.db else "sqlite", **result}))


if __name__ == "__main__":
    main()
