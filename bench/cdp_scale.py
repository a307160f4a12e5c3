"""CDP at scale: generate a synthetic brand, then time OneID, segments, profiles and face search.

    uv run python bench/cdp_scale.py --members 1000000                       # SQLite in a temp dir
    uv run python bench/cdp_scale.py --members 1000000 --db postgresql://postgres@127.0.0.1:5432

With a PostgreSQL server URL (no database name) a fresh database with a random name is created
and dropped afterwards. Progress goes to stderr; the last stdout line is JSON:
``oneid_rebuild_s`` (full rebuild over every record), ``import_incremental_s`` (10k new records
arriving as a Youzan member-list import -- records written, OneID resolved around each 2,000-row
batch, stats/tags/profiles of the changed persons refreshed -- 60% of them carrying the phone of an
existing person, so they link) and ``oneid_incremental_s`` (its time in ``oneid.resolve_around``), ``segment_count_s`` ("bought 护肤 in 90
days and not 彩妆", median of 3 after one warm-up), ``segment5_count_s`` and ``portrait_s`` (a
5-condition segment over the dimension catalogue: its count, median of 3, and its portrait against
the base, best of 2), ``profile_read_p95_ms`` (360 profile with lineage of random
persons), ``oneid_rebuild_cpu_s`` (the rebuild's CPU seconds in this process: all of it on SQLite,
the client's part on PostgreSQL), ``face_top1_ms`` (top-1 over --members 128-d embeddings, median), plus sizes and the
generation and tag-batch times (``person_facts_rebuild_s``: the part of the rebuild that re-sums the
person purchase facts; ``portrait_base_kept``: the portrait read the base's counts the tag batch
kept). ``oneid_rebuild_s`` is the first resolution of the unresolved load (it moves a third of the
records); two more full rebuilds follow it on the resolved brand: ``oneid_replay_s`` (what ``instore
cloud rebuild-oneid`` does after a rule change that moves nobody) and ``oneid_rebuild_after_block_s``
(after ``oneid.add_block`` of the most shared phone, which makes the rebuild check every identifier
against the blocklist again: why an operator runs one), each with its ``_cpu_s``, and
``oneid_block_moved``, the records that block moved. ``segment5_count_cpu_s`` and ``portrait_cpu_s`` are the same runs'
CPU seconds in this process (SQLite's whole cost, whatever the machine's load; not PostgreSQL's).
``yardstick_s`` and its parts: the machine's speed when the run began (``bench/machine.py``; the
values PERFORMANCE.md pairs with the 1M draw tell a slow day from a normal one).

    uv run python bench/cdp_scale.py --existing --segments-only --db brand.db   # segment figures only

times only the segment figures on a brand already stored, so two versions of the code can be
compared back to back on one file.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import yardstick
from bench.scratch import scratch_database
from cloud.cdp import oneid, profile, purchases, segments, tags
from cloud.cdp.imports.canonical import Buyer
from cloud.cdp.imports.importer import Importer
from cloud.faces.gallery import FaceIndex
from cloud.runtime import open_cdp
from cloud.synthetic.bulk import load_for_benchmark

SEGMENT = {"and": [{"bought": {"category": "护肤", "within_days": 90}},
                   {"not": {"bought": {"category": "彩妆", "within_days": 90}}}]}
#: five conditions over the dimension catalogue (issue 15): purchase, refund-aware "not bought", an
#: attribute, a computed stat and a money total
SEGMENT5 = {"and": [{"dim": {"name": "bought.category.days", "scope": "护肤", "days": 90}},
                    {"dim": {"name": "not_bought.category.days", "scope": "彩妆", "days": 90}},
                    {"dim": {"name": "gender", "op": "in", "value": ["female"]}},
                    {"dim": {"name": "lifecycle", "op": "in", "value": ["active", "repurchase_due", "new"]}},
                    {"dim": {"name": "order_amount.any.days", "days": 365, "op": ">=", "value": 300}}]}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def _settle(db, location: str) -> None:
    """What autovacuum does after a bulk load, done now: statistics, and on PostgreSQL the
    visibility map that lets the segment queries use index-only scans."""
    if db.dialect.name == "postgresql":
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    else:
        db.execute("ANALYZE")


INCREMENTAL = 10_000


@contextmanager
def _timing(module, name: str):
    """The seconds of every call of ``module.name`` while inside (the import calls it per batch)."""
    original, spent = getattr(module, name), []

    def timed_call(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    setattr(module, name, timed_call)
    try:
        yield spent
    finally:
        setattr(module, name, original)


def _arrivals(db, count: int, seed: int) -> list:
    """``count`` new Youzan buyers as an import parses them: 60% with the phone of a random existing
    member record (a link to make), the others with phones nobody has."""
    rng = np.random.default_rng(seed + 1)
    known = [r[0] for r in db.rows("SELECT value FROM identifiers WHERE kind = 'phone' AND blocked IS NULL "
                                   "ORDER BY id LIMIT ?", (count * 20,))]
    picks = rng.choice(len(known), size=int(count * 0.6), replace=False)
    phones = [known[i] for i in picks] + [f"199{i:08d}" for i in range(count - len(picks))]
    return [(n, {}, Buyer(key=f"yz{seed}-{n}", identifiers=(("phone", phone),), name=f"有赞{n}",
                          gender="female", points=int(rng.integers(0, 5000))))
            for n, phone in enumerate(phones)]


def _cpu_timed(fn, *args, **kwargs) -> tuple[float, float, object]:
    """Wall and this process's CPU seconds, and the result: on SQLite the query runs in-process, so its
    CPU time is its cost without the other sessions' share of a loaded machine (PostgreSQL's is the
    server's)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def segment_figures(db) -> dict:
    """The segment measures: the 2-condition count and the 5-condition count (median of 3 after one
    warm-up) and its portrait (best of 2), each 5-condition figure also as CPU seconds."""
    out: dict = {}
    condition = segments.Condition.of(SEGMENT)
    out["segment_count"] = segments.count(db, condition)
    runs = [timed(segments.count, db, condition)[1] for _ in range(3)]
    out["segment_count_s"] = round(statistics.median(runs), 3)
    log(f"segment count {out['segment_count']} in {runs}")

    five = segments.Condition.of(SEGMENT5)
    out["segment5_count"] = segments.count(db, five)
    pairs = sorted(_cpu_timed(segments.count, db, five)[:2] for _ in range(3))
    out["segment5_count_s"], out["segment5_count_cpu_s"] = (round(v, 3) for v in pairs[1])
    log(f"5-condition segment count {out['segment5_count']} in {pairs} (wall, cpu)")
    pairs = sorted(_cpu_timed(segments.portrait, db, five)[:2] for _ in range(2))
    out["portrait_s"], out["portrait_cpu_s"] = (round(v, 3) for v in pairs[0])
    out["portrait_base_kept"] = segments.portrait(db, None)["base_as_of"] is not None  # by the tag batch
    log(f"portrait of the 5-condition segment in {pairs} (wall, cpu)")
    return out


def rebuild_figures(db) -> dict:
    """Two full rebuilds of the resolved brand: a replay that moves nobody, then one after the most
    shared phone is blocked (every identifier re-checked, that phone's records apart)."""
    out: dict = {}
    out["oneid_replay_s"], out["oneid_replay_cpu_s"], _ = _cpu_timed(oneid.rebuild, db, actor="bench")
    phone = db.scalar("SELECT value FROM identifiers WHERE kind = 'phone' AND blocked IS NULL GROUP BY value "
                      "ORDER BY COUNT(*) DESC, value LIMIT 1")
    if phone is None:  # every phone blocked already (a brand this bench ran on before): nothing to block
        return out
    oneid.add_block(db, "phone", f"^{re.escape(phone)}$", "bench: the most shared phone")
    out["oneid_rebuild_after_block_s"], out["oneid_rebuild_after_block_cpu_s"], result = _cpu_timed(
        oneid.rebuild, db, actor="bench")
    out["oneid_block_moved"] = result.moved
    log(f"oneid replay in {out['oneid_replay_s']:.1f} s ({out['oneid_replay_cpu_s']:.1f} s CPU); after blocking "
        f"{phone}: {result.moved} records moved in {out['oneid_rebuild_after_block_s']:.1f} s "
        f"({out['oneid_rebuild_after_block_cpu_s']:.1f} s CPU)")
    return out


def bench(location: str, members: int, stores: int, seed: int, *, existing: bool = False) -> dict:
    db = open_cdp(location, sample_catalogue=False)
    out: dict = {"backend": db.dialect.name, "members": members, **yardstick()}  # the day's speed first
    try:
        if existing:
            for table in ("members", "identifiers", "orders", "order_lines", "visits"):
                out["records" if table == "members" else "lines" if table == "order_lines" else table] = int(
                    db.scalar(f"SELECT COUNT(*) FROM {table}"))
        else:
            summary, out["generate_s"] = timed(load_for_benchmark, db, persons=members, stores=stores, seed=seed,
                                               progress=True, resolve=False)  # OneID is timed below
            out.update({k: summary[k] for k in ("records", "identifiers", "orders", "lines", "visits")})
            log(f"generated {summary} in {out['generate_s']:.1f} s")
        out["purchase_days"] = int(db.scalar("SELECT COUNT(*) FROM purchase_days"))  # the record facts
        db.execute("ANALYZE")
        with _timing(purchases, "follow") as following:  # the person facts re-summed inside the rebuild
            out["oneid_rebuild_s"], out["oneid_rebuild_cpu_s"], result = _cpu_timed(oneid.rebuild, db, actor="bench")
        out["person_facts_rebuild_s"] = sum(following)
        out["person_purchase_days"] = int(db.scalar("SELECT COUNT(*) FROM person_purchase_days"))  # what segments sum
        out["persons"] = int(db.scalar("SELECT COUNT(*) FROM members WHERE merged_into IS NULL"))
        out["links"], out["oneid_rebuild_moved"] = result.links, result.moved
        log(f"oneid rebuild: {result.links} links, {result.moved} records moved, {out['persons']} persons in "
            f"{out['oneid_rebuild_s']:.1f} s ({out['oneid_rebuild_cpu_s']:.1f} s CPU in this process)")
        out.update(rebuild_figures(db))
        _, out["tags_refresh_s"] = timed(tags.refresh, db)
        log(f"tag batch in {out['tags_refresh_s']:.1f} s")
        _settle(db, location)

        arrivals = _arrivals(db, INCREMENTAL, seed)
        with _timing(oneid, "resolve_around") as resolving:
            report, out["import_incremental_s"] = timed(Importer(db, "youzan", "bench").run_items, arrivals,
                                                        len(arrivals))
        out["oneid_incremental_s"] = sum(resolving)
        out["incremental_records"], out["incremental_persons_changed"] = report.buyers_new, report.persons_changed
        log(f"incremental OneID: {report.buyers_new} new records, {report.persons_changed} persons changed; "
            f"resolve_around {out['oneid_incremental_s']:.1f} s of the import's {out['import_incremental_s']:.1f} s")

        out.update(segment_figures(db))

        rng = np.random.default_rng(seed)
        heads = [r[0] for r in db.rows("SELECT id FROM members WHERE merged_into IS NULL ORDER BY id LIMIT 1 OFFSET ?",
                                       (int(rng.integers(0, out["persons"])),))]
        ids = heads + [r[0] for r in db.rows(
            "SELECT id FROM members WHERE merged_into IS NULL AND id > ? ORDER BY id LIMIT 300", (heads[0],))]
        picks = [ids[i] for i in rng.choice(len(ids), size=min(200, len(ids)), replace=False)]
        reads = [timed(profile.profile, db, person, explain=True)[1] * 1000 for person in picks]
        out["profile_read_p95_ms"] = round(float(np.percentile(reads, 95)), 2)
        log(f"profile reads p50 {np.percentile(reads, 50):.2f} ms, p95 {out['profile_read_p95_ms']} ms")
    finally:
        db.close()

    gallery = np.random.default_rng(seed).standard_normal((members, 128)).astype(np.float32)
    index = FaceIndex("bench", 128)
    started = time.perf_counter()
    batch = 100_000
    for first in range(0, members, batch):
        chunk = gallery[first:first + batch]
        index._append([(None, None, f"m{first + i}", v / np.linalg.norm(v)) for i, v in enumerate(chunk)])
    out["face_index_build_s"] = round(time.perf_counter() - started, 2)
    out["face_mode"] = index.mode
    probes = gallery[np.random.default_rng(1).choice(members, 200)] + 0.3 * np.random.default_rng(2).standard_normal(
        (200, 128)).astype(np.float32)
    index.search(probes[0])
    searches = [timed(index.search, p)[1] * 1000 for p in probes]
    out["face_top1_ms"] = round(statistics.median(searches), 3)
    out["face_top1_p95_ms"] = round(float(np.percentile(searches, 95)), 3)
    log(f"face top-1 over {members}: median {out['face_top1_ms']} ms ({index.mode})")
    for key in ("generate_s", "oneid_rebuild_s", "oneid_rebuild_cpu_s", "person_facts_rebuild_s", "oneid_replay_s",
                "oneid_replay_cpu_s", "oneid_rebuild_after_block_s", "oneid_rebuild_after_block_cpu_s", "tags_refresh_s",
                "oneid_incremental_s", "import_incremental_s"):
        if key in out:
            out[key] = round(out[key], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", default=None, help="SQLite file, or a PostgreSQL server URL (a database is made)")
    parser.add_argument("--existing", action="store_true",
                        help="measure the brand already in --db (a SQLite file or a full PostgreSQL database URL); "
                             "it changes that brand (OneID resolved, a phone blocked, 10k records imported): give it a copy")
    parser.add_argument("--segments-only", action="store_true",
                        help="with --existing: only the segment figures (no OneID rebuild, tag batch, profiles, faces)")
    args = parser.parse_args()
    if args.existing and args.segments_only:
        db = open_cdp(args.db, sample_catalogue=False)
        try:
            db.execute("ANALYZE")
            result = {"backend": db.dialect.name, "persons": int(db.scalar(
                "SELECT COUNT(*) FROM members WHERE merged_into IS NULL")), **segment_figures(db)}
        finally:
            db.close()
    elif args.existing:
        result = bench(args.db, args.members, args.stores, args.seed, existing=True)
    elif args.db and not args.db.startswith("postgresql://"):  # a SQLite file of the caller's
        result = bench(args.db, args.members, args.stores, args.seed)
    else:  # a database of its own on the PostgreSQL server, or a temporary SQLite file
        with scratch_database(args.db.rstrip("/") if args.db else None, "cdp_scale") as location:
            result = bench(location, args.members, args.stores, args.seed)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
