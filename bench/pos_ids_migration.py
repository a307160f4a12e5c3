"""Migration 80 on a brand's history: how long rewriting every stored POS order id takes.

    uv run python bench/pos_ids_migration.py --orders 200000                 # SQLite in a temp dir
    uv run python bench/pos_ids_migration.py --orders 200000 --db postgresql://postgres@127.0.0.1:5432

A database is built at version 79 and filled in the old id form (``pos:<receipt>``): ``--orders``
orders (4 in 5 POS over 50 stores, the rest Tmall) with 2 lines each, one POS refund per 20 sales
linked by ``refund_of``, till attribution for every POS order, and the ledger's earn movement for
every order and clawback for every refund (their JSON detail naming the ids). Then ``ANALYZE`` and
version 80 alone, timed: ``migrate_s`` (wall) and ``migrate_cpu_s`` (this process's CPU: SQLite's
whole cost; PostgreSQL's is on the server, so wall only). The last stdout line is JSON, with the
rows rewritten per table and ``old_form_left`` (POS ids still without their store: 0).

Migration 80 runs once, at the first start of the new version, in the migration transaction: the
figure says how long a brand's cloud is not yet serving on that start.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch import scratch_database
from cloud.db import Database, Schema
from cloud.db.database import connect
from cloud.db.migrations import migrate
from cloud.runtime import SCHEMAS

STORES = 50
T0 = 1_760_000_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fill(db: Database, orders: int) -> dict[str, int]:
    """The old-form history, written by COPY; the row counts."""
    order_rows, line_rows, attribution, movements = [], [], [], []
    for k in range(orders):
        channel = "tmall" if k % 5 == 4 else "pos"
        store = f"st-{k % STORES:03d}" if channel == "pos" else None
        refund = channel == "pos" and k % 20 == 0 and k > 0
        number = f"N{k}"
        oid = f"{channel}:{number}" + (":refund" if refund else "")
        sale = f"pos:N{k - 5}" if refund else None  # k - 5 is a POS sale of another store
        paid = -50.0 if refund else 200.0
        ts = T0 + k * 30
        order_rows.append((oid, channel, number, store, f"m{k % 1000}", ts, paid, "refund" if refund else "paid", sale))
        line_rows += [(oid, f"m{k % 1000}", channel, store, ts, f"SKU-{(k + j) % 300}", "护肤", -1 if refund else 1,
                       paid / 2, paid / 2) for j in range(2)]
        if channel == "pos":
            attribution.append((oid, store, f"m{k % 1000}", "member_only", paid, ts))
        detail = {"order": sale, "refund": oid, "paid": paid} if refund else {"order": oid, "paid": paid}
        movements.append((f"mv{k}", "main", "clawback" if refund else "earn", "refund" if refund else "order", oid,
                          f"m{k % 1000}", -50 if refund else 200, store, channel, str(ts), sale,
                          json.dumps(detail, ensure_ascii=False)))
    with db.transaction() as tx:
        tx.copy("orders", ("id", "channel", "order_no", "store", "member_id", "ts", "paid", "status", "refund_of"),
                order_rows)
        tx.copy("order_lines", ("order_id", "member_id", "channel", "store", "ts", "sku", "category", "qty", "price",
                                "amount"), line_rows)
        tx.copy("order_attribution", ("order_id", "store", "member_id", "reason", "paid", "ts"), attribution)
        tx.copy("loyalty_movements", ("id", "pool", "kind", "source", "source_id", "person", "points", "store",
                                      "channel", "ts", "ref", "detail"), movements)
    return {"orders": len(order_rows), "order_lines": len(line_rows), "order_attribution": len(attribution),
            "loyalty_movements": len(movements)}


def run(location: str, orders: int) -> dict:
    db = connect(location)
    try:
        migrate(db, [Schema(s.feature, tuple(m for m in s.migrations if m.version < 80)) for s in SCHEMAS])
        started = time.perf_counter()
        sizes = fill(db, orders)
        log(f"filled {sizes} in {time.perf_counter() - started:.1f} s")
        db.execute("ANALYZE")
        wall, cpu = time.perf_counter(), time.process_time()
        applied = migrate(db, SCHEMAS)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        left = db.scalar("SELECT COUNT(*) FROM orders WHERE channel = 'pos' AND id NOT LIKE 'pos:st-%'")
        linked = db.scalar("SELECT COUNT(*) FROM orders r JOIN orders s ON s.id = r.refund_of")
        return {"db": db.dialect.name, "applied": applied, **sizes, "migrate_s": round(wall, 2),
                "migrate_cpu_s": round(cpu, 2), "old_form_left": int(left), "refunds_linked": int(linked)}
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--db", default=None, help="a PostgreSQL server URL (no database name); default SQLite")
    args = parser.parse_args()
    with scratch_database(args.db, "pos_ids") as location:
        result = run(location, args.orders)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
