"""Erased identifiers: data from before an erasure cannot bring the person back.

An erasure deletes a person's identifiers, so a till order paid before it but landed after it (an
offline till, a replayed stream, a late channel export) or an old CRM list would otherwise make a
new record with the same phone and link its orders: the person back. Erasure leaves, per identifier
it deleted (and per channel account key), a SHA-256 digest and the erasure's time, never the value;
the landing (``cloud.cdp.imports.importer``) asks here which buyers are named by one, and when.

Rows the importer cannot land are quarantined with their raw content for HQ's review; one that
lands after an erasure and names an erased identifier (a till re-sending a sale that had already
landed, a receipt it garbled) would store the person's phone or card again. The importer keeps
their reason without their content, as the erasure's own clearing does: an order's buyer is asked
here as a landing order's is (``erased_buyers``), a row that never became an order by its values
(``erased_rows``).

A digest of a phone can be found again by hashing every phone (as the audience syncs' hashed
uploads can): it names no one to a reader, which is what an erasure promises; it does not stop
someone holding the database and the phone number from learning that the number was erased.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from cloud.cdp.imports import cleaning
from cloud.cdp.imports.canonical import Buyer
from cloud.db import Tx

#: Shorter values name no one (as ``erasure``'s clearing of quarantined rows reads them).
_MIN_VALUE = 4


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


def _texts(raw: object) -> Iterator[str]:
    """Every value a raw row holds, nested ones too (a posted order's member, a file's grouped
    lines), and a phone also as cleaned (``+86 138-0013-8000`` is ``13800138000``)."""
    if isinstance(raw, dict):
        for value in raw.values():
            yield from _texts(value)
    elif isinstance(raw, list | tuple):
        for value in raw:
            yield from _texts(value)
    elif raw is not None and not isinstance(raw, bool):
        text = str(raw).strip()
        if len(text) >= _MIN_VALUE:
            yield text
            yield cleaning.phone(text) or text


def erased_rows(tx: Tx, raws: Sequence[object]) -> set[int]:
    """The indexes of the raw rows naming an identifier an erasure deleted that no record holds now:
    rows that never became an order (unreadable, a field missing), so no buyer says what they name.

    Every value of a row is tried as each identifier kind of the brand's rules (``link_rules``):
    a raw row does not say which of its cells is a card or a unionid. A value some record holds
    again (the customer came back after the erasure: a new record) names that member, not the
    erased person, so their rows are kept whole. Nothing is hashed while nobody has been erased."""
    if not raws or tx.scalar("SELECT 1 FROM erased_identifiers LIMIT 1") is None:
        return set()
    kinds = [r[0] for r in tx.rows("SELECT kind FROM link_rules ORDER BY kind")]
    values_of = [set(_texts(raw)) for raw in raws]
    # each distinct value once: a file's rows repeat their store, SKU and time
    named = {digest(kind, value): (kind, value) for value in set().union(*values_of) for kind in kinds}
    erased = [named[r[0]] for test, params in tx.among(sorted(named))
              for r in tx.rows(f"SELECT digest FROM erased_identifiers WHERE digest {test}", params)]
    gone = {value for kind, value in erased
            if tx.scalar("SELECT 1 FROM identifiers WHERE kind = ? AND value = ? LIMIT 1", (kind, value)) is None}
    return {i for i, values in enumerate(values_of) if values & gone}
