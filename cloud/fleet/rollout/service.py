"""A rollout's life: planned -> canary -> promoted | rolled_back, each step a few queued commands.

``create`` sends the pack to the edge boxes of the canary stores (``planned``). The first box that
acknowledges the switch starts the ``canary`` phase (``started``); if every canary box refuses the
pack, the rollout ends ``rolled_back`` at once (nothing switched). Once ``observe_s`` has passed
since the start, ``evaluate`` compares the canary stores' after window with their own before window
(``baseline_s`` long, ending at the start) and with the other stores' after window
(``cloud.fleet.rollout.evaluate``) and acts: ``promote`` sends the pack to every other edge box of the
brand, ``rollback`` sends each box that got the pack the pack it ran before. Every command goes
through ``cloud.fleet.commands`` and is re-sent until acknowledged.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Literal

from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from cloud.errors import Invalid, NotFound
from cloud.fleet import commands
from cloud.fleet.rollout.evaluate import Decision, Tolerances, decide, measure
from protocol.commands import PackCommand
from protocol.facepack import NotCommercialError, PackError, get_pack, require_commercial
from protocol.facepack.manifests import ModelPack
from protocol.facepack.signing import SignedManifest, manifest_digest
from protocol.messages import new_id

log = logging.getLogger(__name__)

State = Literal["planned", "canary", "promoted", "rolled_back"]
ACTIVE = ("planned", "canary")
#: A pack command stays worth re-sending for a week: a box closed for a holiday still gets it.
PACK_COMMAND_TTL = timedelta(days=7)


class RolloutError(Invalid):
    """A rollout request that cannot be carried out; the message says why."""

    code = "invalid_rollout"


class RolloutConflict(RolloutError):
    """The rollout is not in a state that allows the step (or another one is running)."""

    status = HTTPStatus.CONFLICT
    code = "rollout_conflict"


class PackNotCommercial(RolloutError):
    """The brand is set to commercial_only and the pack's code, weights or training data forbid that use."""

    code = "pack_not_commercial"


class UnknownRollout(NotFound):
    """No rollout with that id."""

    code = "unknown_rollout"


def _row(tx: Tx | Database, rollout_id: str) -> dict:
    row = tx.one("SELECT * FROM rollouts WHERE id = ?", (rollout_id,))
    if row is None:
        raise UnknownRollout(f"no rollout {rollout_id}")
    return row


def _edge_boxes(tx: Tx, brand: str) -> list[tuple[str, str, str | None]]:
    """(store, device, pack it runs) of every known edge box of the brand; the pack from its own
    reports, else from the registry."""
    return [tuple(r) for r in tx.rows(
        "SELECT d.store, d.device, COALESCE(d.model_pack, r.model_pack) FROM devices d LEFT JOIN device_registry r "
        "ON r.brand = d.brand AND r.store = d.store AND r.device = d.device "
        "WHERE d.brand = ? AND d.role = 'edge' ORDER BY d.store, d.device", (brand,))]


def _send_pack(tx: Tx, rollout_id: str, brand: str, boxes: list[tuple[str, str, str | None]], phase: str,
               pack_id: str, manifest: str | None) -> int:
    now = utcnow()
    made = [PackCommand(command_id=new_id(), brand=brand, store=store, device=device, pack_id=pack_id,
                        manifest_sha256=manifest, rollout_id=rollout_id, ts=now) for store, device, _ in boxes]
    commands.queue(tx, made, ttl=PACK_COMMAND_TTL)
    tx.executemany("INSERT INTO rollout_devices (rollout_id, brand, store, device, phase, previous_pack, command_id) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [(rollout_id, brand, store, device, phase, previous, c.command_id)
                    for (store, device, previous), c in zip(boxes, made)])
    return len(made)


def check_pack(pack_id: str, *, commercial_only: bool = False) -> ModelPack:
    """The pack a rollout may send: known, and cleared for commercial use where the brand requires it."""
    try:
        pack = get_pack(pack_id)
    except PackError as exc:
        raise RolloutError(str(exc)) from None
    if commercial_only:
        try:
            require_commercial(pack)
        except NotCommercialError as exc:
            raise PackNotCommercial(str(exc)) from None
    return pack


def create(db: Database, *, brand: str, pack_id: str, canary_stores: list[str], actor: str,
           signed_manifest: SignedManifest | None = None, baseline_s: int = 7 * 86400, observe_s: int = 86400,
           tolerances: Tolerances = Tolerances(), commercial_only: bool = False) -> dict:
    """Start a rollout: the pack goes to every edge box of the canary stores.

    ``commercial_only`` (the brand's setting): a pack not cleared for commercial use is refused
    (``PackNotCommercial``, 422 ``pack_not_commercial``) before any box hears of it."""
    check_pack(pack_id, commercial_only=commercial_only)
    if signed_manifest is not None and signed_manifest.manifest.pack_id != pack_id:
        raise RolloutError(f"the signed manifest is for pack {signed_manifest.manifest.pack_id!r}, not {pack_id!r}")
    stores = sorted(set(canary_stores))
    rollout_id = new_id()
    with db.transaction() as tx:
        running = tx.scalar(f"SELECT id FROM rollouts WHERE brand = ? AND state IN ({', '.join('?' for _ in ACTIVE)})",
                            (brand, *ACTIVE))
        if running:
            raise RolloutConflict(f"rollout {running} of brand {brand} is still running: promote or roll it back first")
        boxes = [b for b in _edge_boxes(tx, brand) if b[0] in stores]
        missing = sorted(set(stores) - {store for store, _, _ in boxes})
        if missing:
            raise RolloutError(f"no edge box known in canary store(s) {', '.join(missing)} of brand {brand}")
        tx.execute(
            "INSERT INTO rollouts (id, brand, pack_id, manifest_sha256, signed_manifest, canary_stores, state, created, "
            "created_by, baseline_s, observe_s, min_visits, tolerances) VALUES (?, ?, ?, ?, ?, ?, 'planned', ?, ?, ?, ?, ?, ?)",
            (rollout_id, brand, pack_id, manifest_digest(signed_manifest.manifest) if signed_manifest else None,
             signed_manifest.model_dump_json() if signed_manifest else None, json.dumps(stores), iso(utcnow()), actor,
             baseline_s, observe_s, tolerances.min_visits, tolerances.model_dump_json()))
        _send_pack(tx, rollout_id, brand, boxes, "canary", pack_id,
                   manifest_digest(signed_manifest.manifest) if signed_manifest else None)
    log.info("rollout %s: pack %s to %d canary box(es) in %s", rollout_id, pack_id, len(boxes), ", ".join(stores))
    return get(db, rollout_id)


def get(db: Database, rollout_id: str) -> dict:
    row = _row(db, rollout_id)
    boxes = db.query(
        "SELECT d.store, d.device, d.phase, d.previous_pack, d.command_id, c.acked_at, c.ack_ok, c.ack_detail, "
        "c.attempts, c.expires FROM rollout_devices d LEFT JOIN commands c ON c.id = d.command_id "
        "WHERE d.rollout_id = ? ORDER BY d.phase, d.store, d.device", (rollout_id,))
    now = utcnow()
    return {**_public(row), "devices": [
        {"store": b["store"], "device": b["device"], "phase": b["phase"], "previous_pack": b["previous_pack"],
         "command_id": b["command_id"], "command_state": commands.state_of(b, now), "ack_detail": b["ack_detail"]}
        for b in boxes]}


def listing(db: Database) -> list[dict]:
    return [_public(r) for r in db.query("SELECT * FROM rollouts ORDER BY created DESC")]


def _public(row: dict) -> dict:
    return {**{k: row[k] for k in ("id", "brand", "pack_id", "manifest_sha256", "state", "created", "created_by",
                                    "started", "baseline_s", "observe_s", "decided", "decision", "reason")},
            "canary_stores": json.loads(row["canary_stores"]), "tolerances": json.loads(row["tolerances"]),
            "evaluation": json.loads(row["evaluation"]) if row["evaluation"] else None}


def _start_canary(db: Database, row: dict) -> dict:
    """planned -> canary at the first box that switched; -> rolled_back if every canary box refused."""
    acks = db.query("SELECT c.acked_at, c.ack_ok, c.ack_detail FROM rollout_devices d JOIN commands c "
                    "ON c.id = d.command_id WHERE d.rollout_id = ? AND d.phase = 'canary'", (row["id"],))
    switched = sorted(a["acked_at"] for a in acks if a["ack_ok"])
    if switched:
        db.execute("UPDATE rollouts SET state = 'canary', started = ? WHERE id = ? AND state = 'planned'",
                   (switched[0], row["id"]))
    elif acks and all(a["acked_at"] is not None for a in acks):
        _finish(db, row["id"], "rolled_back", "refused",
                f"every canary box refused the pack: {acks[0]['ack_detail']}", None)
    return db.one("SELECT * FROM rollouts WHERE id = ?", (row["id"],)) or row


def _finish(db: Database, rollout_id: str, state: State, decision: str, reason: str, evaluation: Decision | None) -> None:
    db.execute("UPDATE rollouts SET state = ?, decided = ?, decision = ?, reason = ?, "
               "evaluation = COALESCE(?, evaluation) WHERE id = ?",
               (state, iso(utcnow()), decision, reason[:2000],
                json.dumps(evaluation.as_dict()) if evaluation else None, rollout_id))


def judge(db: Database, row: dict, now: datetime) -> Decision:
    """Measure the canary stores after the start against their before window and the other stores."""
    started = datetime.fromisoformat(row["started"])
    stores = json.loads(row["canary_stores"])
    brand = row["brand"]
    after = measure(db, brand, stores, started, now)
    before = measure(db, brand, stores, started - timedelta(seconds=row["baseline_s"]), started)
    others = measure(db, brand, stores, started, now, exclude=True)
    return decide(after, before, others, Tolerances.model_validate_json(row["tolerances"]))


def evaluate(db: Database, rollout_id: str, *, force: bool = False, now: datetime | None = None) -> dict:
    """Advance the rollout if it can: start its canary phase, or (once ``observe_s`` passed, or with
    ``force``) judge it and promote or roll back. A 'wait' verdict is stored and changes nothing."""
    now = now or utcnow()
    row = _row(db, rollout_id)
    if row["state"] == "planned":
        row = _start_canary(db, row)
    if row["state"] != "canary":
        return get(db, rollout_id)
    if not force and datetime.fromisoformat(row["started"]) + timedelta(seconds=row["observe_s"]) > now:
        return get(db, rollout_id)
    decision = judge(db, row, now)
    if decision.verdict == "rollback":
        rollback(db, rollout_id, actor="evaluation", reason=decision.reason, evaluation=decision)
    elif decision.verdict == "promote":
        promote(db, rollout_id, actor="evaluation", reason=decision.reason, evaluation=decision)
    else:
        db.execute("UPDATE rollouts SET evaluation = ? WHERE id = ?", (json.dumps(decision.as_dict()), rollout_id))
    log.info("rollout %s evaluated: %s: %s", rollout_id, decision.verdict, decision.reason)
    return get(db, rollout_id)


def evaluate_due(db: Database, now: datetime | None = None) -> int:
    """The periodic pass: advance every running rollout; how many changed state."""
    changed = 0
    for row in db.query(f"SELECT id, state FROM rollouts WHERE state IN ({', '.join('?' for _ in ACTIVE)})", ACTIVE):
        changed += evaluate(db, row["id"], now=now)["state"] != row["state"]
    return changed


def promote(db: Database, rollout_id: str, *, actor: str, reason: str | None = None,
            evaluation: Decision | None = None) -> dict:
    """Send the pack to every edge box of the brand outside the canary stores."""
    with db.transaction() as tx:
        row = _row(tx, rollout_id)
        if row["state"] not in ACTIVE:
            raise RolloutConflict(f"rollout {rollout_id} is {row['state']}: only a planned or canary one can be promoted")
        canary = set(json.loads(row["canary_stores"]))
        rest = [b for b in _edge_boxes(tx, row["brand"]) if b[0] not in canary]
        sent = _send_pack(tx, rollout_id, row["brand"], rest, "promoted", row["pack_id"], row["manifest_sha256"])
        _finish(db, rollout_id, "promoted", "promote", reason or f"promoted by {actor}", evaluation)
    log.info("rollout %s promoted by %s: pack %s to %d more box(es)", rollout_id, actor, row["pack_id"], sent)
    return get(db, rollout_id)


def rollback(db: Database, rollout_id: str, *, actor: str, reason: str | None = None,
             evaluation: Decision | None = None) -> dict:
    """Send every box that was sent the pack the pack it ran before (boxes with no known previous pack are skipped)."""
    with db.transaction() as tx:
        row = _row(tx, rollout_id)
        if row["state"] == "rolled_back":
            raise RolloutConflict(f"rollout {rollout_id} is already rolled back")
        boxes = tx.rows("SELECT store, device, previous_pack FROM rollout_devices WHERE rollout_id = ? "
                        "AND phase IN ('canary', 'promoted') ORDER BY store, device", (rollout_id,))
        by_pack: dict[str, list[tuple[str, str, str | None]]] = {}
        for store, device, previous in boxes:
            if previous and previous != row["pack_id"]:
                by_pack.setdefault(previous, []).append((store, device, row["pack_id"]))
        for previous, group in by_pack.items():
            _send_pack(tx, rollout_id, row["brand"], group, "rollback", previous, None)
        skipped = sum(1 for _, _, previous in boxes if not previous)
        note = f" ({skipped} box(es) with no known previous pack kept {row['pack_id']})" if skipped else ""
        _finish(db, rollout_id, "rolled_back", "rollback", (reason or f"rolled back by {actor}") + note, evaluation)
    log.warning("rollout %s rolled back by %s: %s", rollout_id, actor, reason)
    return get(db, rollout_id)
