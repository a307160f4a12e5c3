"""What keeping every shelf label drawn costs the cloud (``cloud.pricing.shelf``, issue 16).

``--stores`` stores with ``--labels`` labels each over a catalogue of ``--products`` products (a
fifth with a member price), on a fresh SQLite file or a PostgreSQL database of its own. Timed:
the first pass (every label drawn), an idle pass (nothing changed: what the ``label-sync`` job
costs every ``label_sync_every_s``), a pass after a price file changed 1% of the products, and a
single label bound (the PUT's own draw). Commands go to a counting publisher, not a broker: the
figure is the database and compare work. Last stdout line is JSON.

    python bench/label_sync.py [--stores 50] [--labels 400] [--products 2000] [--pg postgresql://127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud.masterdata.importer import import_master
from cloud.pricing import labels, shelf
from cloud.pricing.registry import Label
from cloud.runtime import open_cdp
from protocol.esl import LabelCommand


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--labels", type=int, default=400, help="labels per store")
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--pg", default=None, help="a PostgreSQL server URL; a database of the bench's own is made there")
    args = parser.parse_args()

    pg_name = None
    if args.pg:
        import psycopg

        pg_name = f"bench_label_sync_{uuid4().hex[:8]}"
        with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{pg_name}"')
        location = f"{args.pg}/{pg_name}"
    else:
        location = str(Path(tempfile.mkdtemp(prefix="label-sync-")) / "cloud.db")
    db = open_cdp(location, sample_catalogue=False)
    try:
        stores = "\n".join(f"s{i:03d},店{i},lumiere,上海,Asia/Shanghai" for i in range(args.stores))
        import_master(db, "stores", f"store,name,brand,city,timezone\n{stores}\n".encode(), source="stores.csv")
        catalogue = "\n".join(f"P{k:05d},商品{k},{50 + k % 300},{'' if k % 5 else 40 + k % 300}"
                              for k in range(args.products))
        import_master(db, "products", f"sku,name,list_price,member_price\n{catalogue}\n".encode(), source="products.csv")
        for i in range(args.stores):
            for j in range(args.labels):
                labels.register(db, Label(label_id=f"L{j:04d}", store=f"s{i:03d}", sku=f"P{(i * 7 + j) % args.products:05d}",
                                          tag_type="epd29_bwr"), actor="bench")
        sent: list[str] = []

        def publish(topic: str, command: LabelCommand) -> bool:
            sent.append(command.label)
            return True

        def timed(**where: object) -> tuple[float, int]:
            sent.clear()
            started = time.perf_counter()
            shelf.sync(db, publish, at=datetime.now(UTC), **where)  # type: ignore[arg-type]
            return round((time.perf_counter() - started) * 1000, 1), len(sent)

        first_ms, first = timed()
        idle_ms, idle = timed()
        changed = "\n".join(f"P{k:05d},,{60 + k % 300}," for k in range(0, args.products, 100))
        import_master(db, "products", f"sku,name,list_price,member_price\n{changed}\n".encode(), source="prices.csv")
        change_ms, redrawn = timed()
        labels.register(db, Label(label_id="L-new", store="s000", sku="P00001", tag_type="epd29_bwr"), actor="bench")
        bind_ms, bound = timed(store="s000", label="L-new")
    finally:
        db.close()
        if pg_name:
            import psycopg

            with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    result = {
        "db": "postgresql" if pg_name else "sqlite", "labels": args.stores * args.labels, "products": args.products,
        "first_pass_ms": first_ms, "first_pass_drawn": first, "idle_pass_ms": idle_ms, "idle_pass_drawn": idle,
        "price_change_pass_ms": change_ms, "price_change_redrawn": redrawn, "bind_ms": bind_ms, "bind_drawn": bound,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
