"""The 360 profile of one person: identities, consent, stores, channels, orders, visits, tags."""

from __future__ import annotations

import json

from cloud.cdp import survivorship
from cloud.cdp.members import consent_history
from cloud.db import Database
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


def profile(db: Database, person: str, *, recent: int = 10, explain: bool = False,
            read_records: survivorship.PersonRecords | None = None) -> dict:
    """The person's 360 view; attributes by the brand's survivorship rules, and with ``explain``
    each attribute's lineage (rule, record, source, when observed). ``read_records``: the person's records
    as this arrival's ``cloud.cdp.members.member`` read them a moment ago (a card's), not read again."""
    with db.transaction() as tx:
        # the records, their consent and the surviving attributes in one read (a card's profile is read
        # on every member arrival, and each statement is a round trip on PostgreSQL)
        read = read_records or survivorship.person_records(tx, person, survivorship.rules(db))
        head = read.row(person)
        if head is None:
            raise KeyError(person)  # callers resolve the person first (person_for)
        consent, preferences = read.face_consent(person), json.loads(head["preferences"])
        attributes = read.attributes
        records = [{k: r[k] for k in _RECORD_FIELDS} for r in read.rows]
        ids = [r["id"] for r in records]
        marks = _in(ids)
        # the reads below need only the record ids: one pipeline on PostgreSQL, not a round trip each
        identifiers, orders, (counts,), channel_rows, store_rows, visits, stat_rows, tag_rows = tx.reads(
            (f"SELECT kind, value, blocked FROM identifiers WHERE member_id IN ({marks}) ORDER BY kind, value", ids),
            (f"SELECT id, channel, store, ts, paid, status FROM orders WHERE member_id IN ({marks}) "
             "ORDER BY ts DESC LIMIT ?", (*ids, recent)),
            (f"SELECT (SELECT COUNT(*) FROM orders WHERE member_id IN ({marks})) AS orders, "
             f"(SELECT COALESCE(SUM(paid), 0) FROM orders WHERE member_id IN ({marks})) AS ltv, "
             f"(SELECT COUNT(*) FROM visits WHERE member_id IN ({marks})) AS visits, "
             f"(SELECT COUNT(*) FROM faces WHERE member_id IN ({marks})) AS faces", (*ids, *ids, *ids, *ids)),
            (f"SELECT DISTINCT channel FROM orders WHERE member_id IN ({marks}) ORDER BY channel", ids),
            (f"SELECT DISTINCT store FROM orders WHERE member_id IN ({marks}) AND store IS NOT NULL "
             f"UNION SELECT DISTINCT store FROM visits WHERE member_id IN ({marks})", (*ids, *ids)),
            (f"SELECT id, store, ts, confidence FROM visits WHERE member_id IN ({marks}) ORDER BY ts DESC LIMIT ?",
             (*ids, recent)),
            ("SELECT * FROM person_stats WHERE member_id = ?", (person,)),
            ("SELECT tag, value, source FROM person_tags WHERE member_id = ? ORDER BY tag", (person,)))
        order_count, ltv, visit_count, faces = counts["orders"], counts["ltv"], counts["visits"], counts["faces"]
        channels = [r["channel"] for r in channel_rows]
        stores = {r["store"] for r in store_rows} | {r["home_store"] for r in records if r["home_store"]}
        stats = stat_rows[0] if stat_rows else None
        # the ledger's balance and what expires soon; else the CRM's last imported figure
        points = balances.balance(tx, person)
        history = consent_history(tx, ids)
    if stats:
        stats["top_categories"] = json.loads(stats["top_categories"])
    best = survivorship.values_of(attributes)
    out = {
        "id": person, "name": best["name"], "gender": best["gender"],
        "tier": best["tier"] or survivorship.DEFAULT_TIER, "birthday": best["birthday"],
        "points": points or (None if best["points"] is None else {"balance": best["points"]}),
        "home_store": best["home_store"], "phone": best["phone"], "address": best["address"],
        "signed_up": best["signed_up"],
        "member_tags": best["tags"],
        "consent": {"face": consent, "history": history}, "faces": faces,
        "records": records, "identifiers": identifiers, "stores": sorted(stores), "channels": channels,
        "orders": {"count": order_count, "lifetime_value": round(ltv, 2), "recent": orders},
        "visits": {"count": visit_count, "recent": visits}, "stats": stats, "tags": tag_rows,
        "preferences": preferences,
    }
    if explain:
        out["lineage"] = survivorship.lineage_of(attributes)
    return out


