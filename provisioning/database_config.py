"""The PostgreSQL settings the CDP recommends for a machine, as a ``postgresql.conf`` fragment.

``instore provision database-config --memory 24GiB --cores 2`` writes it; the operator includes it
from ``postgresql.conf`` (``include '/path/instore.conf'``, or drops it into Debian's
``/etc/postgresql/15/main/conf.d/``) and restarts the server. Each line says why it holds its value.

What the rules rest on (docs/PERFORMANCE.md): at 1M members a brand's database is ~15 GB, and on a
stock server (shared_buffers 128MB, max_wal_size 1GB) every person-facts upsert and segment probe is
an eviction, and a first OneID rebuild, which rewrites millions of rows, forces a checkpoint every
GB of WAL. ``--memory`` is the RAM the server may count on: the machine's own when PostgreSQL has it
alone, or a budget on a shared one. Memory units are PostgreSQL's own (``1GB`` = 1024MB), and every
value is written the way ``SHOW`` prints it, so a running server can be checked against the file.

Two figures come from the CDP's own connections (cloud/db/database.py, ``PostgresDatabase``): each
process opens a psycopg pool of at most ``CDP_POOL_SIZE`` connections, and each connection SETs
``work_mem`` to ``CDP_WORK_MEM`` so that segment sets are hashed. They are mirrored here, not
imported, so the command runs on a database machine without the cloud's packages;
tests/provisioning/test_database_config.py checks that they still agree.
"""

from __future__ import annotations

import math
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

KB = 1024
MB = 1024 * KB
GB = 1024 * MB
TB = 1024 * GB

#: most connections one CDP process opens (``PostgresDatabase(max_size=...)``'s default)
CDP_POOL_SIZE = 8
#: what the CDP SETs work_mem to on each of its connections (``_configure_session``)
CDP_WORK_MEM = 256 * MB
#: connections beside the CDP's pools: psql, pg_dump, bench scripts, the 3 reserved for superusers
SPARE_CONNECTIONS = 10
#: the least memory worth configuring for: one CDP hash may take 256MB
MIN_MEMORY = 1 * GB
MAX_MEMORY = 64 * TB
SHARED_BUFFERS_CAP = 16 * GB
MAINTENANCE_CAP = 2 * GB

Storage = Literal["ssd", "hdd"]

_UNITS = {"": 1, "k": KB, "m": MB, "g": GB, "t": TB}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)\s*$", re.IGNORECASE)


class DatabaseConfigError(ValueError):
    pass


def parse_memory(text: str) -> int:
    """Bytes in ``24GiB``, ``512MB``, ``1.5G``, ``64kB``: 1024-based, as PostgreSQL reads its units.

    A bare number is refused (bytes or gigabytes?), and so is anything else that is not one number
    and one unit."""
    match = _MEMORY.match(text)
    if match is None:
        raise ValueError(f"memory must be a number and a unit, like 24GiB or 512MB, not {text!r}")
    number, unit = match.groups()
    return int(Decimal(number) * _UNITS[(unit or "").lower()])


def show(size: int) -> str:
    """A size the way PostgreSQL's ``SHOW`` prints it: the largest unit that divides it exactly."""
    for name, unit in (("TB", TB), ("GB", GB), ("MB", MB)):
        if size % unit == 0:
            return f"{size // unit}{name}"
    return f"{size // KB}kB"


def _whole_mb(size: float) -> int:
    return int(size) // MB * MB


class Machine(BaseModel):
    """What the settings are worked out from; ``memory`` may be given as text (``24GiB``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory: int = Field(description="bytes of RAM the server may count on")
    cores: int = Field(ge=1, le=1024, description="CPU cores the server may use")
    storage: Storage = Field(default="ssd", description="what the data directory is on")
    processes: int = Field(default=4, ge=1, le=64, description="CDP processes (API + ingest) sharing the database")

    @field_validator("memory", mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        return parse_memory(value) if isinstance(value, str) else value

    @field_validator("memory")
    @classmethod
    def _sensible(cls, value: int) -> int:
        if value < MIN_MEMORY:
            raise ValueError(f"{show(_whole_mb(value)) if value >= MB else f'{value} bytes'} is too little "
                             f"for the CDP: at least {show(MIN_MEMORY)} (one of its hashes may take {show(CDP_WORK_MEM)})")
        if value > MAX_MEMORY:
            raise ValueError(f"{value // GB}GB is not a machine's memory (at most {show(MAX_MEMORY)})")
        return value


class Setting(BaseModel):
    """One line of the fragment: ``name = value  # why``."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: str
    why: str

    def line(self) -> str:
        quoted = self.value if re.fullmatch(r"[0-9.]+", self.value) else f"'{self.value}'"
        return f"{self.name:<32} = {quoted:<9} # {self.why}"


def machine(memory: str | int | None = None, cores: int | None = None, storage: str = "ssd",
            processes: int = 4) -> Machine:
    """The machine to configure; memory and cores default to this machine's. Every refusal is one
    ``DatabaseConfigError`` naming the field and what is wrong with it."""
    try:
        return Machine.model_validate({
            "memory": this_memory() if memory is None else memory,
            "cores": this_cores() if cores is None else cores,
            "storage": storage,
            "processes": processes,
        })
    except ValidationError as exc:
        reasons = "; ".join(f"--{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                            for e in exc.errors())
        raise DatabaseConfigError(reasons) from None


def this_memory() -> int:
    """This machine's RAM (``os.sysconf``), or its cgroup's memory limit when that is lower."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _cgroup("memory.max")
    return min(physical, int(limit[0])) if limit and limit[0].isdigit() else physical


def this_cores() -> int:
    """The cores this process may run on, or its cgroup's CPU quota when that is lower."""
    cores = len(os.sched_getaffinity(0))
    quota = _cgroup("cpu.max")
    if quota and len(quota) == 2 and quota[0].isdigit() and quota[1].isdigit():
        cores = min(cores, max(1, math.ceil(int(quota[0]) / int(quota[1]))))
    return cores


def _cgroup(name: str) -> list[str] | None:
    try:
        return Path("/sys/fs/cgroup", name).read_text().split()
    except OSError:
        return None


def recommend(m: Machine) -> list[Setting]:
    """The settings, in the fragment's order, each with its reason."""
    memory = show(_whole_mb(m.memory))
    shared_buffers = min(_whole_mb(m.memory / 4), SHARED_BUFFERS_CAP)
    connections = m.processes * CDP_POOL_SIZE + SPARE_CONNECTIONS
    work_mem = max(4 * MB, min(CDP_WORK_MEM, _whole_mb((m.memory - shared_buffers) / (4 * connections))))
    max_wal = max(2 * GB, min(16 * GB, m.memory // GB * GB))
    per_query = min(4, m.cores // 2)
    ssd = m.storage == "ssd"

    def setting(name: str, value: int | str, why: str) -> Setting:
        return Setting(name=name, value=value if isinstance(value, str) else show(value), why=why)

    return [
        setting("shared_buffers", shared_buffers,
                f"25% of {memory}, at most {show(SHARED_BUFFERS_CAP)}: the pages person-facts upserts and segment "
                "probes touch stay in PostgreSQL's own cache; the rest of the memory is the OS page cache's, "
                "which a larger pool would only duplicate (restart)"),
        setting("effective_cache_size", _whole_mb(m.memory * 3 / 4),
                f"75% of {memory}: what shared_buffers and the OS page cache hold between them; "
                "a planner estimate (index scans look cheaper), nothing is allocated"),
        setting("maintenance_work_mem", min(_whole_mb(m.memory / 16), MAINTENANCE_CAP),
                f"1/16 of {memory}, at most {show(MAINTENANCE_CAP)}: CREATE INDEX after a bulk copy and VACUUM "
                "after a rebuild sort in memory; each of the 3 autovacuum workers may take it too "
                "(VACUUM itself uses at most 1GB)"),
        setting("work_mem", work_mem,
                f"for sessions other than the CDP's (psql, pg_dump, scripts): (memory - shared_buffers) / "
                f"(4 x max_connections), 4MB-{show(CDP_WORK_MEM)}; the CDP SETs {show(CDP_WORK_MEM)} on each of its "
                "own connections (cloud/db/database.py) so segment sets are hashed, and this stays at or below that"),
        setting("max_connections", str(connections),
                f"{m.processes} CDP processes x a pool of {CDP_POOL_SIZE} (cloud/db/database.py) + "
                f"{SPARE_CONNECTIONS} for psql, backups and scripts (3 of them reserved for superusers); "
                f"kept small because every CDP connection may hash with {show(CDP_WORK_MEM)} (restart)"),
        setting("max_wal_size", max_wal,
                f"{memory} rounded down to whole GB, 2GB-16GB: a first OneID rebuild rewrites millions of rows, "
                "and the default 1GB forces a checkpoint every GB of WAL, after which every page's next "
                "write is a full-page image; needs this much free disk beside the data"),
        setting("min_wal_size", max_wal // 4,
                "a quarter of max_wal_size: WAL files kept for reuse after a bulk write, so the next "
                "rebuild does not create and zero them anew"),
        setting("checkpoint_timeout", "15min",
                "a checkpoint every 15 minutes instead of 5: a rebuild of several minutes writes fewer "
                "full-page images; crash recovery replays at most about that much WAL"),
        setting("checkpoint_completion_target", "0.9",
                "spread each checkpoint's writes over 90% of the interval so they do not stall the "
                "rebuild (the default since PostgreSQL 14; stated for a postgresql.conf that lowers it)"),
        setting("wal_compression", "lz4",
                "compress the full-page images that fill a bulk rewrite's WAL after each checkpoint; "
                "lz4 costs little CPU (PostgreSQL 15 built --with-lz4, as Debian's and PGDG's are)"),
        setting("random_page_cost", "4",
                "PostgreSQL's default, on SSD too (the usual SSD advice is 1.1): measured, 1.1 made a first "
                "OneID rebuild's person-facts step 40% slower (250k persons: 14-15 s against 10 s) and "
                "segment counts no faster at 1M (docs/PERFORMANCE.md)"),
        setting("effective_io_concurrency", "200" if ssd else "2",
                "an SSD serves many reads at once: bitmap heap scans prefetch this many pages" if ssd else
                "a disk serves few reads at once: bitmap heap scans prefetch only a couple of pages"),
        setting("max_worker_processes", str(max(8, m.cores)),
                "background and parallel workers: the default 8, or one per core when there are more (restart)"),
        setting("max_parallel_workers", str(m.cores),
                f"parallel workers running at once across all queries: one per core ({m.cores})"),
        setting("max_parallel_workers_per_gather", str(per_query),
                f"half the {m.cores} cores, at most 4, for one query, leaving the rest to the API and ingest; "
                "the CDP also splits a segment count or portrait driven by its buyers into this many shares "
                "and one, asked at once" + ("; none on one core" if per_query == 0 else "")),
        setting("max_parallel_maintenance_workers", str(per_query),
                "half the cores, at most 4, for one CREATE INDEX after a bulk copy"
                + ("; none on one core" if per_query == 0 else "")),
    ]


def fragment(m: Machine, settings: list[Setting] | None = None) -> str:
    """The ``postgresql.conf`` fragment: a header saying what it is for, then one line per setting."""
    settings = recommend(m) if settings is None else settings
    sessions = m.processes * CDP_POOL_SIZE
    header = [
        "# PostgreSQL settings the instore CDP recommends, written by",
        f"#   instore provision database-config --memory {show(_whole_mb(m.memory))} --cores {m.cores} "
        f"--storage {m.storage} --processes {m.processes}",
        "# for PostgreSQL 15. Include it at the end of postgresql.conf (include '/path/to/this.conf', or put",
        "# it in Debian's /etc/postgresql/15/main/conf.d/) and restart the server: the settings marked",
        "# (restart) take effect only then. Sizes are PostgreSQL's units (1GB = 1024MB), written as SHOW",
        "# prints them. At worst the CDP's pools hash at once with",
        f"# {sessions} connections x {show(CDP_WORK_MEM)} = {show(sessions * CDP_WORK_MEM)} beside shared_buffers; "
        "they seldom do.",
        "",
    ]
    return "\n".join(header + [s.line() for s in settings]) + "\n"


def values(settings: list[Setting]) -> dict[str, str]:
    """Each setting's value as ``SHOW`` prints it."""
    return {s.name: s.value for s in settings}


def write(m: Machine, out: Path) -> Path:
    out.write_text(fragment(m), encoding="utf-8")
    return out
