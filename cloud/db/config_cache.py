"""Brand-level configuration read through a short-lived cache: what every member arrival's card
reads and HQ changes rarely (survivorship rules, lifecycle windows, sales script templates).

Each read was a statement per card (a round trip on PostgreSQL) returning the same answer for
hours. A value is kept per ``Database`` handle for ``TTL_S`` seconds, so a change made through
another process (another ingest or API process) reaches this one within ``TTL_S``; a change made
through any handle of this process on the same database drops the value at once (``changed``).
Only configuration belongs here: never consent, nor a member's personal data, which must be read
again by the next arrival (withdrawal and erasure are seen at once).

A writer calls ``changed`` once its write is made; a reader in another thread that read the old
value just before the write commits may keep it for up to ``TTL_S`` more: the same bound as
another process's.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from cloud.db.database import Database

#: how long a process may show configuration another process has changed
TTL_S = 2.0

T = TypeVar("T")

_lock = threading.Lock()
#: per handle: reader -> (read at, value); weak, so a closed handle's values go with it
_values: weakref.WeakKeyDictionary[Database, dict[Callable[..., Any], tuple[float, Any]]] = \
    weakref.WeakKeyDictionary()


def cached(db: Database, read: Callable[[Database], T]) -> T:
    """``read(db)``, or what it returned less than ``TTL_S`` ago on this handle."""
    at = time.monotonic()
    with _lock:
        held = _values.get(db, {}).get(read)
    if held is not None and at - held[0] < TTL_S:
        return held[1]
    value = read(db)
    with _lock:
        _values.setdefault(db, {})[read] = (at, value)
    return value


def changed(db: Database, read: Callable[[Database], Any]) -> None:
    """Forget ``read``'s value on every handle of this process open on ``db``'s database."""
    with _lock:
        for handle, values in _values.items():
            if handle.location == db.location:
                values.pop(read, None)
