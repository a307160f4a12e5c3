"""Audience sync (人群通): a saved segment in the form ad platforms take for audience upload, never
raw personal data. Phones are normalised (digits, the 86 country prefix dropped: ``13912345678``) and
hashed (MD5 or SHA-256, lower-case hex, as Tencent Ads, Ocean Engine and Alimama take them); device ids
(IDFA/OAID/IMEI identifiers, where the CDP knows them) are hashed the same way. Persons and phones on
the suppression list are left out."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime

from cloud.cdp import segments
from cloud.db import Database
from cloud.errors import Invalid

_MOBILE = re.compile(r"^(?:\+?86|0086)?(1[3-9]\d{9})$")
HASHES = {"md5": hashlib.md5, "sha256": hashlib.sha256}
DEVICE_KINDS = ("idfa", "oaid", "imei")


def normalise_phone(value: str) -> str | None:
    found = _MOBILE.match(re.sub(r"[\s\-()]", "", value))
    return found.group(1) if found else None


def export(db: Database, segment_id: str, *, hash_name: str = "sha256", as_of: datetime | None = None) -> Iterator[str]:
    """Lines ``kind,hash`` (``phone_sha256,...``, ``oaid_sha256,...``) of the segment's persons."""
    if hash_name not in HASHES:
        raise Invalid("hash is md5 or sha256", code="invalid_hash")
    digest = HASHES[hash_name]
    _, condition = segments.saved(db, segment_id)
    with db.transaction() as tx:
        persons = segments.matching_persons(tx, condition, as_of=as_of)
        suppressed = {r[0] for r in tx.rows("SELECT value FROM marketing_suppression")}
        seen: set[tuple[str, str]] = set()
        for start in range(0, len(persons), 500):
            chunk = [p for p in persons[start:start + 500] if p not in suppressed]
            if not chunk:
                continue
            marks = ", ".join("?" for _ in chunk)
            for kind, value in tx.rows(
                    f"SELECT i.kind, i.value FROM identifiers i JOIN members m ON m.id = i.member_id "
                    f"WHERE i.blocked IS NULL AND i.kind IN ('phone', 'idfa', 'oaid', 'imei') "
                    f"AND COALESCE(m.merged_into, m.id) IN ({marks})", chunk):
                plain = normalise_phone(value) if kind == "phone" else value.strip().lower()
                if not plain or plain in suppressed:
                    continue
                line = (f"{kind}_{hash_name}", digest(plain.encode()).hexdigest())
                if line not in seen:
                    seen.add(line)
                    yield ",".join(line)
