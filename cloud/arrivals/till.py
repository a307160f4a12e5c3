"""Orders from the till and the channels' streams, landed and attributed.

``land`` writes a batch through the CDP's order stream (``cloud.cdp.imports.stream``: the same
cleaning, quarantine, OneID, profile and tags as an export file) and then attributes each landed
store order (``order_attribution``, one row per order, with its reason):

* the **member**: the buyer record the till identified (``member_via``: card, qr, phone, coupon);
* the **visit**: the person's face visit at that store whose window holds the order (from
  ``VISIT_BEFORE_S`` before to ``VISIT_AFTER_S`` after the order; the latest such visit);
* the **assistant**, in order of strength: a 成交 tap whose receipt is this order number
  (``receipt_confirmed``), the till's own salesperson field (``till_assistant``), or the last
  assistant who claimed, greeted or served the visit (``served_in_visit``);
* a refund takes its order's visit and assistant (``refund_of``), so the league counts net sales.

A 成交 tap that arrives after its order (``confirm_receipt``, called by ``feedback.record``)
upgrades that order's attribution to ``receipt_confirmed``. The assistant league and time-to-sale
read this table: a typed amount on a 成交 tap with no till order behind it stays an unconfirmed claim.

Hooks: ``ORDER_HOOKS`` are called with the database and the landed orders after every batch
(loyalty's earn-on-order may register there; a hook's failure is logged, never refuses the batch).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cloud.cdp.erasure import Erasing
from cloud.cdp.imports import stream
from cloud.clock import iso
from cloud.db import Database, Tx

log = logging.getLogger(__name__)

VISIT_BEFORE_S = 3 * 3600
VISIT_AFTER_S = 600
SERVING = ("claimed", "greeted", "served", "sold")
#: reasons that mean the till, not a typed amount, says the sale happened with that assistant
TILL_CONFIRMED = ("receipt_confirmed", "till_assistant", "served_in_visit", "refund_of")
ORDER_HOOKS: list[Callable[[Database, list[dict]], None]] = []
_LANDING = threading.Lock()
_PERSON = "COALESCE(m.merged_into, m.id)"


def land(db: Database, channel: str, rows: list, *, store: str | None = None, source: str | None = None,
         actor: str | None = None) -> dict:
    """A batch of posted orders (or one till order): the import report with ``attributed`` counts.

    Batches land one at a time per process (``_LANDING``): the importer updates the batch's member
    records in one transaction, and two batches sharing buyers deadlocked on PostgreSQL when they ran
    side by side. Across processes a deadlock is still possible; the refused batch's retry is safe
    (idempotent on the order's identity, ``canonical.order_id``)."""
    with _LANDING:
        return _land(db, channel, rows, store=store, source=source, actor=actor)


def _land(db: Database, channel: str, rows: list, *, store: str | None, source: str | None,
          actor: str | None) -> dict:
    # on PostgreSQL the import (its row, orders, OneID, tags) and the attribution are one transaction,
    # not seven: each costs a pool checkout, BEGIN and COMMIT. The hooks run after it has committed.
    with db.grouped():
        landed = stream.ingest(db, channel, rows, store=store, source=source, actor=actor)
        reasons = _attribute_landed(db, landed)
    for hook in ORDER_HOOKS:
        try:
            hook(db, landed.orders)
        except Exception:
            log.exception("order hook %s failed", getattr(hook, "__name__", hook))
    report = landed.report.as_dict()
    report["attributed"] = reasons
    return report


def _attribute_landed(db: Database, landed: stream.Landed) -> dict[str, int]:
    """Attribute the landed store orders (with their rows as posted, for the till's own fields); the
    count of each reason."""
    reasons: dict[str, int] = {}
    in_store = [o for o in landed.orders if o["store"] is not None]
    with db.transaction() as tx:
        tapped = _receipts(tx, [o for o in in_store if o["status"] == "paid"])
        nearby = _visits_near(tx, [o for o in in_store if o["member_id"] and o["status"] == "paid"])
        written: dict[str, tuple] = {}
        for order in in_store:
            reason, row = _attribute(tx, order, landed.posted[order["id"]],
                                     tapped.get((order["store"], order["order_no"])), nearby, written)
            written[order["id"]] = row
            reasons[reason] = reasons.get(reason, 0) + 1
        # the batch's own new orders: none has a row yet, so a plain bulk insert (COPY on PostgreSQL)
        tx.copy("order_attribution", ("order_id", "store", "member_id", "member_via", "visit_id", "assistant",
                                      "feedback_id", "reason", "paid", "ts", "lag_s"), list(written.values()))
    return reasons


def _member_via(raw: dict) -> str | None:
    member = raw.get("member") if isinstance(raw, dict) else None
    if not isinstance(member, dict):
        return None
    return next((k for k in ("card", "qr", "phone", "unionid", "openid", "coupon") if member.get(k)), None)


def _receipts(tx: Tx, orders: list[dict]) -> dict[tuple[str, str], dict]:
    """The 成交 taps naming these orders' numbers as receipts at their stores (one query per 500)."""
    found: dict[tuple[str, str], dict] = {}
    numbers = sorted({o["order_no"] for o in orders})
    stores = {o["store"] for o in orders}
    for test, params in tx.among(numbers):
        for row in tx.query(
            f"SELECT feedback_id, visit_id, assistant, store, receipt FROM feedback WHERE action = 'sold' "
            f"AND receipt {test} ORDER BY ts", params):
            if row["store"] in stores:
                found[(row["store"], row["receipt"])] = row  # the latest tap wins
    return found


class _Nearby:
    """The face visits at the batch's stores within the batch's visit windows, by (store, person)."""

    def __init__(self, person_of: dict[str, str], visits: dict[tuple[str, str], list[tuple[datetime, str]]]) -> None:
        self.person_of, self.visits = person_of, visits

    def visit(self, store: str, member_id: str, ts: datetime) -> tuple[str, datetime] | None:
        person = self.person_of.get(member_id)
        found = [(at, vid) for at, vid in self.visits.get((store, person or ""), ())
                 if ts - timedelta(seconds=VISIT_BEFORE_S) <= at <= ts + timedelta(seconds=VISIT_AFTER_S)]
        if not found:
            return None
        at, vid = max(found)
        return vid, at


def _visits_near(tx: Tx, orders: list[dict]) -> _Nearby:
    if not orders:
        return _Nearby({}, {})
    stores = sorted({o["store"] for o in orders})
    first = datetime.fromtimestamp(min(o["ts"] for o in orders), UTC) - timedelta(seconds=VISIT_BEFORE_S)
    last = datetime.fromtimestamp(max(o["ts"] for o in orders), UTC) + timedelta(seconds=VISIT_AFTER_S)
    visits: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for vid, store, ts, person in tx.rows(
        f"SELECT v.id, v.store, v.ts, {_PERSON} FROM visits v JOIN members m ON m.id = v.member_id "
        f"WHERE v.store IN ({', '.join('?' for _ in stores)}) AND v.ts BETWEEN ? AND ?",
        (*stores, iso(first), iso(last))):
        visits.setdefault((store, person), []).append((datetime.fromisoformat(ts), vid))
    person_of: dict[str, str] = {}
    if visits:
        for test, params in tx.among(sorted({o["member_id"] for o in orders})):
            person_of.update(tx.rows(f"SELECT m.id, {_PERSON} FROM members m WHERE m.id {test}", params))
    return _Nearby(person_of, visits)


def _attribute(tx: Tx, order: dict, raw: dict, tapped: dict | None, nearby: _Nearby,
               batch: dict[str, tuple]) -> tuple[str, tuple]:
    """The order's attribution row; ``batch`` holds the rows of the batch's earlier orders."""
    ts = datetime.fromtimestamp(order["ts"], UTC)
    visit_id = assistant = feedback_id = None
    visit_ts: datetime | None = None
    if order["status"] == "refund" and order["refund_of"]:
        same_batch = batch.get(order["refund_of"])
        original = ({"visit_id": same_batch[4], "assistant": same_batch[5], "feedback_id": same_batch[6]}
                    if same_batch else tx.one("SELECT visit_id, assistant, feedback_id FROM order_attribution "
                                              "WHERE order_id = ?", (order["refund_of"],)))
        reason = "refund_of" if original and original["assistant"] else "unattributed"
        if original:
            visit_id, assistant, feedback_id = original["visit_id"], original["assistant"], original["feedback_id"]
    else:
        if order["member_id"] and not tapped:
            hit = nearby.visit(order["store"], order["member_id"], ts)
            if hit:
                visit_id, visit_ts = hit
        till_assistant = str(raw.get("assistant") or "").strip() or None
        if tapped:
            visit_id, assistant, feedback_id = tapped["visit_id"], tapped["assistant"], tapped["feedback_id"]
            reason = "receipt_confirmed"
        elif till_assistant:
            assistant, reason = till_assistant, "till_assistant"
        elif visit_id:
            served = tx.one("SELECT assistant, feedback_id FROM feedback WHERE visit_id = ? AND assistant IS NOT NULL "
                            f"AND action IN ({', '.join('?' for _ in SERVING)}) ORDER BY ts DESC LIMIT 1",
                            (visit_id, *SERVING))
            if served:
                assistant, feedback_id, reason = served["assistant"], served["feedback_id"], "served_in_visit"
            else:
                reason = "visit_only"
        else:
            reason = "member_only" if order["member_id"] else "anonymous"
    lag = None
    if visit_id and visit_ts is None:
        text = tx.scalar("SELECT ts FROM visits WHERE id = ?", (visit_id,))
        visit_ts = datetime.fromisoformat(text) if text else None
    if visit_ts is not None:
        lag = max(0.0, (ts - visit_ts).total_seconds())
    return reason, (order["id"], order["store"], order["member_id"], _member_via(raw), visit_id, assistant,
                    feedback_id, reason, order["paid"], order["ts"], lag)


def confirm_receipt(tx: Tx, *, store: str, receipt: str, feedback_id: str, visit_id: str,
                    assistant: str | None) -> bool:
    """A 成交 tap naming a receipt the till already sent: that order (and its refunds) become the
    tapping assistant's, confirmed. False when no till order of that number is known at the store."""
    order_id = tx.scalar("SELECT o.id FROM orders o JOIN order_attribution a ON a.order_id = o.id "
                         "WHERE o.store = ? AND o.order_no = ? AND o.status = 'paid' ORDER BY o.ts DESC LIMIT 1",
                         (store, receipt))
    if order_id is None:
        return False
    visit_ts = tx.scalar("SELECT ts FROM visits WHERE id = ?", (visit_id,))
    order_ts = tx.scalar("SELECT ts FROM orders WHERE id = ?", (order_id,))
    lag = (max(0.0, order_ts - datetime.fromisoformat(visit_ts).timestamp()) if visit_ts else None)
    tx.execute("UPDATE order_attribution SET visit_id = ?, assistant = ?, feedback_id = ?, reason = "
               "'receipt_confirmed', lag_s = ? WHERE order_id = ?", (visit_id, assistant, feedback_id, lag, order_id))
    tx.execute("UPDATE order_attribution SET visit_id = ?, assistant = ?, feedback_id = ? WHERE order_id IN "
               "(SELECT id FROM orders WHERE refund_of = ?)", (visit_id, assistant, feedback_id, order_id))
    return True


def attribution(db: Database, order_id: str) -> dict | None:
    return db.one("SELECT * FROM order_attribution WHERE order_id = ?", (order_id,))


def confirmed_sales(db: Database | Tx, store: str, start_s: int, end_s: int) -> list[dict]:
    """Till orders attributed to an assistant at ``store`` over [start_s, end_s): assistant, visit,
    order, net paid (refunds included) and seconds from the visit's arrival to the sale."""
    return db.query(
        f"SELECT assistant, visit_id, order_id, paid, lag_s, reason FROM order_attribution WHERE store = ? "
        f"AND ts >= ? AND ts < ? AND assistant IS NOT NULL AND reason IN ({', '.join('?' for _ in TILL_CONFIRMED)})",
        (store, start_s, end_s, *TILL_CONFIRMED))


def forget(tx: Tx, erasing: Erasing) -> dict[str, int]:
    """Erasure (``cloud.cdp.erasure.ERASE_HOOKS``): an attributed order follows its order to the
    anonymous id, so the league and time-to-sale still count it and it names no one."""
    unlinked = sum(tx.execute("UPDATE order_attribution SET member_id = ? WHERE member_id = ?",
                              (erasing.anonymous, record)) for record in erasing.records)
    return {"till_attributions_anonymised": unlinked}
