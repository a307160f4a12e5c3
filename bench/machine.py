"""How fast this machine runs right now: a fixed single-core workload, timed in a few seconds.

    uv run python bench/machine.py            # last line: JSON with yardstick_s

The benchmark machines are shared virtual machines whose speed changes from day to day by a factor
of two or more with nothing to show it inside them (no steal time, no CPU quota, the same CPU model
and clock): the 1M brand of ``bench/cdp_scale.py`` (1,799,506 records) was drawn in 498 s on the day
of PERFORMANCE.md's seventh pass and in 846-1,102 s on six days since. A figure measured without the
day's speed cannot be read against a target, and learning it by drawing that brand costs up to 18
minutes. So the CDP benchmark and ``bench/report.py`` time this yardstick first and print it beside
their figures; docs/PERFORMANCE.md pairs its values with the 1M draw's on the days both were taken.

The workload is shaped like what those benchmarks spend their time on: Python dict, list and string
work (OneID's walk of the identifier rows and its union-find), and SQLite inserts into an indexed
table, a grouping and indexed reads (the draw and the segment queries). Each part runs three times
and the fastest counts, so a burst of someone else's load during one run counts less; the load
average is printed too. Fixed seeds and sizes: change them and the values are no longer comparable
with the ones already recorded.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Callable

#: the yardstick's sizes; the recorded values hold for these only
KEYS, ROWS, GROUPS = 300_000, 200_000, 500


def _python_work() -> int:
    """Group random string keys by shared value and join the groups, as OneID's walk and union-find do."""
    rng = random.Random(7)
    holders: dict[str, list[str]] = {}
    for i in range(KEYS):
        holders.setdefault(f"v{rng.randrange(KEYS // 2)}", []).append(f"m{i:07d}")
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while (p := parent.get(x, x)) != x:
            parent[x] = parent.get(p, p)
            x = p
        return x

    for records in holders.values():
        records.sort()
        for other in records[1:]:
            a, b = find(records[0]), find(other)
            if a != b:
                parent[b] = a
    return len({find(x) for x in parent})


def _sqlite_work() -> int:
    """Insert rows into an indexed table, group them, and read them back by index range."""
    rng = random.Random(7)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE facts (member TEXT NOT NULL, grp INTEGER NOT NULL, amount REAL NOT NULL)")
    db.execute("CREATE INDEX facts_grp ON facts (grp, member)")
    db.executemany("INSERT INTO facts VALUES (?, ?, ?)",
                   ((f"m{rng.randrange(ROWS):07d}", rng.randrange(GROUPS), rng.random() * 500) for _ in range(ROWS)))
    total = len(db.execute("SELECT member, SUM(amount) FROM facts GROUP BY member").fetchall())
    for grp in range(0, GROUPS, 5):
        total += db.execute("SELECT COUNT(DISTINCT member) FROM facts WHERE grp = ?", (grp,)).fetchone()[0]
    db.close()
    return total


def _fastest(work: Callable[[], int]) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def yardstick() -> dict[str, float | int]:
    """The yardstick's seconds (python and sqlite parts, fastest of three each; their sum is
    ``yardstick_s``), the cores and the 1-minute load average when it ran."""
    python_s, sqlite_s = round(_fastest(_python_work), 2), round(_fastest(_sqlite_work), 2)
    return {"yardstick_s": round(python_s + sqlite_s, 2), "yardstick_python_s": python_s,
            "yardstick_sqlite_s": sqlite_s, "cores": os.cpu_count() or 1,
            "load_1m": round(os.getloadavg()[0], 2)}


if __name__ == "__main__":
    print(json.dumps(yardstick()))
