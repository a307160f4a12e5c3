"""Erased identifiers: data from before an erasure cannot bring the person back.

An erasure deletes a person's identifiers, so a till order paid before it but landed after it (an
offline till, a replayed stream, a late channel export) or an old CRM list would otherwise make a
new record with the same phone and link its orders: the person back. Erasure leaves, per identifier
it deleted (and per channel account key), a SHA-256 digest and the erasure's time, never the value;
the landing (``cloud.cdp.imports.importer``) asks here which buyers are named by one, and when.

A digest of a phone can be found again by hashing every phone (as the audience syncs' hashed
uploads can): it names no one to a reader, which is what an erasure promises; it does not stop
someone holding the database and the phone number from learning that the number was erased.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from cloud.cdp.imports.canonical import Buyer
from cloud.db import Tx


def digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x1f{value}".encode()).hexdigest()


def account(source: str) -> str:
    """The identifier kind of a channel's account key (``members.source_key``, ``Buyer.key``)."""
    return f"account:{source}"


def remember(tx: Tx, named: Iterable[tuple[str, str]], erased: str) -> int:
    """Keep the digests of these ``(kind, value)`` pairs, erased at ``erased`` (a later erasure of the
    same value moves the time on)."""
    rows = sorted({(digest(kind, value), erased) for kind, value in named})
    tx.executemany("INSERT INTO erased_identifiers (digest, erased) VALUES (?, ?) "
                   "ON CONFLICT (digest) DO UPDATE SET erased = excluded.erased", rows)
    return len(rows)


def erased_buyers(tx: Tx, channel: str, buyers: Iterable[Buyer]) -> dict[str, datetime]:
    """Buyer key -> the latest erasure of a person any of its identifiers (or its account) named."""
    digests: dict[str, set[str]] = {}
    for buyer in buyers:
        for kind, value in (*buyer.identifiers, (account(channel), buyer.key)):
            digests.setdefault(digest(kind, value), set()).add(buyer.key)
    found: dict[str, datetime] = {}
    for test, params in tx.among(sorted(digests)):
        for value, erased in tx.rows(f"SELECT digest, erased FROM erased_identifiers WHERE digest {test}", params):
            for key in digests[value]:
                at = datetime.fromisoformat(erased)
                found[key] = max(at, found.get(key, at))
    return found
