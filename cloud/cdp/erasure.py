"""Erasing a person: faces, identifiers and personal fields go; anonymised order totals stay.

Everything happens in one transaction: the person's records and everything that names them are
deleted, their orders and order lines are re-keyed to a fresh anonymous id (so revenue by store,
channel and category still adds up, and nothing links the money back to anyone), visits keep
their count but lose the member. The gallery epoch is bumped so every process drops the faces,
and an erase command for every edge box of the person's brands is put in the outbox in the same
transaction, so a crash cannot erase the cloud copy and forget the boxes' caches.

Nothing else may name the person afterwards: quarantined raw import rows holding any of their
identifiers lose their content, sales-script outcomes lose the person id (the card id would lead
back through the visit), audit and consent rows keep what happened, when and by whom under a
pseudonym (``erased:<erasure id>``), pending sign-up verifications go. The guide screens of the
person's brands get the erase command too (they drop the person's cards). The features above the
CDP that keep rows about a person (the points ledger and coupons, marketing consent and sends, the
till's attribution) cannot be imported from here: each registers an ``ERASE_HOOKS`` entry (the
runtime does, as it registers order hooks) that clears or re-keys its own rows in the same
transaction and says what it did. The erasure's receipt
(``receipt``, ``GET /v1/erasures/{id}``) lists what was cleared and every device told, with its
acknowledgement.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from cloud.cdp import conflicts, oneid, profile, purchases, tombstones
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from cloud.errors import NotFound
from cloud.faces import learning, thumbnails
from cloud.faces.enrolled import bump_gallery_epoch
from cloud.fleet import commands
from protocol.commands import EraseCommand
from protocol.messages import new_id

_CHUNK = 500
#: The longest an edge box keeps a face in its recent-visit cache (its visitor TTL, at most 24 h).
EDGE_CACHE_HOURS = 24


@dataclass(frozen=True)
class Erasing:
    """What an erase hook is told: the person's record ids, the pseudonym rows kept as proof carry
    (``erased:<erasure id>``), and the anonymous id their money is re-keyed to (``anon-...``)."""

    records: list[str]
    pseudonym: str
    anonymous: str

    def stand_ins(self, base: str) -> list[tuple[str, str]]:
        """``(stand-in, record)`` per record, each stand-in ``base.<n>``: for rows kept under a unique
        key that includes the person (two records of one person must not collide)."""
        return [(f"{base}.{n}", record) for n, record in enumerate(self.records)]


#: Called in the erasure's transaction with what is being erased; each returns its receipt places.
ERASE_HOOKS: list[Callable[[Tx, Erasing], dict[str, int]]] = []


class UnknownErasure(NotFound):
    code = "unknown_erasure"


class UnknownMember(NotFound):
    """No live member with that id (never existed, or already erased)."""

    code = "unknown_member"


@dataclass(frozen=True)
class Erased:
    person_id: str
    records: int
    faces: int
    identifiers: int
    orders_anonymised: int
    commands: int
    erasure_id: str = ""  # the receipt: GET /v1/erasures/{erasure_id}


def _in(ids: list[str]) -> str:
    return ", ".join("?" for _ in ids)


def erase(db: Database, member_id: str, *, actor: str) -> Erased:
    with db.transaction() as tx:
        # no resolution may add a record to the person between the read of its records and the end:
        # that record would outlive the erasure holding the person's phone
        oneid.lock(tx)
        person = tx.scalar("SELECT COALESCE(merged_into, id) FROM members WHERE id = ?", (member_id,))
        if person is None:
            raise UnknownMember(f"no member {member_id}")
        records = [r[0] for r in tx.rows("SELECT id FROM members WHERE id = ? OR merged_into = ?", (person, person))]
        sent = _queue_erase(tx, records, reason="erasure", devices=("edge", "kiosk"))
        erasure_id = new_id()
        pseudonym = f"erased:{erasure_id}"  # what audit and consent rows keep instead of the person's ids
        anonymous = f"anon-{new_id()}"
        counts = {"faces": 0, "identifiers": 0, "orders": 0}
        named: set[tuple[str, str]] = set()  # every identifier, and every channel account key, of the records
        for start in range(0, len(records), _CHUNK):
            chunk = records[start:start + _CHUNK]
            named.update(tx.rows(f"SELECT kind, value FROM identifiers WHERE member_id IN ({_in(chunk)})", chunk))
            named.update((tombstones.account(source), key) for source, key in tx.rows(
                f"SELECT source, source_key FROM members WHERE id IN ({_in(chunk)}) AND source_key IS NOT NULL", chunk))
        values = {value for kind, value in named if not kind.startswith(tombstones.account(""))}
        places = {"quarantine_rows_cleared": _clear_quarantine(tx, values, erasure_id),
                  # data from before now naming them lands anonymous (cloud.cdp.tombstones)
                  "identifiers_remembered_as_erased": tombstones.remember(tx, named, iso(utcnow())),
                  "identity_conflicts_deleted": conflicts.forget(tx, records),
                  "script_outcomes_unlinked": 0, "audit_rows_pseudonymised": 0, "consent_rows_pseudonymised": 0,
                  "verifications_deleted": 0}
        erasing = Erasing(records, pseudonym, anonymous)
        for hook in ERASE_HOOKS:
            places.update(hook(tx, erasing))
        for start in range(0, len(records), _CHUNK):
            chunk = records[start:start + _CHUNK]
            marks = _in(chunk)
            counts["faces"] += tx.execute(f"DELETE FROM faces WHERE member_id IN ({marks})", chunk)
            thumbnails.delete(tx, chunk)
            learning.forget(tx, chunk)  # arrival faces held for a confirmation
            counts["identifiers"] += tx.execute(f"DELETE FROM identifiers WHERE member_id IN ({marks})", chunk)
            tx.execute(f"DELETE FROM sightings WHERE member_id IN ({marks})", chunk)
            tx.execute(f"DELETE FROM links WHERE a IN ({marks}) OR b IN ({marks})", (*chunk, *chunk))
            tx.execute(f"DELETE FROM cannot_link WHERE a IN ({marks}) OR b IN ({marks})", (*chunk, *chunk))
            tx.execute(f"DELETE FROM person_stats WHERE member_id IN ({marks})", chunk)
            tx.execute(f"DELETE FROM person_profiles WHERE member_id IN ({marks})", chunk)
            tx.execute(f"DELETE FROM person_tags WHERE member_id IN ({marks})", chunk)
            tx.execute(f"UPDATE visits SET member_id = NULL WHERE member_id IN ({marks})", chunk)
            tx.execute(f"UPDATE presence_events SET member_id = NULL WHERE member_id IN ({marks})", chunk)
            tx.execute(f"UPDATE feedback SET member_id = NULL WHERE member_id IN ({marks})", chunk)
            tx.execute(f"DELETE FROM member_doubts WHERE member_id IN ({marks})", chunk)
            tx.execute(f"UPDATE visits SET corrected_member_id = NULL WHERE corrected_member_id IN ({marks})", chunk)
            tx.execute(f"DELETE FROM match_labels WHERE member_id IN ({marks})", chunk)
            counts["orders"] += tx.execute(f"UPDATE orders SET member_id = ? WHERE member_id IN ({marks})",
                                           (anonymous, *chunk))
            tx.execute(f"UPDATE order_lines SET member_id = ? WHERE member_id IN ({marks})", (anonymous, *chunk))
            # the card a script was shown on must not lead back to the person (visits keep card ids)
            places["script_outcomes_unlinked"] += tx.execute(
                f"UPDATE script_shown SET person_id = ? WHERE person_id IN ({marks})", (pseudonym, *chunk))
            # the trail keeps what happened and who did it, not whom it was about
            places["audit_rows_pseudonymised"] += tx.execute(
                f"UPDATE audit SET person_id = ?, detail = '{{}}' WHERE person_id IN ({marks})", (pseudonym, *chunk))
            # proof that consent was given or withdrawn (when, where, by whom), under the pseudonym
            places["consent_rows_pseudonymised"] += tx.execute(
                f"UPDATE consent_log SET person_id = ?, record_id = ? WHERE person_id IN ({marks}) "
                f"OR record_id IN ({marks})", (pseudonym, pseudonym, *chunk, *chunk))
            places["verifications_deleted"] += tx.execute(
                f"DELETE FROM verifications WHERE member_id IN ({marks})", chunk)
            tx.execute(f"UPDATE members SET merged_into = NULL WHERE id IN ({marks})", chunk)
            tx.execute(f"DELETE FROM members WHERE id IN ({marks})", chunk)
        purchases.refresh(tx, [*records, anonymous])  # their lines now belong to the anonymous record
        bump_gallery_epoch(tx)
        now = iso(utcnow())
        tx.execute("INSERT INTO audit (ts, actor, action, person_id, detail) VALUES (?, ?, 'erase', ?, ?)",
                   (now, actor, pseudonym, json.dumps({"records": len(records), **counts})))
        tx.execute("INSERT INTO erasures (id, ts, actor, places, commands) VALUES (?, ?, ?, ?, ?)",
                   (erasure_id, now, actor, json.dumps({"records": len(records), "faces": counts["faces"],
                                                        "identifiers": counts["identifiers"],
                                                        "orders_anonymised": counts["orders"], **places}),
                    json.dumps([c.command_id for c in sent])))
    return Erased(person, len(records), counts["faces"], counts["identifiers"], counts["orders"], len(sent),
                  erasure_id)


def _clear_quarantine(tx: Tx, values: set[str], erasure_id: str) -> int:
    """Quarantined raw rows naming the person (by any of their identifier values, a phone also as
    written with spaces, dashes or +86) keep their reason but lose their content."""
    values = {v for v in values if len(v) >= 4}
    if not values:
        return 0
    phones = {v for v in values if v.isdigit()}
    cleared = []
    for row_id, raw in tx.rows("SELECT id, raw FROM quarantine"):
        digits = "".join(ch for ch in raw if ch.isdigit())
        if any(v in raw for v in values) or any(p in digits for p in phones):
            cleared.append((json.dumps({"erased": erasure_id}), "personal data erased", row_id))
    tx.executemany("UPDATE quarantine SET raw = ?, detail = ? WHERE id = ?", cleared)
    return len(cleared)


def receipt(db: Database, erasure_id: str) -> dict:
    """What an erasure cleared, and every device told, with its acknowledgement."""
    row = db.one("SELECT * FROM erasures WHERE id = ?", (erasure_id,))
    if row is None:
        raise UnknownErasure(f"no erasure {erasure_id}")
    ids = json.loads(row["commands"])
    now = utcnow()
    devices = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for c in db.query(f"SELECT c.*, d.role FROM commands c LEFT JOIN devices d ON d.brand = c.brand "
                          f"AND d.store = c.store AND d.device = c.device WHERE c.id IN ({_in(chunk)}) "
                          "ORDER BY c.brand, c.store, c.device", chunk):
            devices.append({"brand": c["brand"], "store": c["store"], "device": c["device"], "role": c["role"],
                            "command_id": c["id"], "state": commands.state_of(c, now), "acked_at": c["acked_at"],
                            "detail": c["ack_detail"]})
    return {"id": row["id"], "ts": row["ts"], "actor": row["actor"], "cloud": json.loads(row["places"]),
            "devices": devices, "complete": all(d["state"] == "done" for d in devices)}


def _recent_arrivals(tx: Tx, member_ids: list[str]) -> dict[tuple[str, str, str], list[str]]:
    """Per device, the person's arrivals a box may still cache (an edge keeps a face 24 h at most)."""
    since = iso(utcnow() - timedelta(hours=EDGE_CACHE_HOURS))
    found: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for start in range(0, len(member_ids), _CHUNK):
        chunk = member_ids[start:start + _CHUNK]
        for brand, store, device, event_id in tx.rows(
            f"SELECT brand, store, device, arrival_event_id FROM visits WHERE member_id IN ({_in(chunk)}) "
            "AND ts >= ? AND arrival_event_id IS NOT NULL", (*chunk, since)):
            found[(brand, store, device)].append(event_id)
    return found


def _brands(tx: Tx, member_ids: list[str]) -> set[str]:
    """The brands whose boxes may have seen the person: their home store's, and every brand they visited."""
    found: set[str] = set()
    for start in range(0, len(member_ids), _CHUNK):
        chunk = member_ids[start:start + _CHUNK]
        marks = _in(chunk)
        found.update(r[0] for r in tx.rows(
            f"SELECT s.brand FROM members m JOIN stores s ON s.id = m.home_store WHERE m.id IN ({marks}) "
            f"UNION SELECT brand FROM visits WHERE member_id IN ({marks})", (*chunk, *chunk)))
    return found


def queue_erase(tx: Tx, member_ids: list[str], *, reason: Literal["erasure", "consent_withdrawn"]) -> int:
    """``_queue_erase`` to the person's edge boxes; the number of commands."""
    return len(_queue_erase(tx, member_ids, reason=reason))


def _queue_erase(tx: Tx, member_ids: list[str], *, reason: Literal["erasure", "consent_withdrawn"],
                 devices: tuple[str, ...] = ("edge",)) -> list[EraseCommand]:
    """An erase command per edge box of the person's brands, into the outbox the command sender
    publishes (and re-sends until each box acknowledges, for as long as a box may cache a face).

    Call it before the person's visits are anonymised: it names the arrivals each box may cache.
    """
    brands = sorted(_brands(tx, member_ids))
    if not brands:
        return []  # never seen by any box, and no home store: no box or screen can hold them
    roles = list(devices)
    boxes = tx.rows(f"SELECT brand, store, device FROM devices WHERE role IN ({_in(roles)}) "
                    f"AND brand IN ({_in(brands)}) ORDER BY brand, store, device", (*roles, *brands))
    recent = _recent_arrivals(tx, member_ids)
    now = utcnow()
    made = [EraseCommand(command_id=new_id(), brand=brand, store=store, device=device, member_ids=member_ids[:1000],
                         arrival_event_ids=recent[(brand, store, device)][:10_000], reason=reason, ts=now)
            for brand, store, device in boxes]
    commands.queue(tx, made, ttl=timedelta(hours=EDGE_CACHE_HOURS))
    return made


def queue_consent_withdrawal(db: Database, person: str) -> int:
    """Face consent withdrawn: ``queue_erase`` for every record of the person, in one transaction."""
    with db.transaction() as tx:
        return queue_erase(tx, profile.records_of(db, person), reason="consent_withdrawn")
