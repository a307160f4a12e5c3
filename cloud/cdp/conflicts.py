"""The identity review queue: strong identifiers that disagree wait here for a person to decide.

OneID (``cloud.cdp.oneid``) never resolves a conflict by itself: when the records sharing a value
would give one person two values of a limited kind (one phone on two member cards, one member card
with two unionids), the sides stay apart, records that hold no such value stay with the side they
were with (their history does not move), and one item per contested value opens here with both
sides' evidence. A decision is audited and is stored where every later resolution and a full
rebuild honour it:

* ``merge``: the sides are one person (a review link, not bound by the per-person limits);
* ``keep_apart``: never one person (cannot-link pairs, as a split stores);
* ``assign``: the value belongs to one side; the other sides' copies of it are kept but blocked
  (``conflict:assigned``), so it links the records waiting on it to that side.

Only the persons concerned are re-resolved: no full rebuild.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

from cloud.cdp import oneid
from cloud.db import Database, Tx
from cloud.errors import Conflict, Invalid, NotFound

Decision = Literal["merge", "keep_apart", "assign"]
STATUSES = ("open", "merged", "kept_apart", "assigned", "cleared")
_DONE = {"merge": "merged", "keep_apart": "kept_apart", "assign": "assigned"}


class UnknownConflict(NotFound):
    code = "unknown_conflict"


class AlreadyDecided(Conflict):
    code = "already_decided"


class BadDecision(Invalid):
    code = "bad_decision"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _in(ids: list[str]) -> str:
    return ", ".join("?" for _ in ids)


def _records(row: dict) -> list[str]:
    sides = json.loads(row["sides"])
    return list(dict.fromkeys([m for side in sides for m in side] + list(json.loads(row["floating"]))))


def _evidence(tx: Tx, records: list[str]) -> dict[str, dict]:
    """Per record: its source, name, person now, identifiers and order history in brief."""
    if not records:
        return {}
    marks = _in(records)
    out = {r["id"]: {**r, "identifiers": [], "orders": 0, "spent": 0.0, "last_order": None}
           for r in tx.query(f"SELECT id, source, source_key, name, tier, home_store, created, "
                             f"COALESCE(merged_into, id) AS person FROM members WHERE id IN ({marks})", records)}
    for member_id, kind, value, blocked in tx.rows(
            f"SELECT member_id, kind, value, blocked FROM identifiers WHERE member_id IN ({marks}) ORDER BY kind, value",
            records):
        out[member_id]["identifiers"].append({"kind": kind, "value": value, "blocked": blocked})
    for member_id, n, spent, last in tx.rows(
            f"SELECT member_id, COUNT(*), COALESCE(SUM(paid), 0), MAX(ts) FROM orders "
            f"WHERE member_id IN ({marks}) GROUP BY member_id", records):
        out[member_id].update(orders=n, spent=round(spent, 2),
                              last_order=datetime.fromtimestamp(last, UTC).isoformat() if last else None)
    return out


def _item(tx: Tx, row: dict, *, evidence: bool) -> dict:
    item = {k: row[k] for k in ("id", "kind", "value", "reason", "status", "created", "updated", "decided_by",
                                "decided_at")}
    item["sides"] = json.loads(row["sides"])
    item["floating"] = json.loads(row["floating"])
    item["decision"] = json.loads(row["decision"]) if row["decision"] else None
    if evidence:
        item["evidence"] = _evidence(tx, _records(row))
    return item


def conflicts(db: Database, *, status: str | None = "open", limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
    """Review items (default the open ones), oldest first, each with both sides' evidence."""
    where, args = ("WHERE status = ?", [status]) if status else ("", [])
    with db.transaction() as tx:
        rows = tx.query(f"SELECT * FROM identity_conflicts {where} ORDER BY id LIMIT ? OFFSET ?", (*args, limit, offset))
        total = tx.scalar(f"SELECT COUNT(*) FROM identity_conflicts {where}", args)
        return [_item(tx, r, evidence=True) for r in rows], int(total)


def conflict(db: Database, conflict_id: int) -> dict:
    with db.transaction() as tx:
        row = tx.one("SELECT * FROM identity_conflicts WHERE id = ?", (conflict_id,))
        if row is None:
            raise UnknownConflict(f"no identity conflict {conflict_id}")
        return _item(tx, row, evidence=True)


def decide(db: Database, conflict_id: int, decision: Decision, *, actor: str, reason: str = "",
           to: str | None = None) -> tuple[dict, oneid.Resolution]:
    """Decide one open item; the persons concerned are re-resolved at once."""
    with db.transaction() as tx:
        oneid._lock(tx)
        row = tx.one("SELECT * FROM identity_conflicts WHERE id = ?", (conflict_id,))
        if row is None:
            raise UnknownConflict(f"no identity conflict {conflict_id}")
        if row["status"] != "open":
            raise AlreadyDecided(f"conflict {conflict_id} is {row['status']}")
        sides: list[list[str]] = json.loads(row["sides"])
        floating: dict[str, str | None] = json.loads(row["floating"])
        records = _records(row)
        now = _now()
        detail: dict = {"decision": decision, "reason": reason}
        if decision == "merge":
            anchor = sides[0][0] if sides else next(iter(records))
            others = [side[0] for side in sides[1:]] + [m for m, at in floating.items() if at is None]
            for other in others:
                tx.execute("DELETE FROM cannot_link WHERE (a = ? AND b = ?) OR (a = ? AND b = ?)",
                           (anchor, other, other, anchor))
                tx.execute("INSERT INTO links (a, b, kind, value, rule, priority, status, reason, created, actor) "
                           "VALUES (?, ?, 'manual', '', 'review', ?, 'active', ?, ?, ?)",
                           (anchor, other, oneid.MANUAL_PRIORITY, f"conflict {conflict_id}: {reason}".strip(), now,
                            actor))
            detail["linked"] = [anchor, *others]
        elif decision == "keep_apart":
            if len(sides) < 2:
                raise BadDecision("one side only: nothing to keep apart (assign the waiting records instead)")
            pairs = [(a[0], b[0]) for i, a in enumerate(sides) for b in sides[i + 1:]]
            tx.executemany("INSERT INTO cannot_link (a, b, created, actor) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           [(a, b, now, actor) for a, b in pairs])
            detail["apart"] = pairs
        elif decision == "assign":
            owner = next((side for side in sides if to in side), None)
            if owner is None:
                raise BadDecision(f"assign needs 'to': a record of one side ({', '.join(m for s in sides for m in s)})")
            losers = [m for side in sides if side is not owner for m in side]
            if losers:
                tx.execute(f"UPDATE identifiers SET blocked = ? WHERE kind = ? AND value = ? AND member_id IN "
                           f"({_in(losers)})", (oneid.CONFLICT_BLOCK + "assigned", row["kind"], row["value"], *losers))
            detail.update(to=to, unassigned=losers)
        else:
            raise BadDecision(f"unknown decision {decision!r}; one of merge, keep_apart, assign")
        tx.execute("UPDATE identity_conflicts SET status = ?, decided_by = ?, decided_at = ?, decision = ?, updated = ? "
                   "WHERE id = ?", (_DONE[decision], actor, now, json.dumps(detail, ensure_ascii=False), now,
                                    conflict_id))
        persons = sorted({p for m in records if (p := oneid._person(tx, m))})
        tx.execute("INSERT INTO audit (ts, actor, action, person_id, detail) VALUES (?, ?, ?, ?, ?)",
                   (now, actor, f"conflict_{decision}", persons[0] if persons else None,
                    json.dumps({"conflict": conflict_id, "kind": row["kind"], "value": row["value"], **detail},
                               ensure_ascii=False)))
        result = oneid.resolve_around(tx, records, actor=actor)
        decided = tx.one("SELECT * FROM identity_conflicts WHERE id = ?", (conflict_id,))
        assert decided is not None
        return _item(tx, decided, evidence=True), result


def of_person(db: Database, person: str) -> list[dict]:
    """The review items (any status) naming one of the person's records, newest first, without evidence."""
    with db.transaction() as tx:
        records = {r[0] for r in tx.rows("SELECT id FROM members WHERE id = ? OR merged_into = ?", (person, person))}
        found = []
        for row in tx.query("SELECT * FROM identity_conflicts ORDER BY id DESC"):
            if records & set(_records(row)):
                found.append(_item(tx, row, evidence=False))
        return found


def forget(tx: Tx, records: list[str]) -> int:
    """Erasure: the review items naming any of these records (they hold the contested value and
    the records' ids) are deleted; the number deleted."""
    erased = set(records)
    doomed = [row["id"] for row in tx.query("SELECT id, sides, floating FROM identity_conflicts")
              if erased & set(_records(row))]
    for start in range(0, len(doomed), 500):
        chunk = doomed[start:start + 500]
        tx.execute(f"DELETE FROM identity_conflicts WHERE id IN ({', '.join('?' for _ in chunk)})", chunk)
    return len(doomed)
