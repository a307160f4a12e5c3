"""Points ledger under load (issue 21): tills redeeming and an online stream earning at once.

    uv run python bench/points.py                                          # SQLite in a temp dir, 20 s
    uv run python bench/points.py --seconds 60 --members 100000
    uv run python bench/points.py --seconds 60 --db postgresql://postgres@127.0.0.1:5432

``--members`` members each start with 0-500 points (bulk-loaded as one earn movement and one lot
each, so the ledger is in balance before the run). Then for ``--seconds``: ``--tills`` threads,
each with its own database connection as separate till/API processes would have, redeem 1-50
points of a random member (a fifth of the time one of 50 "hot" members, so tills collide on the
same accounts), and every 50th request is a retry of an earlier request id (must post nothing);
``--streams`` threads earn 1-200 points for random members (online orders, a fifth on the hot
members). With a PostgreSQL server URL (no database name) a fresh database is created and dropped.

Progress goes to stderr; the last stdout line is JSON: ``ops_per_s`` (redemptions tried + earns, per
second; target >= 1000), ``negative_balances`` (member accounts below zero), ``double_spends``
(members whose balance or redeemed total differs from what the tills were told succeeded, plus
retries that posted), ``ledger_mismatch`` (member balances that differ from the sum of their
entries or of their lots, movements whose entries do not sum to zero, and a non-zero sum of all
entries); all three targets 0.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.loyalty import ledger
from cloud.runtime import open_cdp

HOT = 50


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed(db: Database, members: int, rng: random.Random) -> dict[str, int]:
    """``members`` members with 0-500 points each, posted as balanced movements, entries and lots."""
    now = iso(utcnow())
    expires = iso(utcnow().replace(year=utcnow().year + 1))
    ids = [f"m{i:07d}" for i in range(members)]
    start = {m: rng.randint(0, 500) for m in ids}
    with db.transaction() as tx:
        tx.copy("members", ("id", "source", "source_key", "name", "tier", "tags", "preferences", "face_consent",
                            "created"), ((m, "bench", m, "会员", "普通会员", "[]", "[]", 0, now) for m in ids))
        tx.copy("loyalty_accounts", ("pool", "kind", "owner", "balance", "created"),
                (("main", "member", m, start[m], now) for m in ids))
        issued = ledger.account(tx, "main", "issued", "")
        account = dict(tx.rows("SELECT owner, id FROM loyalty_accounts WHERE kind = 'member'"))
        movement = {m: secrets.token_hex(12) for m in ids}
        tx.copy("loyalty_movements", ("id", "pool", "kind", "source", "source_id", "person", "points", "ts", "detail"),
                ((movement[m], "main", "earn", "seed", m, m, start[m], now, "{}") for m in ids))
        tx.copy("loyalty_entries", ("movement_id", "account_id", "amount"),
                (row for m in ids if start[m] for row in ((movement[m], account[m], start[m]),
                                                          (movement[m], issued, -start[m]))))
        tx.copy("loyalty_lots", ("account_id", "movement_id", "earned", "expires", "points", "remaining"),
                ((account[m], movement[m], now, expires, start[m], start[m]) for m in ids if start[m]))
    if db.dialect.name == "postgresql":
        db.execute("ANALYZE")
    return start


def run(location: str, *, members: int, seconds: float, tills: int, streams: int, seed_value: int,
        shared: bool | None = None) -> dict:
    rng = random.Random(seed_value)
    db = open_cdp(location, sample_catalogue=False)
    shared = db.dialect.name == "sqlite" if shared is None else shared
    t0 = time.perf_counter()
    start = seed(db, members, rng)
    log(f"seeded {members:,} members in {time.perf_counter() - t0:.1f}s on {db.dialect.name}")
    ids = list(start)
    hot = ids[:HOT]
    deadline = time.perf_counter() + seconds
    barrier = threading.Barrier(tills + streams)
    lock = threading.Lock()
    redeemed: Counter[str] = Counter()
    earned: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    errors: list[str] = []
    latencies: dict[str, list[float]] = defaultdict(list)

    def pick(r: random.Random) -> str:
        return r.choice(hot) if r.random() < 0.2 else r.choice(ids)

    # SQLite: one cloud process, whose threads share its one connection (cloud.db); separate SQLite
    # connections would be correct too (BEGIN IMMEDIATE, tests/cloud/test_loyalty.py) but SQLite's busy
    # handler is not fair and starves the slower writer. PostgreSQL: a connection per till, as processes.
    def connect() -> Database:
        return db if shared else open_cdp(location, sample_catalogue=False)

    def release(own: Database) -> None:
        if own is not db:
            own.close()

    def till(n: int) -> None:
        own = connect()
        r = random.Random(seed_value * 1000 + n)
        mine: Counter[str] = Counter()
        done: list[tuple[str, str, int]] = []
        local: Counter[str] = Counter()
        lat: list[float] = []
        try:
            barrier.wait()
            k = 0
            while time.perf_counter() < deadline:
                k += 1
                if k % 50 == 0 and done:  # a till retrying a request it already sent
                    person, request, points = r.choice(done)
                    moved = ledger.redeem(own, person, points, request_id=request, store=f"s{n % 3}", channel="pos")
                    local["retries"] += 1
                    local["retry_posted"] += not moved.replayed
                    continue
                person, points = pick(r), r.randint(1, 50)
                request = f"till{n}:{k}"
                began = time.perf_counter()
                try:
                    ledger.redeem(own, person, points, request_id=request, store=f"s{n % 3}", channel="pos")
                    mine[person] += points
                    done.append((person, request, points))
                    local["redeemed"] += 1
                except ledger.InsufficientPoints:
                    local["short"] += 1
                lat.append(time.perf_counter() - began)
        except Exception as exc:
            errors.append(f"till {n}: {exc!r}")
        finally:
            release(own)
            with lock:
                redeemed.update(mine)
                counts.update(local)
                latencies["redeem"].extend(lat)

    def stream(n: int) -> None:
        own = connect()
        r = random.Random(seed_value * 2000 + n)
        mine: Counter[str] = Counter()
        lat: list[float] = []
        try:
            barrier.wait()
            k = 0
            while time.perf_counter() < deadline:
                k += 1
                person, points = pick(r), r.randint(1, 200)
                began = time.perf_counter()
                ledger.earn(own, person, points, source="order", source_id=f"web{n}:{k}", channel="tmall")
                lat.append(time.perf_counter() - began)
                mine[person] += points
        except Exception as exc:
            errors.append(f"stream {n}: {exc!r}")
        finally:
            release(own)
            with lock:
                earned.update(mine)
                counts["earned"] += sum(1 for _ in lat)
                latencies["earn"].extend(lat)

    threads = [threading.Thread(target=till, args=(n,)) for n in range(tills)]
    threads += [threading.Thread(target=stream, args=(n,)) for n in range(streams)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    log(f"load done in {elapsed:.1f}s: {dict(counts)}; checking the ledger")

    checked = ledger.check(db)
    balances = dict(db.rows("SELECT owner, balance FROM loyalty_accounts WHERE kind = 'member'"))
    in_ledger = dict(db.rows("SELECT person, -SUM(points) FROM loyalty_movements WHERE kind = 'redeem' GROUP BY person"))
    redemptions = db.scalar("SELECT COUNT(*) FROM loyalty_movements WHERE kind = 'redeem'")
    db.close()
    touched = set(redeemed) | set(earned) | set(in_ledger)
    wrong = sum(1 for m in touched
                if balances.get(m) != start[m] + earned[m] - redeemed[m] or int(in_ledger.get(m, 0)) != redeemed[m])
    double_spends = wrong + counts["retry_posted"] + abs(int(redemptions) - counts["redeemed"])
    ops = counts["redeemed"] + counts["short"] + counts["retries"] + counts["earned"]

    def p(values: list[float], q: float) -> float:
        return round(sorted(values)[int(q * (len(values) - 1))] * 1000, 2) if values else 0.0

    return {
        "engine": "postgresql" if location.startswith("postgres") else "sqlite", "members": members, "tills": tills,
        "streams": streams, "shared_connection": shared, "seconds": round(elapsed, 1), "ops": ops, "ops_per_s": round(ops / elapsed, 1),
        "redeemed": counts["redeemed"], "refused_insufficient": counts["short"], "retries": counts["retries"],
        "earned": counts["earned"], "redeem_p50_ms": p(latencies["redeem"], 0.5),
        "redeem_p99_ms": p(latencies["redeem"], 0.99), "earn_p99_ms": p(latencies["earn"], 0.99),
        "negative_balances": checked["negative_balances"], "double_spends": double_spends,
        "ledger_mismatch": checked["ledger_mismatch"] + checked["lots_mismatch"] + checked["unbalanced_movements"]
        + (checked["entries_sum"] != 0),
        "errors": errors[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--tills", type=int, default=10)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--connections", choices=("auto", "shared", "own"), default="auto",
                        help="one connection for every thread (auto: on SQLite) or one each (auto: on PostgreSQL)")
    parser.add_argument("--db", default=None, help="a PostgreSQL server URL (no database name); default SQLite")
    args = parser.parse_args()
    kwargs = dict(members=args.members, seconds=args.seconds, tills=args.tills, streams=args.streams,
                  seed_value=args.seed, shared=None if args.connections == "auto" else args.connections == "shared")
    if args.db:
        import psycopg

        name = f"bench_points_{uuid4().hex[:10]}"
        with psycopg.connect(f"{args.db}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            result = run(f"{args.db}/{name}", **kwargs)
        finally:
            with psycopg.connect(f"{args.db}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(str(Path(tmp) / "points.db"), **kwargs)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
