"""A change of the survivorship rules, applied to every person's stored profile in batches.

``person_profiles`` holds each person's surviving values (what segments and portraits filter on,
``cloud.cdp.survivorship.store``). Rewriting all of them inside the ``PUT`` that changed the rules
took minutes at a million persons and held one write transaction all along. Now ``change_rules``
stores the rules and a ``profile_rewrites`` row and answers at once; the cloud scheduler's
``profile-rewrite`` job (``run``) writes the persons in id order, ``BATCH`` per transaction.
Each batch advances the row's ``last_person`` in its own transaction, so a crash or a restart
resumes after the last committed batch, and the advance is a compare-and-set on ``last_person``,
so two cloud processes never write the same batch twice.

Until the job reaches a person, their stored profile keeps the values chosen by the old rules, so
a segment count or a portrait may still count them by those values. The 360 profile and the
identity view work out the attributes when they are read, so they show the new rules at once.
Persons written by other paths in the meantime (an import's refresh, a merge, a sign-up) get the
new rules, because ``store`` always reads the current ones. If the rules change again while a
rewrite is running, the new rewrite supersedes it and starts again from the first person.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from uuid import uuid4

from cloud.cdp import survivorship
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from cloud.db.config_cache import changed
from cloud.errors import NotFound

#: persons per transaction: a batch is a few hundred milliseconds of work, short enough not to
#: hold back imports waiting for the write lock
BATCH = 2000
#: how long one scheduler turn keeps writing batches before leaving the thread to the other jobs
TURN_S = 1.0
_COLUMNS = "id, rules, status, last_person, done, total, started, finished, actor"


class UnknownRewrite(NotFound):
    code = "unknown_rewrite"


def change_rules(db: Database, *, source_priority: Sequence[str] | None, rules: Mapping[str, str] | None,
                 actor: str) -> tuple[survivorship.Config, dict]:
    """Store the brand's survivorship rules and queue the rewrite of every stored profile; the
    rules and the rewrite (``status`` running, ``done`` 0 of ``total`` persons)."""
    with db.transaction() as tx:
        chosen = survivorship.set_config(tx, source_priority=source_priority, rules=rules)
        now = iso(utcnow())
        tx.execute("UPDATE profile_rewrites SET status = 'superseded', finished = ? WHERE status = 'running'", (now,))
        rewrite_id = uuid4().hex
        tx.execute(f"INSERT INTO profile_rewrites ({_COLUMNS}) VALUES (?, ?, 'running', '', 0, ?, ?, NULL, ?)",
                   (rewrite_id, json.dumps(chosen.as_dict(), ensure_ascii=False),
                    int(tx.scalar("SELECT COUNT(*) FROM members WHERE merged_into IS NULL")), now, actor))
        queued = _one(tx, rewrite_id)
    changed(db, survivorship.config)  # this process's cards use the new rules at once, others within seconds
    return chosen, queued


def _out(row: dict) -> dict:
    return {**row, "rules": json.loads(row["rules"])}


def _one(tx: Tx | Database, rewrite_id: str) -> dict:
    row = tx.one(f"SELECT {_COLUMNS} FROM profile_rewrites WHERE id = ?", (rewrite_id,))
    if row is None:
        raise UnknownRewrite(f"no survivorship rewrite {rewrite_id}")
    return _out(row)


def rewrite(db: Database, rewrite_id: str) -> dict:
    """One rewrite's progress: ``status`` (running, done, superseded), ``done`` of ``total``."""
    return _one(db, rewrite_id)


def latest(db: Database) -> dict | None:
    row = db.one(f"SELECT {_COLUMNS} FROM profile_rewrites ORDER BY started DESC LIMIT 1")
    return None if row is None else _out(row)


def run_batch(db: Database, *, size: int = BATCH) -> int | None:
    """Write the next ``size`` persons of the running rewrite; the number written, or None when no
    rewrite is running (or another process took this batch)."""
    with db.transaction() as tx:
        job = tx.one("SELECT id, last_person FROM profile_rewrites WHERE status = 'running' "
                     "ORDER BY started DESC LIMIT 1")
        if job is None:
            return None
        persons = [r[0] for r in tx.rows("SELECT id FROM members WHERE merged_into IS NULL AND id > ? "
                                         "ORDER BY id LIMIT ?", (job["last_person"], size))]
        finished = len(persons) < size
        claimed = tx.execute(
            "UPDATE profile_rewrites SET last_person = ?, done = done + ?, status = ?, finished = ? "
            "WHERE id = ? AND status = 'running' AND last_person = ?",
            (persons[-1] if persons else job["last_person"], len(persons), "done" if finished else "running",
             iso(utcnow()) if finished else None, job["id"], job["last_person"]))
        if not claimed:
            return None
        if persons:
            survivorship.store(tx, persons)
        return len(persons)


def run(db: Database, *, budget_s: float = TURN_S, size: int = BATCH) -> int:
    """The scheduler's turn: batches until the rewrite is done or ``budget_s`` has passed; the
    persons written."""
    started, written = time.monotonic(), 0
    while time.monotonic() - started < budget_s:
        n = run_batch(db, size=size)
        if n is None:
            break
        written += n
    return written
