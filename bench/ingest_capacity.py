"""Ingest headroom (issue 19): how many arrivals a second the cloud turns into guide cards before
card latency bends, on SQLite and on PostgreSQL, and how it scales with ingest processes.

    uv run python bench/ingest_capacity.py [--engines sqlite,postgresql] [--processes 1,2,3]
                                           [--rates 10,25,50,100,200,400,800] [--step-s 5]
                                           [--stage-cpu-dir DIR]  (CPU by thread and step: bench/stage_cpu.py)

Each configuration is a fresh database with ``--members`` enrolled members (one synthetic face
each, in the real pack's embedding space and dimension), a private Mosquitto (MQTT 5), and the
product's own ``instore cloud serve --broker ... --share-group cdp`` processes (1 on SQLite, one
SQLite file being one writer; 1, 2 and 3 on PostgreSQL, the share group splitting the arrivals).
A publisher process plays ``--boxes`` edge boxes (one MQTT client each, QoS 1, as
``edge/publisher.py`` sends) at ``--stores`` stores, at each rate of ``--rates`` for ``--step-s``
seconds; ``--member-share`` of the arrivals are members (their face plus noise, cosine ~0.9 to the
enrolled one), the rest visitors (a new random face each). No member is sent twice to one store
(the cloud's rule makes a member's second arrival within 10 minutes at a store the same visit, no
new card), so every arrival should make one card.

Card latency is from the arrival's capture time (set as the publisher sends it, in ``timings``) to
the card reaching a subscriber on ``.../guide/all/card``: the broker twice, the ingest (decode,
de-duplication, match, visit, card with profile, recommendations and script, label flashes) and
the card's publish. A rate step counts only cards of arrivals sent in that step; the ramp stops
when p95 passes ``--bend-ms`` or fewer than 99 % of the step's cards arrive within ``--drain-s``.
``arrivals_per_s_at_p95_under_100ms`` is the highest achieved send rate whose cards all came with
p95 under 100 ms. The publisher, the subscriber, Mosquitto and the cloud share this machine's
cores: on 2 cores the figure is a floor. The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fleet.cloud import API_KEY, CloudProcess, NoPostgres, drop_database, fresh_database
from tests.conftest import Mosquitto
from tests.netutil import free_port

BRAND, SHARE_GROUP = "bench", "cdp"
TARGET_MS = 100.0


@dataclass(frozen=True)
class Plan:
    """What the publisher sends: the enrolled faces, the pack, the stores and boxes."""

    broker_url: str
    pack_id: str
    members: np.ndarray  # (members, dim) unit vectors, as enrolled
    stores: int
    boxes: int
    member_share: float
    seed: int


def unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    vectors = rng.standard_normal(shape).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def enrol(db_url: str, vectors: np.ndarray, pack_id: str) -> None:
    """Members with face consent and one enrolled face each, written before any cloud process starts
    (their gallery loads them at start)."""
    from cloud.cdp.members import add_member
    from cloud.faces.enrolled import add_face
    from cloud.runtime import open_cdp
    from protocol.facepack import get_pack

    space = get_pack(pack_id).recogniser.embedding_space
    db = open_cdp(db_url)
    try:
        for n, vector in enumerate(vectors):
            member = add_member(db, name=f"会员{n}", phone=f"139{n:08d}", gender=None, tier="silver", tags=[],
                                categories=[], face_consent=True)
            add_face(db, member_id=member.id, vector=vector, embedding_space=space, pack_id=pack_id, det_score=0.9)
    finally:
        db.close()


def publisher(plan: Plan, orders: Connection) -> None:
    """The simulated boxes (a child process, so its work and GIL do not delay the card subscriber).

    Takes ``(rate, seconds)`` orders, sends ``rate x seconds`` arrivals paced on the clock, answers
    ``(sent, elapsed_s)``; ``None`` ends it."""
    from protocol import topics, transport
    from protocol.codec import encode
    from protocol.embedding import Embedding
    from protocol.messages import Arrival, FaceQuality, StageTimes, new_id, now

    rng = np.random.default_rng(plan.seed)
    broker = transport.BrokerUrl.parse(plan.broker_url)
    clients = []
    for box in range(plan.boxes):
        client = transport.make_client(broker, f"bench-box-{box}")
        client.max_inflight_messages_set(100)
        transport.start(client, broker)
        clients.append(client)
    # (member, store) pairs in a random order: no member twice at one store in a run
    pairs = iter(rng.permutation(len(plan.members) * plan.stores).tolist())
    sent_total = 0

    def next_arrival() -> tuple[str, bytes, int]:
        nonlocal sent_total
        box = sent_total % plan.boxes
        store_n = box % plan.stores
        if rng.random() < plan.member_share:
            pair = next(pairs)
            member, store_n = divmod(pair, plan.stores)
            vector = plan.members[member] + 0.05 * unit(rng, plan.members.shape[1])
        else:
            vector = unit(rng, plan.members.shape[1])
        store, device = f"s{store_n:03d}", f"edge-{box:03d}"
        ts = now()
        arrival = Arrival(
            event_id=new_id(), ts=ts, brand=BRAND, store=store, device=device, camera="door-1",
            track_id=f"t{sent_total}", embedding=Embedding.from_vector(vector / np.linalg.norm(vector)),
            quality=FaceQuality(det_score=0.9, face_px=96, bbox=(10, 10, 106, 106)), model_pack=plan.pack_id,
            timings=StageTimes(capture=ts),
        )
        sent_total += 1
        return topics.arrival(BRAND, store, device), encode(arrival), box

    while (order := orders.recv()) is not None:
        rate, seconds = order
        count, started = max(1, int(rate * seconds)), time.perf_counter()
        for n in range(count):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            topic, payload, box = next_arrival()
            clients[box].publish(topic, payload, qos=1)
        orders.send((count, time.perf_counter() - started))
    for client in clients:
        transport.stop(client)


class CardClock:
    """Every card's arrival time at a subscriber, with its capture time (the guide screen's view)."""

    def __init__(self, broker_url: str) -> None:
        from protocol import topics, transport

        self.seen: list[tuple[float, bytes]] = []  # (receive time, payload), decoded after the step
        self._lock = threading.Lock()
        broker = transport.BrokerUrl.parse(broker_url)
        self.client = transport.make_client(broker, "bench-cards")
        self.client.on_message = self._on_message
        transport.subscribe_on_connect(self.client, [(f"{topics.ROOT}/{BRAND}/+/guide/+/card", 1)])
        transport.start(self.client, broker)

    def _on_message(self, client, userdata, message) -> None:
        received = time.time()
        with self._lock:
            self.seen.append((received, message.payload))

    def take(self) -> list[tuple[float, float, bool]]:
        """(capture, received, a member's card) of the cards seen since the last call (epoch seconds)."""
        from protocol.codec import decode
        from protocol.messages import GuideCard

        with self._lock:
            seen, self.seen = self.seen, []
        out = []
        for received, payload in seen:
            card = decode(payload, GuideCard)
            if card.timings is not None:
                out.append((card.timings.capture.timestamp(), received, card.member is not None))
        return out

    def close(self) -> None:
        from protocol import transport

        transport.stop(self.client)


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def cpu_s(pids: list[int]) -> float:
    """User and system CPU seconds the ingest processes have used so far."""
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def ramp(orders: Connection, cards: CardClock, rates: list[int], step_s: float, drain_s: float,
         bend_ms: float, pids: list[int]) -> list[dict]:
    """``pids``: the ingest processes, whose CPU time per arrival each step reports (on shared cores it
    is less noisy than latency: it does not count the time they wait for a core or for the database)."""
    steps = []
    for rate in rates:
        cpu_before = cpu_s(pids)
        window_start = time.time()
        orders.send((rate, step_s))
        sent, elapsed = orders.recv()
        window_end = time.time()
        deadline, got = time.time() + drain_s, []
        while True:
            got += [card for card in cards.take() if window_start <= card[0] <= window_end]
            if len(got) >= sent or time.time() > deadline:
                break
            time.sleep(0.2)
        latencies = [(received - capture) * 1000 for capture, received, _ in got]
        step = {"rate": rate, "sent": sent, "achieved_per_s": round(sent / elapsed, 1), "cards": len(got),
                "member_cards": sum(member for _, _, member in got),
                "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
                "p99_ms": percentile(latencies, 99), "max_ms": percentile(latencies, 100),
                "ingest_cpu_ms_per_arrival": round((cpu_s(pids) - cpu_before) * 1000 / max(sent, 1), 2),
                "load": round(os.getloadavg()[0], 1)}
        steps.append(step)
        print(json.dumps(step), file=sys.stderr, flush=True)
        if step["cards"] < 0.99 * sent or (step["p95_ms"] or 0) > bend_ms:
            break
        cards.take()  # late cards of this step belong to no later one
    return steps


def headroom(steps: list[dict]) -> float:
    """The highest achieved rate whose cards all came (99 %) with p95 under the target."""
    good = [s["achieved_per_s"] for s in steps if s["cards"] >= 0.99 * s["sent"] and (s["p95_ms"] or 1e9) < TARGET_MS]
    return max(good, default=0.0)


def batching(cloud: list[CloudProcess]) -> dict[str, int]:
    """The ingest processes' counts summed (``/v1/ingest/stats``): arrivals received, the batches they
    were stored in (PostgreSQL, when arrivals queued up) and batches rolled back and routed one by one."""
    total = {"received": 0, "batches": 0, "batch_fallbacks": 0, "errors": 0}
    for process in cloud:
        stats = httpx.get(f"{process.url}/v1/ingest/stats", headers={"X-API-Key": API_KEY}, timeout=10).json()
        for name in total:
            total[name] += int(stats.get(name, 0))
    return total


def stage_cpu_env(folder: Path, prefix: str) -> dict[str, str]:
    """Environment that makes each cloud process count its CPU by thread and step (``bench.stage_cpu``)
    into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    hook = folder / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from bench.stage_cpu import install_from_env\ninstall_from_env()\n")
    return {"PYTHONPATH": str(hook), "INSTORE_STAGE_CPU": str(folder / prefix)}


def run(engine: str, processes: int, args: argparse.Namespace, work: Path) -> dict:
    from protocol.facepack import get_pack

    pack = get_pack(args.pack) if args.pack else get_pack()
    rng = np.random.default_rng(args.seed)
    vectors = unit(rng, args.members, pack.recogniser.embedding_dim)
    folder = Path(tempfile.mkdtemp(prefix=f"{engine}-{processes}-", dir=work))
    db_url = str(folder / "cdp.db") if engine == "sqlite" else fresh_database()
    broker = Mosquitto(folder)
    broker.start()
    cloud: list[CloudProcess] = []
    context = multiprocessing.get_context("spawn")
    orders, child_end = context.Pipe()
    sender = context.Process(target=publisher, args=(
        Plan(broker.url, pack.id, vectors, args.stores, args.boxes, args.member_share, args.seed), child_end))
    try:
        started = time.perf_counter()
        enrol(db_url, vectors, pack.id)
        env = dict(os.environ, PYTHONUNBUFFERED="1", INSTORE_API_KEY=API_KEY, INSTORE_MODEL_PACK=pack.id)
        if args.stage_cpu_dir is not None:
            env.update(stage_cpu_env(args.stage_cpu_dir, f"{engine}-{processes}"))
        for n in range(1, processes + 1):
            process = CloudProcess(
                f"ingest-{n}", ["cloud", "serve", "--db", db_url, "--rate-limit", "0", "--broker", broker.url,
                                "--share-group", SHARE_GROUP, "--client-id", f"bench-ingest-{n}"],
                free_port(), folder / f"ingest-{n}.log")
            process.spawn(env)
            cloud.append(process)
        for process in cloud:
            process.wait_ready(180)
        cards = CardClock(broker.url)
        sender.start()
        pids = [process.proc.pid for process in cloud if process.proc is not None]
        ramp(orders, cards, [5], 2.0, 30.0, 1e9, pids)  # warm-up: every process subscribed, caches filled
        ready_s = time.perf_counter() - started
        steps = ramp(orders, cards, args.rates, args.step_s, args.drain_s, args.bend_ms, pids)
        cards.close()
        return {"engine": engine, "ingest_processes": processes, "arrivals_per_s_at_p95_under_100ms": headroom(steps),
                "steps": steps, "setup_s": round(ready_s, 1), "ingest": batching(cloud)}
    finally:
        if sender.is_alive():
            orders.send(None)
            sender.join(30)
        for process in cloud:
            process.stop()
        broker.stop()
        if engine != "sqlite":
            drop_database(db_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--processes", default="1,2,3", help="ingest processes to try on PostgreSQL (SQLite: 1)")
    parser.add_argument("--rates", default="10,25,50,100,200,400,800", help="arrivals/s, one step each")
    parser.add_argument("--step-s", type=float, default=5.0)
    parser.add_argument("--drain-s", type=float, default=15.0, help="wait this long for a step's last cards")
    parser.add_argument("--bend-ms", type=float, default=1000.0, help="stop the ramp once p95 passes this")
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--stores", type=int, default=100)
    parser.add_argument("--boxes", type=int, default=50)
    parser.add_argument("--member-share", type=float, default=0.6)
    parser.add_argument("--pack", default=None, help="the face model pack (default: the default pack)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--stage-cpu-dir", type=Path, default=None,
                        help="count every cloud process's CPU by thread and ingest step into this folder (bench.stage_cpu)")
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",")]
    engines = args.engines.split(",")
    configs = [(e, p) for e in engines for p in ([1] if e == "sqlite" else [int(n) for n in args.processes.split(",")])]
    work = Path(tempfile.mkdtemp(prefix="instore-ingest-capacity-"))
    started, results = time.perf_counter(), []
    for engine, processes in configs:
        try:
            results.append(run(engine, processes, args, work))
        except NoPostgres as exc:
            print(f"skipped {engine}: {exc}", file=sys.stderr)
        print(json.dumps(results[-1] if results else {}), file=sys.stderr, flush=True)
    by = {(r["engine"], r["ingest_processes"]): r["arrivals_per_s_at_p95_under_100ms"] for r in results}
    summary = {
        "benchmark": "ingest_capacity",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_avg": [round(x, 1) for x in os.getloadavg()],
        "arrivals_per_s_at_p95_under_100ms": {"sqlite": by.get(("sqlite", 1)), "postgresql": by.get(("postgresql", 1))},
        "postgresql_scaling": {str(p): v for (e, p), v in sorted(by.items()) if e == "postgresql"},
        "target": 1000,
        "runs": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
