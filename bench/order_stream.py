"""Orders as a brand's channels stream them, into one cloud process (issue 16, item 3).

Starts ``instore cloud serve`` (one process, API only) on a fresh SQLite file or PostgreSQL
database with the master data of ``docs/examples`` imported, then posts signed batches to
``POST /v1/orders`` from ``--posters`` threads, as a POS and two online channels would: mostly sales
of ``--members`` known members and walk-ins, with duplicates (a batch re-sent with a fresh
signature), refunds and partial refunds of orders already posted, and a few bad rows (no lines, a
negative sale, an unreadable time). Throughput is landed orders per second over the posting phase.

Lag: for ``--samples`` orders of known members, the time from the start of the POST to the moment
both the member's profile (``GET /v1/members/{id}/profile``) lists the order and the live sales
screen (``GET /v1/brand/live``) counts it, polled every 20 ms by a separate client while the
posters keep loading the server. CPU per order over the posting phase: the server process's and, on
PostgreSQL, the database's server processes' (``/proc``), which the machine's load moves far less
than throughput. Last stdout line is JSON.

    uv run python bench/order_stream.py [--orders 20000] [--batch 200] [--db postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud.cdp.imports.canonical import order_id
from cloud.cdp.imports.stream import signature
from cloud.masterdata.importer import import_master
from cloud.runtime import open_cdp

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
KEY = "bench-order-stream-key-0123456789abcdef"
SECRETS = {"pos": "pos-secret-0123456789abcdef", "tmall": "tmall-secret-0123456789ab", "youzan": "yz-secret-0123456789abcd"}
SKUS = [("SKU-1001", 399.0), ("SKU-1002", 129.0), ("SKU-2001", 12.0)]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Channel:
    def __init__(self, client: httpx.Client, name: str) -> None:
        self.client, self.name = client, name

    def post(self, orders: list[dict]) -> httpx.Response:
        body = json.dumps({"orders": orders}).encode()
        stamp = str(int(time.time()))
        return self.client.post("/v1/orders", content=body, headers={
            "X-API-Key": KEY, "Content-Type": "application/json", "X-Instore-Channel": self.name,
            "X-Instore-Timestamp": stamp, "X-Instore-Signature": signature(SECRETS[self.name], stamp, body)})


def order(no: str, channel: str, card: str | None, now: datetime, rng: random.Random) -> dict:
    sku, price = rng.choice(SKUS)
    qty = rng.randint(1, 3)
    row = {"order_no": no, "ts": now.isoformat(), "paid": round(price * qty, 2),
           "lines": [{"sku": sku, "qty": qty, "price": price}]}
    if channel == "pos":
        row["store"] = rng.choice(["sh-001", "sh-002"])
    if card:
        row["member"] = {"card": card} if channel == "pos" else {"phone": f"139{int(card[2:]):08d}"}
    return row


def gather_statistics(location: str) -> None:
    """PostgreSQL: the planner's statistics, gathered once the members are in, as autovacuum does
    within a minute of a deployment's first imports. A database seconds old has none, and the
    planner joined as if every table were empty (every loyalty account scanned for each refund)."""
    if location.startswith("postgresql"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("ANALYZE")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu(url: str) -> dict[int, float]:
    """CPU seconds (user + system) so far of each PostgreSQL server process connected to ``url``'s database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND pid <> pg_backend_pid()")]
    found: dict[int, float] = {}
    for pid in pids:
        try:
            found[pid] = process_cpu(pid)
        except OSError:  # gone, or another machine's server
            continue
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--db", default=None, help="a postgresql:// URL (emptied first); default a temporary SQLite file")
    parser.add_argument("--cold-statistics", action="store_true",
                        help="PostgreSQL: no ANALYZE after the members are in (a database seconds old)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="order-stream-"))
    location = args.db or str(tmp / "cdp.db")
    if location.startswith("postgresql"):
        import psycopg
        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    db = open_cdp(location)
    for kind in ("stores", "products", "staff", "targets", "stock"):
        import_master(db, kind, (EXAMPLES / f"{kind}.csv").read_bytes(), source=f"{kind}.csv")
    db.close()

    port = free_port()
    env = {"INSTORE_MODELS": str(ROOT.parent / "shared" / "data" / "models"), **os.environ,
           "INSTORE_API_KEY": KEY, "INSTORE_ORDER_CHANNEL_SECRETS": json.dumps(SECRETS),
           "INSTORE_RATE_LIMIT_PER_MINUTE": "0", "INSTORE_MAX_UPLOAD_BYTES": str(20 * 1024 * 1024)}
    server = subprocess.Popen([sys.executable, "-m", "provisioning", "cloud", "serve", "--db", location, "--port",
                               str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=(tmp / "server.log").open("wb"))
    out: dict = {"db": "postgresql" if location.startswith("postgresql") else "sqlite", "orders_requested": args.orders,
                 "batch": args.batch, "posters": args.posters, "cold_statistics": args.cold_statistics}
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise SystemExit("the cloud did not start")
        rng = random.Random(16)
        now = datetime.now(UTC)
        cards = [f"C-{i:07d}" for i in range(args.members)]
        # the members exist: one first order each (not timed)
        with httpx.Client(base_url=base, timeout=120) as client:
            pos = Channel(client, "pos")
            for start in range(0, len(cards), 500):
                pos.post([order(f"W-{c}", "pos", c, now - timedelta(days=30), rng) for c in cards[start:start + 500]])
        if not args.cold_statistics:
            gather_statistics(location)
        db = open_cdp(location, sample_catalogue=False)
        member_of = dict(db.rows("SELECT o.order_no, COALESCE(m.merged_into, m.id) FROM orders o "
                                 "JOIN members m ON m.id = o.member_id WHERE o.order_no LIKE 'W-%'"))
        db.close()

        totals = {"orders": 0, "refunds": 0, "quarantined": {}, "posted_rows": 0, "batches": 0, "errors": 0,
                  "resent_batches": 0, "resent_counted_again": 0}
        lock = threading.Lock()
        per_poster = args.orders // args.posters

        def poster(n: int) -> None:
            r = random.Random(n)
            channels = ["pos", "pos", "tmall", "youzan"]
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                sent = 0
                posted: dict[str, list[dict]] = {}
                while sent < per_poster:
                    name = channels[r.randrange(len(channels))]
                    batch = []
                    for _ in range(min(args.batch, per_poster - sent)):
                        card = cards[r.randrange(len(cards))] if r.random() < 0.7 else None
                        batch.append(order(f"P{n}-{sent}", name, card, datetime.now(UTC), r))
                        sent += 1
                    earlier = posted.get(name, [])
                    for _ in range(max(1, len(batch) // 50)):  # refunds, full and partial, of earlier orders
                        if earlier:
                            sale = earlier[r.randrange(len(earlier))]
                            part = round(sale["paid"] * r.choice((1.0, 0.5)), 2)
                            batch.append({**sale, "order_no": f"{sale['order_no']}-R{r.randrange(10**6)}",
                                          "type": "refund", "refund_of": sale["order_no"], "paid": part,
                                          "ts": datetime.now(UTC).isoformat()})
                    batch += [{"order_no": f"BAD{n}-{sent}", "paid": 1, "ts": "x", "lines": []},
                              {**batch[0], "order_no": f"NEG{n}-{sent}", "paid": -3}]
                    response = Channel(client, name).post(batch)
                    resent = None
                    if r.random() < 0.1:  # a re-send after a timeout: the same orders, a fresh signature
                        time.sleep(1.0)
                        resent = Channel(client, name).post(batch)
                    with lock:
                        if resent is not None and resent.status_code == 200:
                            totals["resent_batches"] += 1
                            totals["resent_counted_again"] += resent.json()["orders"]
                        totals["batches"] += 1
                        totals["posted_rows"] += len(batch)
                        if response.status_code != 200:
                            totals["errors"] += 1
                            log(f"{response.status_code} {response.text[:200]}")
                            continue
                        report = response.json()
                        totals["orders"] += report["orders"] - report["refunds"]
                        totals["refunds"] += report["refunds"]
                        for reason, k in report["quarantined"].items():
                            totals["quarantined"][reason] = totals["quarantined"].get(reason, 0) + k
                    posted.setdefault(name, []).extend(o for o in batch if o.get("type") != "refund"
                                                       and o["lines"] and o["paid"] > 0)

        lags: list[float] = []

        def sampler() -> None:
            r = random.Random(99)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                              headers={"X-API-Key": KEY}) as client:
                pos = Channel(client, "pos")
                for i in range(args.samples):
                    card = cards[r.randrange(len(cards))]
                    person = member_of[f"W-{card}"]
                    no = f"S-{i}"
                    before = client.get("/v1/brand/live").json()["orders"]
                    t0 = time.perf_counter()
                    sale = order(no, "pos", card, datetime.now(UTC), r)
                    pos.post([sale])
                    while True:
                        profile = client.get(f"/v1/members/{person}/profile").json()
                        seen = any(o["id"] == order_id("pos", no, sale["store"]) for o in profile["orders"]["recent"])
                        if seen and client.get("/v1/brand/live").json()["orders"] > before:
                            break
                        time.sleep(0.02)
                    lags.append((time.perf_counter() - t0) * 1000)
                    time.sleep(0.05)

        threads = [threading.Thread(target=poster, args=(n,)) for n in range(args.posters)]
        sampling = threading.Thread(target=sampler)
        postgres = location.startswith("postgresql")
        server_cpu, db_cpu = process_cpu(server.pid), backend_cpu(location) if postgres else {}
        started = time.perf_counter()
        for t in threads:
            t.start()
        sampling.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        sampling.join()
        server_cpu = process_cpu(server.pid) - server_cpu
        db_spent = sum(t - db_cpu.get(pid, 0.0) for pid, t in backend_cpu(location).items()) if postgres else None
        out.update(totals)
        out["seconds"] = round(elapsed, 2)
        out["orders_per_s"] = round((totals["orders"] + totals["refunds"]) / elapsed, 1)
        out["rows_per_s"] = round(totals["posted_rows"] / elapsed, 1)
        landed = max(1, totals["orders"] + totals["refunds"])  # the sampler's and the posters' polls included
        out["server_cpu_ms_per_order"] = round(server_cpu * 1000 / landed, 3)
        out["db_cpu_ms_per_order"] = None if db_spent is None else round(db_spent * 1000 / landed, 3)
        out["lag_samples"] = len(lags)
        out["p50_lag_ms"] = round(percentile(lags, 0.5), 1)
        out["p95_lag_ms"] = round(percentile(lags, 0.95), 1)
        out["targets"] = {"orders_per_s": 1000, "p95_lag_ms": 2000}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    log(f"server log: {tmp / 'server.log'}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
