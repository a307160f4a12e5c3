"""Reads declared by the module that knows the table and run by the caller that knows when.

A guide card asks a dozen questions about one person (profile, points, consent history, tags, visit
count, photo, purchase lines...), owned by as many modules, and none needs another's answer once the
person is known. Asked one at a time they were a dozen round trips to a loaded PostgreSQL server on
every member arrival. So each module can hand out its question as a ``Read`` (statement, parameters
and what its rows mean) instead of asking it; the caller gathers them (``Gather``) and runs them
together: one pipeline on PostgreSQL (``Tx.reads``), one after another on SQLite. The same ``Read``
runs on its own (``Read.run``) for a caller that wants one answer, so a question is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from cloud.db.database import Database, Params, Tx

T = TypeVar("T")
U = TypeVar("U")
Rows = list[dict[str, Any]]


def _as_is(rows: Rows) -> Rows:
    return rows


@dataclass(frozen=True)
class Read(Generic[T]):
    """One statement and what its rows (as dicts) mean."""

    sql: str
    params: Params
    decode: Callable[[Rows], T]

    @staticmethod
    def rows(sql: str, params: Params = ()) -> Read[Rows]:
        """A read whose answer is its rows as they come."""
        return Read(sql, params, _as_is)

    def then(self, after: Callable[[T], U]) -> Read[U]:
        """The same statement, its answer passed through ``after``."""
        decode = self.decode
        return Read(self.sql, self.params, lambda rows: after(decode(rows)))

    def run(self, db: Database | Tx) -> T:
        """Asked on its own: one statement."""
        return self.decode(db.query(self.sql, self.params))


class Gather:
    """Reads declared one by one, then run together by ``run``; ``add`` hands back how to get a
    read's answer once they have run."""

    def __init__(self) -> None:
        self._reads: list[Read[Any]] = []
        self._answers: list[Any] | None = None

    def add(self, read: Read[T]) -> Callable[[], T]:
        at = len(self._reads)
        self._reads.append(read)
        return lambda: self._answer(at)

    def _answer(self, at: int) -> Any:
        if self._answers is None:
            raise RuntimeError("the gathered reads have not run yet")
        return self._answers[at]

    def run(self, db: Database) -> None:
        """Run every read declared, in one transaction (the caller's, when it has one open)."""
        with db.transaction() as tx:
            found = tx.reads(*((read.sql, read.params) for read in self._reads)) if self._reads else []
        self._answers = [read.decode(rows) for read, rows in zip(self._reads, found, strict=True)]
