"""Audience sync (人群通): a saved segment in the form ad platforms take for audience upload, never
raw personal data. Phones are normalised (digits, the 86 country prefix dropped: ``13912345678``) and
hashed (MD5 or SHA-256, lower-case hex, as Tencent Ads, Ocean Engine and Alimama take them); device ids
(IDFA/OAID/IMEI identifiers, where the CDP knows them) are hashed the same way. Persons and phones on
the suppression list are left out.

A sync (``schedule``) keeps a segment's file refreshed: the scheduler's ``audience-refresh`` job
(``refresh_due``) rebuilds each file whose ``every_hours`` have passed and keeps the last one, with
how many lines were added and removed since the one before (what an ad platform's incremental
upload takes), so the platform pulls a stable file (``snapshot``) rather than a live query."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

from cloud.cdp import segments
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.errors import Invalid, NotFound

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


class UnknownSync(NotFound):
    code = "unknown_audience_sync"


def schedule(db: Database, segment_id: str, *, hash_name: str, every_hours: float, actor: str) -> dict:
    """Keep ``segment_id``'s file refreshed every ``every_hours``; the first refresh runs at the next tick."""
    if hash_name not in HASHES:
        raise Invalid("hash is md5 or sha256", code="invalid_hash")
    if not 1 <= every_hours <= 24 * 30:
        raise Invalid("a sync refreshes every 1 hour to 30 days", code="invalid_sync")
    segments.saved(db, segment_id)  # raises UnknownSegment
    with db.transaction() as tx:
        tx.execute("INSERT INTO audience_syncs (segment_id, hash, every_hours, created_by) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (segment_id, hash) DO UPDATE SET every_hours = excluded.every_hours",
                   (segment_id, hash_name, every_hours, actor))
    return sync(db, segment_id, hash_name)


def sync(db: Database, segment_id: str, hash_name: str) -> dict:
    row = db.one("SELECT segment_id, hash, every_hours, refreshed, lines, added, removed FROM audience_syncs "
                 "WHERE segment_id = ? AND hash = ?", (segment_id, hash_name))
    if row is None:
        raise UnknownSync(f"no audience sync of segment {segment_id} ({hash_name})")
    return row


def snapshot(db: Database, segment_id: str, hash_name: str) -> tuple[dict, list[str]]:
    """The last refreshed file of a sync: its row and its lines (none before the first refresh)."""
    row = sync(db, segment_id, hash_name)
    body = str(db.scalar("SELECT body FROM audience_syncs WHERE segment_id = ? AND hash = ?", (segment_id, hash_name)))
    return row, body.split("\n") if body else []


def refresh_due(db: Database, *, now: datetime | None = None) -> list[dict]:
    """Rebuild every sync whose interval has passed; what each refresh found."""
    now = now or utcnow()
    done = []
    for row in db.query("SELECT segment_id, hash, every_hours, refreshed, body FROM audience_syncs"):
        if row["refreshed"] and datetime.fromisoformat(row["refreshed"]) + timedelta(hours=row["every_hours"]) > now:
            continue
        before = set(str(row["body"]).split("\n")) if row["body"] else set()
        lines = sorted(export(db, row["segment_id"], hash_name=row["hash"], as_of=now))
        after = set(lines)
        added, removed = len(after - before), len(before - after)
        db.execute("UPDATE audience_syncs SET refreshed = ?, lines = ?, added = ?, removed = ?, body = ? "
                   "WHERE segment_id = ? AND hash = ?",
                   (iso(now), len(lines), added, removed, "\n".join(lines), row["segment_id"], row["hash"]))
        done.append({"segment_id": row["segment_id"], "hash": row["hash"], "lines": len(lines), "added": added,
                     "removed": removed})
    return done
