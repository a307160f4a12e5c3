"""The 360 profile of one person: identities, consent, stores, channels, orders, visits, tags."""

from __future__ import annotations

import json
from collections.abc import Callable

from cloud.cdp import survivorship
from cloud.cdp.members import consent_history
from cloud.db import Database, Gather, Read
from cloud.loyalty import balances

_CHUNK = 500
#: a record as the profile lists it
_RECORD_FIELDS = ("id", "source", "source_key", "home_store", "face_consent", "consent_proven", "created")


def _in(ids: list[str]) -> str:
    return ", ".join("?" for _ in ids)


def records_of(db: Database, person: str) -> list[str]:
    return [r[0] for r in db.rows("SELECT id FROM members WHERE id = ? OR merged_into = ?", (person, person))]


def visible_to_store(db: Database, person: str, store: str) -> bool:
    """A store manager sees people who signed up, bought or were recognised at their store."""
    records = records_of(db, person)
    for start in range(0, len(records), _CHUNK):
        chunk = records[start:start + _CHUNK]
        marks = _in(chunk)
        if db.scalar(
            f"SELECT 1 FROM members WHERE id IN ({marks}) AND home_store = ? "
            f"UNION ALL SELECT 1 FROM orders WHERE member_id IN ({marks}) AND store = ? "
            f"UNION ALL SELECT 1 FROM visits WHERE member_id IN ({marks}) AND store = ? LIMIT 1",
            (*chunk, store, *chunk, store, *chunk, store),
        ):
            return True
    return False


def profile(db: Database, person: str, *, recent: int = 10, explain: bool = False) -> dict:
    """The person's 360 view; attributes by the brand's survivorship rules, and with ``explain``
    each attribute's lineage (rule, record, source, when observed)."""
    gather = Gather()
    with db.transaction() as tx:
        # the records, their consent and the surviving attributes in one read, then the rest together
        read = survivorship.person_records(tx, person, survivorship.rules(db))
        made = profile_reads(gather, person, read, recent=recent, explain=explain)
        gather.run(db)
    return made()


def profile_reads(gather: Gather, person: str, read: survivorship.PersonRecords, *, recent: int = 10,
                  explain: bool = False) -> Callable[[], dict]:
    """``profile`` of a person whose records are read (``read``: a card's, as this arrival's
    ``cloud.cdp.members.member`` read them a moment ago), its other reads declared in ``gather`` so
    the caller runs them with its own (a guide card's: one round trip on PostgreSQL); the profile,
    once ``gather`` has run."""
    head = read.row(person)
    if head is None:
        raise KeyError(person)  # callers resolve the person first (person_for)
    records = [{k: r[k] for k in _RECORD_FIELDS} for r in read.rows]
    ids = [r["id"] for r in records]
    marks = _in(ids)
    # the reads below need only the record ids
    identifiers = gather.add(Read.rows(
        f"SELECT kind, value, blocked FROM identifiers WHERE member_id IN ({marks}) ORDER BY kind, value", ids))
    # newest first, the id breaking a tie (a guide card reads the newest paid order's lines by the same order)
    orders = gather.add(Read.rows(f"SELECT id, channel, store, ts, paid, status FROM orders WHERE member_id IN ({marks}) "
                                  "ORDER BY ts DESC, id DESC LIMIT ?", (*ids, recent)))
    counts = gather.add(Read.rows(
        f"SELECT (SELECT COUNT(*) FROM orders WHERE member_id IN ({marks})) AS orders, "
        f"(SELECT COALESCE(SUM(paid), 0) FROM orders WHERE member_id IN ({marks})) AS ltv, "
        f"(SELECT COUNT(*) FROM visits WHERE member_id IN ({marks})) AS visits, "
        f"(SELECT COUNT(*) FROM faces WHERE member_id IN ({marks})) AS faces", (*ids, *ids, *ids, *ids)))
    channels = gather.add(Read.rows(
        f"SELECT DISTINCT channel FROM orders WHERE member_id IN ({marks}) ORDER BY channel", ids))
    stores = gather.add(Read.rows(
        f"SELECT DISTINCT store FROM orders WHERE member_id IN ({marks}) AND store IS NOT NULL "
        f"UNION SELECT DISTINCT store FROM visits WHERE member_id IN ({marks})", (*ids, *ids)))
    visits = gather.add(Read.rows(
        f"SELECT id, store, ts, confidence FROM visits WHERE member_id IN ({marks}) ORDER BY ts DESC LIMIT ?",
        (*ids, recent)))
    stats = gather.add(Read.rows("SELECT * FROM person_stats WHERE member_id = ?", (person,)))
    tags = gather.add(Read.rows("SELECT tag, value, source FROM person_tags WHERE member_id = ? ORDER BY tag", (person,)))
    # the ledger's balance and what expires soon; else the CRM's last imported figure
    points = gather.add(balances.balance_read(person))
    history = gather.add(consent_history(ids))

    def made() -> dict:
        (count,) = counts()
        stat = next(({**row, "top_categories": json.loads(row["top_categories"])} for row in stats()), None)
        best = survivorship.values_of(read.attributes)
        out = {
            "id": person, "name": best["name"], "gender": best["gender"],
            "tier": best["tier"] or survivorship.DEFAULT_TIER, "birthday": best["birthday"],
            "points": points() or (None if best["points"] is None else {"balance": best["points"]}),
            "home_store": best["home_store"], "phone": best["phone"], "address": best["address"],
            "signed_up": best["signed_up"],
            "member_tags": best["tags"],
            "consent": {"face": read.face_consent(person), "history": history()}, "faces": count["faces"],
            "records": records, "identifiers": identifiers(),
            "stores": sorted({r["store"] for r in stores()} | {r["home_store"] for r in records if r["home_store"]}),
            "channels": [r["channel"] for r in channels()],
            "orders": {"count": count["orders"], "lifetime_value": round(count["ltv"], 2), "recent": orders()},
            "visits": {"count": count["visits"], "recent": visits()}, "stats": stat, "tags": tags(),
            "preferences": json.loads(head["preferences"]),
        }
        if explain:
            out["lineage"] = survivorship.lineage_of(read.attributes)
        return out

    return made
