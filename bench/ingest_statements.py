"""SQL statements and transactions per arrival, by stage (issue 19): on PostgreSQL each one is a round
trip to the server, and round trips, not CPU, were most of an arrival's time under load.

    uv run python bench/ingest_statements.py [--arrivals 60] [--members 50] [--engine postgresql] [--batch 1]

A fresh database with ``--members`` enrolled members (as ``bench/ingest_capacity.py`` enrols them),
the cloud's own ``EventProcessor`` wired as ``cloud.runtime`` wires it, and ``--arrivals`` door
arrivals (60 % members, each at a store they have no visit at, the rest new visitor faces) handed to
it on their topics, as the ingest worker hands them (``--batch``: that many at a time, as the worker
hands over arrivals queued in its inbox; on PostgreSQL one transaction each). Every statement the
engine runs is counted and charged to the first cloud module outside ``cloud.db`` on the stack (its
stage); transactions are counted where one begins (on PostgreSQL each costs a BEGIN and a COMMIT
round trip more); ``pipelines_per_arrival`` counts PostgreSQL's ``Tx.reads`` pipelines, a round
trip each whose reads are not among the statements. ``ingest_cpu_ms_per_arrival`` is this process's CPU (user and system; the
database server's is not in it) while it routes the arrivals, counting included; on PostgreSQL
``db_cpu_ms_per_arrival`` is the server's, its processes connected to the bench's database
(``bench.order_stream.backend_cpu``): the two together are what one arrival costs the machine. The counting
wraps ``Tx`` and ``Database.transaction`` in this process only. The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fleet.cloud import drop_database, fresh_database
from bench.ingest_capacity import enrol, unit
from bench.order_stream import backend_cpu

ROOT = Path(__file__).resolve().parents[1]


class StatementCount:
    """Statements by stage and transactions begun, while ``counting``."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.pipelines: Counter[str] = Counter()  # PostgreSQL's Tx.reads: one round trip, its reads uncounted above
        self.transactions = 0
        self.counting = False
        self._names: dict[object, str | None] = {}  # code object -> its stage name, None for no stage

    def _name(self, code: Any) -> str | None:
        """The stage a function is (a cloud module's, outside ``cloud.db``; a comprehension is charged
        to its function), worked out once per function: counting must cost little of what it measures."""
        if code not in self._names:
            path = Path(code.co_filename)
            self._names[code] = (
                f"{path.relative_to(ROOT).with_suffix('').as_posix().replace('/', '.')}.{code.co_name}"
                if path.is_relative_to(ROOT / "cloud") and not path.is_relative_to(ROOT / "cloud" / "db")
                and not code.co_name.startswith("<") else None)
        return self._names[code]

    def stage(self) -> str:
        frame = sys._getframe(2)
        while frame is not None:
            name = self._name(frame.f_code)
            if name is not None:
                return name
            frame = frame.f_back  # type: ignore[assignment]
        return "other"

    def install(self) -> None:
        from cloud.db import database

        count = self
        execute, executemany, copy = database.Tx.execute, database.Tx.executemany, database.Tx.copy
        reads = database.Tx.reads

        def counted_execute(tx: database.Tx, sql: str, params: Any = ()) -> int:
            if count.counting:
                count.statements[count.stage()] += 1
            return execute(tx, sql, params)

        def counted_executemany(tx: database.Tx, sql: str, rows: Any) -> None:
            if count.counting:
                count.statements[count.stage()] += 1
            executemany(tx, sql, rows)

        def counted_copy(tx: database.Tx, table: str, columns: Any, rows: Any) -> None:
            if count.counting:
                count.statements[count.stage()] += 1
            copy(tx, table, columns, rows)

        def counted_reads(tx: database.Tx, *statements: Any) -> Any:
            if count.counting and tx.dialect is database.POSTGRES:  # SQLite's run through execute
                count.pipelines[count.stage()] += 1
            return reads(tx, *statements)

        database.Tx.execute = counted_execute  # type: ignore[method-assign]
        database.Tx.executemany = counted_executemany  # type: ignore[method-assign]
        database.Tx.copy = counted_copy  # type: ignore[method-assign]
        database.Tx.reads = counted_reads  # type: ignore[method-assign]
        for engine in (database.PostgresDatabase, database.SqliteDatabase):
            self._count_transactions(engine)

    def _count_transactions(self, engine: type) -> None:
        count, transaction = self, engine.transaction
        outer = threading.local()

        @contextmanager
        def counted(db: Any) -> Iterator[Any]:
            first = not getattr(outer, "open", False)
            if first and count.counting:
                count.transactions += 1
            outer.open = True
            try:
                with transaction(db) as tx:
                    yield tx
            finally:
                if first:
                    outer.open = False

        engine.transaction = counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--arrivals", type=int, default=60)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--batch", type=int, default=1,
                        help="arrivals handed over together, as the worker drains a queued inbox (route_batch)")
    args = parser.parse_args()

    import tempfile

    from cloud.arrivals.cards import CardBuilder
    from cloud.arrivals.ingest import EventProcessor
    from cloud.faces.gallery import FaceIndex
    from cloud.faces.matching import Matcher
    from cloud.guide.recommend import service as recommend
    from cloud.runtime import open_cdp
    from protocol import topics
    from protocol.codec import encode
    from protocol.embedding import Embedding
    from protocol.facepack import get_pack
    from protocol.messages import Arrival, FaceQuality, StageTimes, new_id, now

    count = StatementCount()
    count.install()
    pack = get_pack()
    rng = np.random.default_rng(args.seed)
    vectors = unit(rng, args.members, pack.recogniser.embedding_dim)
    url = fresh_database() if args.engine == "postgresql" else str(Path(tempfile.mkdtemp()) / "cdp.db")
    try:
        enrol(url, vectors, pack.id)
        db = open_cdp(url)
        index = FaceIndex.from_database(db, pack.recogniser.embedding_space, pack.recogniser.embedding_dim,
                                        template_mode=pack.template_mode)
        processor = EventProcessor(db, Matcher(index, db, pack), CardBuilder(db, ttl_s=60))
        recommend.warm(db)
        members = iter(rng.permutation(args.members).tolist())
        timings: list[float] = []
        cpu_s = 0.0
        messages: list[tuple[str, bytes]] = []
        postgres = args.engine == "postgresql"
        db_before = backend_cpu(url) if postgres else {}
        count.counting = True
        for n in range(args.arrivals):
            member = next(members, None) if rng.random() < 0.6 else None
            vector = vectors[member] + 0.05 * unit(rng, vectors.shape[1]) if member is not None \
                else unit(rng, vectors.shape[1])
            store, device, ts = f"s{n % 7:03d}", f"edge-{n % 5:03d}", now()
            arrival = Arrival(event_id=new_id(), ts=ts, brand="bench", store=store, device=device, camera="door-1",
                              track_id=f"t{n}", embedding=Embedding.from_vector(vector / np.linalg.norm(vector)),
                              quality=FaceQuality(det_score=0.9, face_px=96, bbox=(10, 10, 106, 106)),
                              model_pack=pack.id, timings=StageTimes(capture=ts))
            messages.append((topics.arrival("bench", store, device), encode(arrival)))
            if len(messages) < args.batch and n < args.arrivals - 1:
                continue
            started, cpu_started = time.perf_counter(), time.process_time()
            if len(messages) == 1 or processor.route_batch(messages) is None:  # SQLite: one by one
                for topic, payload in messages:
                    processor.route(topic, payload)
            timings += [(time.perf_counter() - started) * 1000 / len(messages)] * len(messages)
            cpu_s += time.process_time() - cpu_started
            messages = []
        count.counting = False
        db_cpu_s = sum(t - db_before.get(pid, 0.0) for pid, t in backend_cpu(url).items()) if postgres else None
        counts = processor.counters.snapshot()
        db.close()
    finally:
        if args.engine == "postgresql":
            drop_database(url)
    per = args.arrivals
    statements = sum(count.statements.values())
    for stage, n in count.statements.most_common():
        print(f"{n / per:6.2f}  {stage}", file=sys.stderr)
    print(json.dumps({
        "benchmark": "ingest_statements", "engine": args.engine, "arrivals": per,
        "members": counts.matched, "visitors": counts.visitors,
        "statements_per_arrival": round(statements / per, 2),
        "transactions_per_arrival": round(count.transactions / per, 2),
        "pipelines_per_arrival": round(sum(count.pipelines.values()) / per, 2),
        "pipelines_by_stage": {stage: round(n / per, 2) for stage, n in count.pipelines.most_common()},
        "by_stage": {stage: round(n / per, 2) for stage, n in count.statements.most_common()},
        "batch": args.batch, "ms_per_arrival_p50": round(float(np.percentile(timings, 50)), 1),
        "ingest_cpu_ms_per_arrival": round(cpu_s * 1000 / per, 2),
        "db_cpu_ms_per_arrival": None if db_cpu_s is None else round(db_cpu_s * 1000 / per, 2),
    }))


if __name__ == "__main__":
    main()
