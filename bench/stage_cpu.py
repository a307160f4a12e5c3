"""Where a cloud process's CPU goes, by thread and by step of the ingest (issue 19, tenth pass).

    uv run python bench/ingest_capacity.py --engines sqlite --rates 200 --stage-cpu-dir /tmp/cpu
    uv run python -m bench.stage_cpu /tmp/cpu/*.json --arrivals 1010

Enabled in a child process by ``INSTORE_STAGE_CPU=<file prefix>`` and a ``sitecustomize`` on its path
(``bench/ingest_capacity.py --stage-cpu-dir`` writes both): ``install_from_env`` wraps each function of
``STEPS`` so that every call adds the CPU its thread spent inside it (``time.thread_time``, inclusive of
what it calls; time blocked on a socket, a lock or the database server costs no CPU and is not
counted), and every 2 s and at exit rewrites ``<prefix>.<pid>.json`` with those sums and every thread's
CPU clock.

Why not a profiler: cProfile sees one thread and charges its own cost to small Python calls (h19e's
``description`` at 11 % that alternated runs did not confirm); an in-process stack sampler only runs
when it holds the GIL, so it finds threads where they release it (a database call, a socket send)
and charges them the Python work that came before (tried here: it put decoding at 0.2 % of the worker
where these sums put it at 7 %). A wrapper costs ~1 us a call: steps called once or a few times an
arrival are measured within a few per cent, and no step here recurses.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import importlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: ``module:attribute`` or ``module:Class.method``: the ingest's way through a cloud process, outermost first.
STEPS = (
    "cloud.arrivals.ingest:IngestWorker._on_message", "cloud.arrivals.ingest:IngestWorker._next_batch",
    "cloud.arrivals.ingest:EventProcessor.route", "cloud.arrivals.ingest:EventProcessor._known_device",
    "cloud.arrivals.ingest:EventProcessor._decode", "cloud.faces.matching:Matcher.match",
    "cloud.faces.gallery:FaceIndex.refresh", "cloud.faces.gallery:FaceIndex.search",
    "cloud.cdp.members:member", "cloud.arrivals.fusion:Fusion.fuse",
    "cloud.arrivals.ingest:EventProcessor._same_visit_elsewhere", "cloud.arrivals.cards:CardBuilder.build",
    "cloud.arrivals.cards:CardBuilder.member_card", "cloud.db.reads:Gather.run",
    "cloud.arrivals.cards:PersonReads.advice", "cloud.arrivals.cards:record_shown",
    "cloud.arrivals.visits:record_visit", "cloud.faces.learning:hold", "cloud.arrivals.metrics:reached",
    "cloud.arrivals.ingest:IngestWorker._publish", "protocol.transport:publish", "protocol.transport:encode",
    "cloud.pricing.label_flash:ArrivalFlasher.publish", "paho.mqtt.client:Client.ack",
    "logging:Logger._log",
)


def _wrap(owner: Any, name: str, label: str, sums: dict[str, list[float]]) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(original)
    def measured(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            entry = sums.setdefault(label, [0.0, 0])
            entry[0] += time.thread_time() - started
            entry[1] += 1

    setattr(owner, name, measured)


def install(prefix: str, steps: tuple[str, ...] = STEPS) -> None:
    """Wrap ``steps`` and start writing ``<prefix>.<pid>.json``. Call before the code that imports them by
    name runs (``from protocol.codec import encode`` keeps the unwrapped one): ``sitecustomize`` is."""
    sums: dict[str, list[float]] = {}
    for step in steps:
        module, _, path = step.partition(":")
        owner: Any = importlib.import_module(module)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        _wrap(owner, name, f"{module.rsplit('.', 1)[-1]}.{path}", sums)
    out = Path(f"{prefix}.{os.getpid()}.json")

    def write() -> None:
        threads = {}
        for thread in threading.enumerate():
            try:
                threads[thread.name] = time.clock_gettime(time.pthread_getcpuclockid(thread.ident or 0))
            except OSError:  # ended meanwhile
                continue
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"steps": sums, "threads": threads}))
        tmp.replace(out)

    def every_2_s() -> None:  # a process killed without an exit still leaves its sums of 2 s ago
        while True:
            time.sleep(2.0)
            write()

    threading.Thread(target=every_2_s, name="stage-cpu", daemon=True).start()
    atexit.register(write)


def install_from_env() -> None:
    prefix = os.environ.get("INSTORE_STAGE_CPU")
    if prefix:
        install(prefix)


def report(paths: list[Path], arrivals: int) -> None:
    """Each process's threads' CPU (whole run, start-up included) and each step's CPU an arrival."""
    for path in paths:
        data = json.loads(path.read_text())
        if not data["steps"]:
            continue
        print(f"{path.name}: thread CPU s " + ", ".join(f"{name} {s:.2f}" for name, s in data["threads"].items() if s > 0.01))
        for label, (seconds, calls) in sorted(data["steps"].items(), key=lambda kv: -kv[1][0]):
            print(f"  {seconds * 1000 / arrivals:7.3f} ms/arrival  {calls / arrivals:5.2f} calls/arrival"
                  f"  {seconds * 1e6 / max(calls, 1):8.1f} us/call  {label}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--arrivals", type=int, required=True, help="arrivals the process received (the run's warm-up included)")
    args = parser.parse_args()
    report(args.files, args.arrivals)
