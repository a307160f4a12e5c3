"""The 360 profile of one person: identities, consent, stores, channels, orders, visits, tags."""

from __future__ import annotations

import json

from cloud.cdp import survivorship
from cloud.cdp.members import consent_history, face_consent
from cloud.db import Database
from cloud.loyalty import balances

_CHUNK = 500


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
    with db.transaction() as tx:
        head = tx.one("SELECT * FROM members WHERE id = ?", (person,))
        if head is None:
            raise KeyError(person)  # callers resolve the person first (person_for)
        consent, preferences = face_consent(tx, person), json.loads(head["preferences"])
        attributes = survivorship.person_attributes(tx, person)
        records = tx.query("SELECT id, source, source_key, home_store, face_consent, consent_proven, created FROM members "
                           "WHERE id = ? OR merged_into = ? ORDER BY created, id", (person, person))
        ids = [r["id"] for r in records]
        marks = _in(ids)
        identifiers = tx.query(f"SELECT kind, value, blocked FROM identifiers WHERE member_id IN ({marks}) "
                               "ORDER BY kind, value", ids)
        orders = tx.query(f"SELECT id, channel, store, ts, paid, status FROM orders WHERE member_id IN ({marks}) "
                          "ORDER BY ts DESC LIMIT ?", (*ids, recent))
        order_count, ltv = tx.rows(
            f"SELECT COUNT(*), COALESCE(SUM(paid), 0) FROM orders WHERE member_id IN ({marks})", ids)[0]
        channels = [r[0] for r in tx.rows(
            f"SELECT DISTINCT channel FROM orders WHERE member_id IN ({marks}) ORDER BY channel", ids)]
        stores = {r[0] for r in tx.rows(
            f"SELECT DISTINCT store FROM orders WHERE member_id IN ({marks}) AND store IS NOT NULL "
            f"UNION SELECT DISTINCT store FROM visits WHERE member_id IN ({marks})", (*ids, *ids))}
        stores |= {r["home_store"] for r in records if r["home_store"]}
        visits = tx.query(f"SELECT id, store, ts, confidence FROM visits WHERE member_id IN ({marks}) "
                          "ORDER BY ts DESC LIMIT ?", (*ids, recent))
        visit_count = tx.scalar(f"SELECT COUNT(*) FROM visits WHERE member_id IN ({marks})", ids)
        faces = tx.scalar(f"SELECT COUNT(*) FROM faces WHERE member_id IN ({marks})", ids)
        stats = tx.one("SELECT * FROM person_stats WHERE member_id = ?", (person,))
        tag_rows = tx.query("SELECT tag, value, source FROM person_tags WHERE member_id = ? ORDER BY tag", (person,))
    if stats:
        stats["top_categories"] = json.loads(stats["top_categories"])
    best = survivorship.values_of(attributes)
    out = {
        "id": person, "name": best["name"], "gender": best["gender"],
        "tier": best["tier"] or survivorship.DEFAULT_TIER, "birthday": best["birthday"],
        # the ledger's balance and what expires soon; else the CRM's last imported figure
        "points": balances.balance(db, person) or (None if best["points"] is None else {"balance": best["points"]}),
        "home_store": best["home_store"], "phone": best["phone"], "address": best["address"],
        "signed_up": best["signed_up"],
        "member_tags": best["tags"],
        "consent": {"face": consent, "history": consent_history(db, ids)}, "faces": faces,
        "records": records, "identifiers": identifiers, "stores": sorted(stores), "channels": channels,
        "orders": {"count": order_count, "lifetime_value": round(ltv, 2), "recent": orders},
        "visits": {"count": visit_count, "recent": visits}, "stats": stats, "tags": tag_rows,
        "preferences": preferences,
    }
    if explain:
        out["lineage"] = survivorship.lineage_of(attributes)
    return out


