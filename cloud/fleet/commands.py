"""Commands to edge boxes (erase, pack) and guide screens (erase, enrol): queued as rows, published, re-sent until acknowledged.

Commands are rows first and messages second: the transaction that erases a person (or starts a
rollout) also queues its commands, and ``flush`` publishes whatever is due (QoS 1). A box's MQTT
session is clean, so a command published while it is offline is lost; therefore a command is
re-sent with doubling back-off (``retry_s``, 2x, ... up to ``max_retry_s``) until the box's
``CommandAck`` arrives (``record_ack``, called by the ingest worker) or the command expires. A
row is claimed by bumping its attempt counter (compare-and-set), so two cloud processes never
send the same attempt twice. The box treats a repeated command id idempotently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import paho.mqtt.client as mqtt

from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from protocol import topics, transport
from protocol.commands import CommandAck, EnrolCommand, EraseCommand, PackCommand

log = logging.getLogger(__name__)

Command = EraseCommand | PackCommand | EnrolCommand
_MODELS: dict[str, type[Command]] = {"erase": EraseCommand, "pack": PackCommand, "enrol": EnrolCommand}
CommandState = Literal["pending", "sent", "done", "refused", "expired"]
AckOutcome = Literal["recorded", "duplicate", "unknown_command"]


def queue(tx: Tx, commands: Sequence[Command], *, ttl: timedelta) -> None:
    """Put commands in the outbox; each stops being re-sent ``ttl`` after now. A new pack command
    supersedes any unanswered older one for the same box, which must never be re-sent after it."""
    now = utcnow()
    for command in commands:
        if command.type == "pack":
            tx.execute("UPDATE commands SET expires = ?, ack_detail = ? WHERE brand = ? AND store = ? AND device = ? "
                       "AND name = 'pack' AND acked_at IS NULL AND (expires IS NULL OR expires > ?)",
                       (iso(now), f"superseded by {command.command_id}", command.brand, command.store, command.device,
                        iso(now)))
    tx.copy("commands", ("id", "brand", "store", "device", "name", "payload", "created", "expires"),
            [(c.command_id, c.brand, c.store, c.device, c.type, c.model_dump_json(), iso(now), iso(now + ttl))
             for c in commands])


def record_ack(db: Database, ack: CommandAck) -> AckOutcome:
    """Mark the command answered, if this box was sent it and has not answered before."""
    with db.transaction() as tx:
        row = tx.one("SELECT acked_at FROM commands WHERE id = ? AND brand = ? AND store = ? AND device = ? AND name = ?",
                     (ack.command_id, ack.brand, ack.store, ack.device, ack.name))
        if row is None:
            return "unknown_command"
        if row["acked_at"] is not None:
            return "duplicate"
        tx.execute("UPDATE commands SET acked_at = ?, ack_ok = ?, ack_detail = ? WHERE id = ?",
                   (iso(ack.ts), ack.ok, ack.detail, ack.command_id))
    return "recorded"


def state_of(row: dict, now: datetime) -> CommandState:
    if row["acked_at"] is not None:
        return "done" if row["ack_ok"] else "refused"
    if row["expires"] is not None and row["expires"] <= iso(now):
        return "expired"
    return "sent" if row["attempts"] else "pending"


def of_device(db: Database, brand: str | None, store: str, device: str, *, limit: int = 100) -> list[dict]:
    """The device's latest commands, newest first, each with its state."""
    where, args = ("AND brand = ?", (brand,)) if brand else ("", ())
    rows = db.query(f"SELECT * FROM commands WHERE store = ? AND device = ? {where} ORDER BY created DESC, id LIMIT ?",
                    (store, device, *args, limit))
    now = utcnow()
    return [{**r, "state": state_of(r, now), "ack_ok": None if r["ack_ok"] is None else bool(r["ack_ok"])} for r in rows]


class CommandSender:
    """Publishes due commands on the cloud process's one MQTT connection (``client``, connected and
    disconnected by its owner, the ingest worker); safe to call from any thread but paho's own."""

    def __init__(self, db: Database, client: mqtt.Client, *, retry_s: float = 10.0, max_retry_s: float = 600.0) -> None:
        self._db = db
        self._client = client
        self._lock = threading.Lock()
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s

    def _backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.max_retry_s, self.retry_s * 2 ** min(attempts, 30)))

    def flush(self, *, timeout: float = 5.0) -> int:
        """Publish every command that is due (never sent, or its back-off elapsed without an ack); the number sent."""
        sent = 0
        now = utcnow()
        with self._lock:
            due = self._db.query(
                "SELECT * FROM commands WHERE acked_at IS NULL AND (expires IS NULL OR expires > ?) "
                "AND (next_attempt IS NULL OR next_attempt <= ?) ORDER BY created, id", (iso(now), iso(now)))
            for row in due:
                claimed = self._db.execute(
                    "UPDATE commands SET attempts = attempts + 1, sent_at = ?, next_attempt = ? WHERE id = ? AND attempts = ?",
                    (iso(now), iso(now + self._backoff(row["attempts"])), row["id"], row["attempts"]))
                if not claimed:
                    continue
                message = _MODELS[row["name"]].model_validate_json(row["payload"])
                topic = topics.device_command(row["brand"], row["store"], row["device"], row["name"])
                failure = transport.publish_confirmed(self._client, topic, message, timeout=timeout)
                if failure is not None:
                    log.warning("command %s not sent: %s", row["id"], failure)
                    self._db.execute("UPDATE commands SET next_attempt = NULL WHERE id = ?", (row["id"],))
                    continue
                if row["attempts"]:
                    log.info("command %s %s to %s/%s re-sent (attempt %d), no ack yet", row["name"], row["id"],
                             row["store"], row["device"], row["attempts"] + 1)
                sent += 1
        return sent
