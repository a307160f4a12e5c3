"""The points ledger: earn, claw back, redeem, adjust, expire; every movement two entries summing to zero.

Who may spend what is decided by one statement: ``UPDATE loyalty_accounts SET balance = balance - n
WHERE id = ? AND balance >= n``. On PostgreSQL the row lock it takes makes a second till's update
wait and then re-test ``balance >= n`` against the committed balance; on SQLite every write
transaction is ``BEGIN IMMEDIATE`` (one writer at a time). Either way two tills redeeming the last
points at once get one success and one ``insufficient_points``, and the CHECK on the column would
refuse a negative balance even if a caller got this wrong. Lots (what was earned when, and when it
expires) are only touched after the account row is updated, so they change under the same lock.

Every movement is idempotent on ``(source, source_id)``: ``INSERT ... ON CONFLICT DO NOTHING``
first; a replay returns the movement already posted (and a replay with other content is a conflict).

On PostgreSQL a posting sent on its own (``earn``, ``redeem``, ``adjust``) is first tried as one
autocommitted statement (``_post_at_once``), one round trip instead of nine; whatever it cannot
decide alone goes the step-by-step way below, the only way on SQLite.

Members are persons: an account belongs to the OneID person; when records merge, the merged
record's account is folded into the person's with a ``merge`` movement at its next write.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud.clock import iso, utcnow
from cloud.db import TRANSIENT_ERRORS, Database, Tx, retrying
from cloud.db.database import POSTGRES, IntegrityError
from cloud.errors import Conflict, Invalid, NotFound
from cloud.loyalty import tiers
from cloud.loyalty.balances import NOTICE_DAYS, POOL

EXPIRY_DAYS = 365  # a lot expires a year after it was earned
CODE_TTL_S = 300  # a redemption code shown on the member's phone lives five minutes
SYSTEM = ("issued", "redeemed", "expired")
#: a movement's kind -> the system account on the other side of the member's
COUNTERPART = {"earn": "issued", "clawback": "issued", "adjust": "issued", "redeem": "redeemed",
               "expire": "expired"}


class InsufficientPoints(Conflict):
    code = "insufficient_points"


class SourceReused(Conflict):
    code = "source_reused"


class UnknownCode(NotFound):
    code = "unknown_code"


class CodeUsed(Conflict):
    code = "code_used"


@dataclass(frozen=True)
class Movement:
    id: str
    kind: str
    source: str
    source_id: str
    person: str
    points: int  # the change to the member's balance (negative for spending)
    balance: int  # the member's balance after it (now, for a replay)
    replayed: bool = False
    store: str | None = None
    channel: str | None = None
    ts: str = ""
    detail: dict | None = None


def person_of(db: Database | Tx, member_id: str) -> str | None:
    found = db.one("SELECT COALESCE(merged_into, id) AS person FROM members WHERE id = ?", (member_id,))
    return None if found is None else found["person"]


def account(tx: Tx, pool: str, kind: str, owner: str) -> int:
    """The account's id, created on first use (concurrent first uses make one)."""
    found = tx.scalar("SELECT id FROM loyalty_accounts WHERE pool = ? AND kind = ? AND owner = ?", (pool, kind, owner))
    if found is None:
        tx.execute("INSERT INTO loyalty_accounts (pool, kind, owner, balance, created) VALUES (?, ?, ?, 0, ?) "
                   "ON CONFLICT (pool, kind, owner) DO NOTHING", (pool, kind, owner, iso(utcnow())))
        found = tx.scalar("SELECT id FROM loyalty_accounts WHERE pool = ? AND kind = ? AND owner = ?",
                          (pool, kind, owner))
    return int(found)


def member_account(tx: Tx, pool: str, person: str) -> int:
    """The person's account, with the accounts of records merged into the person folded in (one
    query finds both: this is on every posting's path)."""
    found = tx.query("SELECT id, balance, owner FROM loyalty_accounts WHERE pool = ? AND kind = 'member' AND owner = ? "
                     "UNION ALL SELECT a.id, a.balance, a.owner FROM members m JOIN loyalty_accounts a ON a.owner = m.id "
                     "AND a.pool = ? AND a.kind = 'member' WHERE m.merged_into = ? AND a.balance > 0",
                     (pool, person, pool, person))
    own = next((r["id"] for r in found if r["owner"] == person), None)
    acct = own if own is not None else account(tx, pool, "member", person)
    for old in found:
        if old["owner"] == person:
            continue
        moved = tx.execute("UPDATE loyalty_accounts SET balance = 0 WHERE id = ? AND balance = ?",
                           (old["id"], old["balance"]))
        if not moved:
            continue
        mid = secrets.token_hex(12)
        _insert_movement(tx, mid, pool, "merge", "merge", f"{old['owner']}->{person}:{mid}", person,
                         old["balance"], None, None, iso(utcnow()), {"from": old["owner"]})
        tx.executemany("INSERT INTO loyalty_entries (movement_id, account_id, amount) VALUES (?, ?, ?)",
                       [(mid, old["id"], -old["balance"]), (mid, acct, old["balance"])])
        tx.execute("UPDATE loyalty_accounts SET balance = balance + ? WHERE id = ?", (old["balance"], acct))
        tx.execute("UPDATE loyalty_lots SET account_id = ? WHERE account_id = ? AND remaining > 0", (acct, old["id"]))
    return int(acct)


_MOVEMENTS = "loyalty_movements (id, pool, kind, source, source_id, person, points, store, channel, ts, ref, detail)"
#: FIFO in one statement: each open lot of every account in ``{needs}`` (a relation ``v`` of the
#: account, ``column1``, and the points it needs, ``column2``), oldest expiry first, gives what its
#: account's running sum still needs. One account (a redemption) or a batch's refunds alike.
_FIFO = ("UPDATE loyalty_lots SET remaining = loyalty_lots.remaining - t.take FROM ("
         "SELECT id, CASE WHEN running <= need THEN remaining ELSE need - (running - remaining) END AS take FROM ("
         "SELECT l.id, l.remaining, v.column2 AS need, "
         "SUM(l.remaining) OVER (PARTITION BY l.account_id ORDER BY l.expires, l.id) AS running "
         "FROM {needs} JOIN loyalty_lots l ON l.account_id = v.column1 WHERE l.remaining > 0) w "
         "WHERE running - remaining < need) t WHERE loyalty_lots.id = t.id")
#: ``_FIFO`` for one account's redemption (its account and the points it needs as parameters)
_FIFO_ONE = _FIFO.format(needs="(SELECT ? AS column1, ? AS column2) v")
_ENTRIES = ("INSERT INTO loyalty_entries (movement_id, account_id, amount) SELECT {mv}, {acct}, ? {source} UNION ALL "
            "SELECT {mv}, s.id, ? FROM {source_join} loyalty_accounts s WHERE s.pool = ? AND s.kind = ? AND s.owner = ''")


def _entries(tx: Tx, mid: str, acct: int, points: int, pool: str, system: str) -> None:
    """The movement's two entries: ``points`` on the member's account, the opposite on the pool's system account."""
    added = tx.execute(_ENTRIES.format(mv="?", acct="?", source="", source_join=""),
                       (mid, acct, points, mid, -points, pool, system))
    if added < 2:  # the pool's first movement of this kind: its system account is made now
        tx.execute("INSERT INTO loyalty_entries (movement_id, account_id, amount) VALUES (?, ?, ?)",
                   (mid, account(tx, pool, system, ""), -points))


def _insert_movement(tx: Tx, mid: str, pool: str, kind: str, source: str, source_id: str, person: str, points: int,
                     store: str | None, channel: str | None, ts: str, detail: dict, ref: str | None = None) -> bool:
    return tx.execute(
        f"INSERT INTO {_MOVEMENTS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, source_id) DO NOTHING",
        (mid, pool, kind, source, source_id, person, points, store, channel, ts, ref,
         json.dumps(detail, ensure_ascii=False)),
    ) == 1


def _replay(tx: Tx, source: str, source_id: str, kind: str, person: str, points: int | None) -> Movement:
    row = tx.one("SELECT * FROM loyalty_movements WHERE source = ? AND source_id = ?", (source, source_id))
    assert row is not None
    if row["kind"] != kind or row["person"] != person or (points is not None and row["points"] != points):
        raise SourceReused(f"{source} {source_id} was already posted with other content")
    return _movement(tx, row, replayed=True)


def _movement(tx: Tx, row: dict, *, replayed: bool = False) -> Movement:
    bal = tx.scalar("SELECT balance FROM loyalty_accounts WHERE pool = ? AND kind = 'member' AND owner = ?",
                    (row["pool"], row["person"])) or 0
    return Movement(row["id"], row["kind"], row["source"], row["source_id"], row["person"], row["points"], int(bal),
                    replayed, row["store"], row["channel"], row["ts"], json.loads(row["detail"]))


def _post(tx: Tx, *, pool: str, kind: str, source: str, source_id: str, person: str, points: int,
          store: str | None = None, channel: str | None = None, at: datetime | None = None,
          detail: dict | None = None, expires: datetime | None = None, shortfall_ok: bool = False,
          expect: int | None = None, ref: str | None = None) -> Movement:
    """Post one movement of ``points`` (signed, the member's side) with its two entries, step by step."""
    at = at or utcnow()
    mid = secrets.token_hex(12)
    detail = dict(detail or {})
    if not _insert_movement(tx, mid, pool, kind, source, source_id, person, points, store, channel, iso(at), detail,
                            ref):
        return _replay(tx, source, source_id, kind, person, expect)
    acct = member_account(tx, pool, person)
    if points < 0 and shortfall_ok:
        # a clawback takes what is there: lock the row, read it, take at most that
        tx.execute("UPDATE loyalty_accounts SET balance = balance WHERE id = ?", (acct,))
        have = int(tx.scalar("SELECT balance FROM loyalty_accounts WHERE id = ?", (acct,)))
        if have < -points:
            detail["shortfall"] = -points - have
            points = -have
            tx.execute("UPDATE loyalty_movements SET points = ?, detail = ? WHERE id = ?",
                       (points, json.dumps(detail, ensure_ascii=False), mid))
    bal: int | None
    if points < 0:
        bal = _spend(tx, acct, -points)
        if bal is None:
            raise InsufficientPoints(f"the balance is below {-points} points")
    elif points > 0:
        bal = int(tx.rows("UPDATE loyalty_accounts SET balance = balance + ? WHERE id = ? RETURNING balance",
                          (points, acct))[0][0])
        tx.execute("INSERT INTO loyalty_lots (account_id, movement_id, earned, expires, points, remaining) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (acct, mid, iso(at), iso(expires or at + timedelta(days=EXPIRY_DAYS)), points, points))
    else:
        bal = int(tx.scalar("SELECT balance FROM loyalty_accounts WHERE id = ?", (acct,)))
    if points:
        _entries(tx, mid, acct, points, pool, COUNTERPART[kind])
    return Movement(mid, kind, source, source_id, person, points, bal, False, store, channel, iso(at), detail)


#: tries of a posting's transaction when the engine undid it (a deadlock between twin tills)
POST_ATTEMPTS = 4
#: what undoes ``_post_at_once``'s one statement in a race: a twin's insert of the same source, or a deadlock
_UNDONE: tuple[type[Exception], ...] = (IntegrityError, *TRANSIENT_ERRORS)


def _posting(db: Database, *, pool: str, kind: str, source: str, source_id: str, person: str, points: int,
             store: str | None = None, channel: str | None = None, at: datetime | None = None,
             detail: dict | None = None, expect: int) -> Movement:
    """A movement posted on its own (a till, the API): first as one statement (``_post_at_once``),
    and when that posts nothing, step by step in a transaction (which also replays, folds merged
    accounts, creates accounts and refuses a short balance).

    The step-by-step path inserts the movement before it locks the account, the one statement the
    other way round, so twin tills sending one request id at once can deadlock on PostgreSQL (5 of
    20 runs of the twin-tills test raised ``DeadlockDetected`` to the till). The engine undoes the
    loser whole, so it is run again (``POST_ATTEMPTS`` in all): by then the winner has committed and
    the loser replays its movement or posts after it."""
    if points:
        moved = _post_at_once(db, pool=pool, kind=kind, source=source, source_id=source_id, person=person,
                              points=points, store=store, channel=channel, at=at or utcnow(),
                              detail=dict(detail or {}))
        if moved is not None:
            return moved
    def step_by_step() -> Movement:
        with db.transaction() as tx:
            return _post(tx, pool=pool, kind=kind, source=source, source_id=source_id, person=person, points=points,
                         store=store, channel=channel, at=at, detail=detail, expect=expect)

    return retrying(step_by_step, attempts=POST_ATTEMPTS, pause=0.02)


#: ``_post_at_once``'s one statement: constant, so built once at import, not on every posting.
_POST_AT_ONCE = (
    "WITH own AS (SELECT id, xmin AS seen, balance FROM loyalty_accounts "
    "WHERE pool = ? AND kind = 'member' AND owner = ?), "
    "sys AS (SELECT id FROM loyalty_accounts WHERE pool = ? AND kind = ? AND owner = ''), "
    # a new request on an account with nothing to fold in
    "plain AS (SELECT NOT EXISTS (SELECT 1 FROM loyalty_movements WHERE source = ? AND source_id = ?) "
    "AND NOT EXISTS (SELECT 1 FROM members m JOIN loyalty_accounts o ON o.owner = m.id AND o.pool = ? "
    "AND o.kind = 'member' WHERE m.merged_into = ? AND o.balance > 0) AS yes), "
    "bal AS (UPDATE loyalty_accounts a SET balance = a.balance + ? FROM own, plain "
    "WHERE a.id = own.id AND plain.yes AND a.balance + ? >= 0 AND (? > 0 OR a.xmin = own.seen) "
    "AND EXISTS (SELECT 1 FROM sys) RETURNING a.id, a.balance), "
    f"mv AS (INSERT INTO {_MOVEMENTS} SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ? FROM bal RETURNING id), "
    "lot AS (INSERT INTO loyalty_lots (account_id, movement_id, earned, expires, points, remaining) "
    "SELECT bal.id, mv.id, ?, ?, ?, ? FROM bal, mv WHERE ? > 0), "
    f"spent AS ({_FIFO.format(needs='(SELECT id AS column1, ? AS column2 FROM bal) v')}), "
    f"entries AS ({_ENTRIES.format(mv='mv.id', acct='bal.id', source='FROM mv, bal', source_join='mv, bal,')}) "
    "SELECT (SELECT balance FROM bal), (SELECT plain.yes AND own.balance + ? < 0 FROM own, plain)")


def _post_at_once(db: Database, *, pool: str, kind: str, source: str, source_id: str, person: str, points: int,
                  store: str | None, channel: str | None, at: datetime, detail: dict) -> Movement | None:
    """PostgreSQL: the whole posting as one autocommitted statement of data-modifying CTEs (the
    conditional balance update, the movement, the new lot or the FIFO spend, both entries): one
    round trip where step by step takes BEGIN, six statements and COMMIT. It writes all or nothing.
    A new request on an existing account with nothing to fold in whose balance, as the statement's
    snapshot saw it, is short is refused (InsufficientPoints) without a second attempt: the snapshot
    is a moment at which the balance was short. None (nothing written) when the source was already
    posted, the account or the pool's system account does not exist yet, merged records' accounts
    are still to be folded in, or (spending) another transaction changed the account after the
    statement's snapshot (the transactional path then decides, under the row lock). A
    second request with the same source racing this one makes the movement insert fail on the
    unique ``(source, source_id)`` (or deadlock with its twin on the step-by-step path, which takes
    the same two locks the other way round), which undoes the whole statement; the transactional
    path then replays it. SQLite has no data-modifying CTEs (nor round trips to save): always None there.

    The ``xmin`` test keeps FIFO right: every part of a WITH sees one snapshot, taken before the row
    lock is waited for, so the lots it reads could be stale. Every write to an account's lots also
    updates the account row in the same transaction (earn, spend, expiry, merge), so a spend only goes
    ahead if the row's ``xmin`` (the transaction that wrote its current version) is still the one the
    snapshot saw. Earning reads no lots and needs no such test."""
    if db.dialect is not POSTGRES:
        return None
    mid = secrets.token_hex(12)
    system, need = COUNTERPART[kind], max(0, -points)
    params = (pool, person, pool, system, source, source_id, pool, person, points, points, points,
              mid, pool, kind, source, source_id, person, points, store, channel, iso(at),
              json.dumps(detail, ensure_ascii=False),
              iso(at), iso(at + timedelta(days=EXPIRY_DAYS)), points, points, points,
              need, points, -points, pool, system, points)
    try:
        found = db.autocommit(_POST_AT_ONCE, params)
    except _UNDONE:  # a race undid the statement: the transactional path decides
        return None
    if found is None:
        return None
    balance, short = found[0]
    if short:
        raise InsufficientPoints(f"the balance is below {-points} points")
    if balance is None:
        return None
    return Movement(mid, kind, source, source_id, person, points, int(balance), False, store, channel, iso(at), detail)


def _spend(tx: Tx, acct: int, points: int, *, lot: int | None = None) -> int | None:
    """Take ``points`` off the balance if it holds them, then off the lots, oldest expiry first (or
    off ``lot``); the balance left, or None when it was short."""
    left_over = tx.rows("UPDATE loyalty_accounts SET balance = balance - ? WHERE id = ? AND balance >= ? "
                        "RETURNING balance", (points, acct, points))
    if not left_over:
        return None
    if lot is not None:
        tx.execute("UPDATE loyalty_lots SET remaining = remaining - ? WHERE id = ?", (points, lot))
        return int(left_over[0][0])
    # FIFO in one statement: each open lot, oldest expiry first, gives what the running sum still needs.
    # The account row is locked by the update above, so this statement's snapshot sees every lot change
    # committed before it (READ COMMITTED takes one per statement), and no other spend can interleave.
    tx.execute(_FIFO_ONE, (acct, points))
    return int(left_over[0][0])


# ---- what callers use ----------------------------------------------------------------------------


def earn(db: Database, person: str, points: int, *, source: str, source_id: str, pool: str = POOL,
         store: str | None = None, channel: str | None = None, at: datetime | None = None,
         detail: dict | None = None) -> Movement:
    if points < 0:
        raise Invalid("earned points cannot be negative", code="invalid_points")
    return _posting(db, pool=pool, kind="earn", source=source, source_id=source_id, person=person, points=points,
                    store=store, channel=channel, at=at, detail=detail, expect=points)


def redeem(db: Database, person: str, points: int, *, request_id: str, pool: str = POOL, store: str | None = None,
           channel: str | None = None, detail: dict | None = None) -> Movement:
    """Spend points at a till or on the guide screen; ``request_id`` is the till's own transaction id,
    so a retried request spends once."""
    if points <= 0:
        raise Invalid("redeem a positive number of points", code="invalid_points")
    return _posting(db, pool=pool, kind="redeem", source="redemption", source_id=request_id, person=person,
                    points=-points, store=store, channel=channel, detail=detail, expect=-points)


def adjust(db: Database, person: str, points: int, *, request_id: str, reason: str, actor: str,
           pool: str = POOL) -> Movement:
    """A correction by hand (positive: granted as a new lot; negative: taken, never below zero)."""
    if points == 0:
        raise Invalid("an adjustment changes the balance", code="invalid_points")
    return _posting(db, pool=pool, kind="adjust", source="adjustment", source_id=request_id, person=person,
                    points=points, detail={"reason": reason, "actor": actor}, expect=points)


def rate_of(rules: dict[tuple[str, str], float], channel: str, category: str | None) -> float:
    """Points per yuan: the rule for this channel and category, else the category's, else the channel's, else the pool's."""
    cat = category or "*"
    for key in ((channel, cat), ("*", cat), (channel, "*"), ("*", "*")):
        if key in rules:
            return rules[key]
    return 0.0


def tier_of(tx: Tx | Database, pool: str, person: str) -> dict:
    """The person's tier and its benefits: the one computed from 12 months of spend (``tiers``), else the member record's."""
    tier = tx.scalar("SELECT tier FROM loyalty_member_tiers WHERE pool = ? AND person = ?", (pool, person)) or tx.scalar(
        "SELECT tier FROM members WHERE id = ?", (person,))
    found = tx.one("SELECT * FROM loyalty_tiers WHERE pool = ? AND tier = ?", (pool, tier))
    return found or _tier_named({}, tier)


def order_points(tx: Tx, order: dict, pool: str, person: str) -> tuple[int, dict]:
    """What a sale earns: each line at its channel/category rate (lines scaled to what was paid), times the tier's multiplier."""
    rules = {(r["channel"], r["category"]): r["per_yuan"]
             for r in tx.query("SELECT channel, category, per_yuan FROM loyalty_rules WHERE pool = ?", (pool,))}
    lines = tx.rows("SELECT category, amount FROM order_lines WHERE order_id = ?", (order["id"],))
    return _points(rules, order, lines, tier_of(tx, pool, person))


def post_order(db: Database, order_id: str, *, pool: str = POOL) -> Movement | None:
    """A paid order earns; a refund claws back its share of what the sale earned (never below zero:
    what the member already spent is recorded as the shortfall). None: not a member's order. The
    person's tier is recomputed after it (an order over a threshold upgrades at once)."""
    moved = _post_order(db, order_id, pool)
    if moved is not None and not moved.replayed:
        tiers.recompute(db, moved.person, pool=pool)
    return moved


def _post_order(db: Database, order_id: str, pool: str) -> Movement | None:
    with db.transaction() as tx:
        order = tx.one("SELECT o.*, COALESCE(m.merged_into, m.id) AS person FROM orders o "
                       "JOIN members m ON m.id = o.member_id WHERE o.id = ?", (order_id,))
        if order is None or order["status"] not in ("paid", "refund"):
            return None
        at = datetime.fromtimestamp(int(order["ts"]), UTC)
        common = dict(pool=pool, person=order["person"], store=order["store"], channel=order["channel"], at=at)
        if order["status"] == "paid":
            points, how = order_points(tx, order, pool, order["person"])
            return _post(tx, kind="earn", source="order", source_id=order_id, points=points,
                         detail={"order": order_id, "paid": order["paid"], **how}, **common)
        original = order["refund_of"]
        earned = tx.one("SELECT points, detail FROM loyalty_movements WHERE source = 'order' AND source_id = ?",
                        (original,)) if original else None
        points = 0
        if earned and earned["points"] > 0:
            claimed = sum(_claimed(r) for r in tx.query(
                "SELECT points, detail FROM loyalty_movements WHERE kind = 'clawback' AND ref = ?", (original,)))
            points = _clawback(earned["points"], _paid(earned), order["paid"], claimed)
        return _post(tx, kind="clawback", source="refund", source_id=order_id, points=-points, shortfall_ok=True,
                     ref=original, detail={"order": original, "refund": order_id, "paid": order["paid"]}, **common)


def _paid(movement: dict) -> float:
    """What the sale a movement earned on was paid (1 when unknown, so a share is never divided by zero)."""
    return abs(float(json.loads(movement["detail"]).get("paid") or 0)) or 1.0


def _claimed(clawback: dict) -> int:
    """What a refund's clawback claimed of its sale's points: what it took and what it found short."""
    return -clawback["points"] + json.loads(clawback["detail"]).get("shortfall", 0)


def _clawback(earned: int, sale_paid: float, refund_paid: float, claimed: int) -> int:
    """A refund's clawback: the sale's points in the refund's share of what the sale paid, never more
    than the sale earned less what its earlier refunds claimed (so refunds never claim more than it earned)."""
    share = math.floor(earned * min(1.0, abs(float(refund_paid)) / sale_paid) + 1e-9)
    return max(0, min(share, earned - claimed))


def post_landed(db: Database, orders: list[dict], *, pool: str = POOL) -> None:
    """A batch of streamed or till orders just landed (``cloud.arrivals.till.ORDER_HOOKS``): the
    members' sales earn and refunds claw back now, not at the next catch-up pass, together in one
    transaction (``_post_batch``)."""
    _post_batch(db, [o["id"] for o in orders if o.get("member_id") and o.get("status") in ("paid", "refund")], pool)


#: ``loyalty_movements``' columns' types, in ``_MOVEMENTS``' order (``Tx.values``)
_MOVEMENT_TYPES = ("text", "text", "text", "text", "text", "text", "bigint", "text", "text", "text", "text", "text")


def _post_batch(db: Database, order_ids: list[str], pool: str) -> None:
    """Post ``order_ids``, sales and refunds in landing order, as ``post_order`` one by one in that
    order would: the same points, clawbacks and shortfalls, balances and tiers. One by one took about
    15 round trips and two commits an order (95 % of a batch's landing time on PostgreSQL); posting
    the sales together but a batch's refunds (1 in 50 of a stream) one by one still cost ~35
    statements and two commits a refund, and cut the sales into runs. Here a batch is about a dozen
    statements and four pipelined reads whatever its refunds (56 statements before, 200-order batches).

    - A sale after one of the same person's postings earns at the tier ``post_order``'s recompute
      would have stored by then (from the 12-month spend, which already holds the whole landed
      batch); a person's first earns at the tier stored before it.
    - A refund claws back its share of what the sale earned (in the ledger, or earned earlier in
      this batch) less what the sale's earlier refunds claimed (in the ledger or earlier in this
      batch), never more than the balance then: the refunding persons' accounts are locked and read
      first, and the batch's earlier earns and clawbacks counted in order.
    - What is already in the ledger (a catch-up pass got there first, a re-sent batch) is left
      alone: movements go in ``ON CONFLICT DO NOTHING``, and only those inserted change balances,
      lots and entries. Refunds are decided after the sales' insert, so a sale already posted is
      not counted in a balance twice.
    - The clawbacks take from their accounts' lots in one FIFO statement once the batch's new lots
      are in. A lot earned after a refund expires after the lots the refund could take from (lots
      expire a fixed time after their order), so it is not reached unless the batch's orders are out
      of time order; then which lot gives may differ, never the balance or the lots' sum."""
    order_ids = list(dict.fromkeys(order_ids))
    if not order_ids:
        return
    now = utcnow()
    with db.transaction() as tx:
        chunks = list(tx.among(order_ids))
        found = tx.reads(
            *((f"SELECT o.*, COALESCE(m.merged_into, m.id) AS person FROM orders o JOIN members m "
               f"ON m.id = o.member_id WHERE o.id {test} AND o.status IN ('paid', 'refund')", chunk)
              for test, chunk in chunks),
            *((f"SELECT order_id, category, amount FROM order_lines WHERE order_id {test}", chunk)
              for test, chunk in chunks),
            ("SELECT channel, category, per_yuan FROM loyalty_rules WHERE pool = ?", (pool,)),
            ("SELECT * FROM loyalty_tiers WHERE pool = ?", (pool,)))
        orders = {r["id"]: r for part in found[:len(chunks)] for r in part}
        if not orders:
            return
        lines: dict[str, list[tuple[str | None, float]]] = {}
        for part in found[len(chunks):2 * len(chunks)]:
            for r in part:
                lines.setdefault(r["order_id"], []).append((r["category"], r["amount"]))
        rules = {(r["channel"], r["category"]): r["per_yuan"] for r in found[-2]}
        benefits = {r["tier"]: r for r in found[-1]}
        ladder = sorted(benefits.values(), key=lambda t: t["rank"], reverse=True)  # as tiers._ladder reads it
        persons = sorted({o["person"] for o in orders.values()})
        stored, record, spend = _tiers_of(tx, pool, persons, now)
        originals = sorted({o["refund_of"] for o in orders.values() if o["status"] == "refund" and o["refund_of"]})
        earned, claimed, refunded = _sales_refunded(tx, originals)
        recomputed = {p: _tier_named(benefits, _pick_or(ladder, spend.get(p, 0.0), stored.get(p) or record.get(p)))
                      for p in persons}
        posted_before: set[str] = set()
        sales: list[tuple] = []
        for order_id in order_ids:
            order = orders.get(order_id)
            if order is None:  # not a member's order (any more), or neither a sale nor a refund
                continue
            person = order["person"]
            if order["status"] == "paid":
                tier = recomputed[person] if person in posted_before else _tier_named(
                    benefits, stored.get(person) or record.get(person))
                points, how = _points(rules, order, lines.get(order_id, []), tier)
                sales.append(_batch_row(pool, "earn", "order", order, points, None,
                                        {"order": order_id, "paid": order["paid"], **how}))
            posted_before.add(person)
        inserted = _insert_movements(tx, sales)
        gains = {r[4]: r[6] for r in sales if r[0] in inserted}
        refunds = [o for o in (orders.get(i) for i in order_ids)
                   if o is not None and o["status"] == "refund" and o["id"] not in refunded]
        acct = _member_accounts(tx, pool, sorted({r[5] for r in sales if r[0] in inserted}
                                                 | {o["person"] for o in refunds}))
        earned.update((i, (points, abs(float(orders[i]["paid"])) or 1.0)) for i, points in gains.items())
        clawbacks = _clawbacks(tx, pool, [orders[i] for i in order_ids if i in orders], refunds, acct, gains,
                               earned, claimed)
        inserted |= _insert_movements(tx, clawbacks)
        new = [r for r in (*sales, *clawbacks) if r[0] in inserted]
        _apply(tx, pool, new, acct)
        tiers.store_many(tx, pool, {p: spend.get(p, 0.0) for p in sorted({r[5] for r in new})}, stored, ladder, now)


def _batch_row(pool: str, kind: str, source: str, order: dict, points: int, ref: str | None, detail: dict) -> tuple:
    """A movement of ``_post_batch`` as a ``loyalty_movements`` row (``_MOVEMENTS``' columns)."""
    at = datetime.fromtimestamp(int(order["ts"]), UTC)
    return (secrets.token_hex(12), pool, kind, source, order["id"], order["person"], points, order["store"],
            order["channel"], iso(at), ref, json.dumps(detail, ensure_ascii=False))


def _insert_movements(tx: Tx, rows: list[tuple]) -> set[str]:
    """Insert movements (rows of ``_MOVEMENTS``' columns); the ids of those inserted (one whose
    source is already in the ledger is left alone)."""
    inserted: set[str] = set()
    for relation, params in tx.values(rows, _MOVEMENT_TYPES):
        inserted.update(r[0] for r in tx.rows(
            f"INSERT INTO {_MOVEMENTS} SELECT * FROM {relation} WHERE true "  # WHERE: SQLite's upsert after a SELECT
            "ON CONFLICT (source, source_id) DO NOTHING RETURNING id", params))
    return inserted


def _sales_refunded(tx: Tx, originals: list[str]) -> tuple[dict[str, tuple[int, float]], dict[str, int], set[str]]:
    """For the sales ``originals`` refunds refer to: what each earned in the ledger (points, what it
    paid), what its refunds in the ledger claimed, and those refunds' order ids (already posted)."""
    earned: dict[str, tuple[int, float]] = {}
    claimed: dict[str, int] = {}
    refunded: set[str] = set()
    for test, chunk in tx.among(originals):
        sales, clawbacks = tx.reads(
            (f"SELECT source_id, points, detail FROM loyalty_movements WHERE source = 'order' AND source_id {test}",
             chunk),
            (f"SELECT source_id, ref, points, detail FROM loyalty_movements WHERE kind = 'clawback' AND ref {test}",
             chunk))
        earned.update((r["source_id"], (r["points"], _paid(r))) for r in sales)
        for r in clawbacks:
            claimed[r["ref"]] = claimed.get(r["ref"], 0) + _claimed(r)
            refunded.add(r["source_id"])
    return earned, claimed, refunded


def _clawbacks(tx: Tx, pool: str, landed: list[dict], refunds: list[dict], acct: dict[str, int],
               gains: dict[str, int], earned: dict[str, tuple[int, float]], claimed: dict[str, int]) -> list[tuple]:
    """``refunds``' clawback movements, in landing order (``landed``: the batch's orders): each
    refund's share (``_clawback``) of what its sale earned less what was claimed before it, taken
    from the balance it finds (its account locked and read here, plus the batch's earlier
    ``gains`` and clawbacks), the rest recorded as its shortfall."""
    balance: dict[int, int] = {}
    for test, chunk in tx.among(sorted({acct[o["person"]] for o in refunds})):
        balance.update(tx.rows(f"UPDATE loyalty_accounts SET balance = balance WHERE id {test} RETURNING id, balance",
                               chunk))
    waiting = {o["id"] for o in refunds}
    claimed = dict(claimed)
    rows: list[tuple] = []
    for order in landed:
        account_id = acct.get(order["person"])
        if order["id"] in gains and account_id in balance:
            balance[account_id] += gains[order["id"]]
        if order["id"] not in waiting:
            continue
        original = order["refund_of"]
        sale = earned.get(original) if original else None
        points = 0
        if sale and sale[0] > 0:
            points = _clawback(sale[0], sale[1], order["paid"], claimed.get(original, 0))
            claimed[original] = claimed.get(original, 0) + points
        detail = {"order": original, "refund": order["id"], "paid": order["paid"]}
        have = balance[acct[order["person"]]]
        if have < points:
            detail["shortfall"] = points - have
            points = have
        balance[acct[order["person"]]] -= points
        rows.append(_batch_row(pool, "clawback", "refund", order, -points, original, detail))
    return rows


def _apply(tx: Tx, pool: str, movements: list[tuple], acct: dict[str, int]) -> None:
    """What newly inserted movements (earns and clawbacks) change: balances in one statement, the earns'
    lots and both sides' entries by COPY, the clawbacks' lots in one FIFO statement."""
    delta: dict[int, int] = {}
    needs: dict[int, int] = {}
    for r in movements:
        delta[acct[r[5]]] = delta.get(acct[r[5]], 0) + r[6]
        if r[6] < 0:
            needs[acct[r[5]]] = needs.get(acct[r[5]], 0) - r[6]
    for relation, params in tx.values(sorted((a, d) for a, d in delta.items() if d), ("bigint", "bigint")):
        tx.execute(f"UPDATE loyalty_accounts SET balance = loyalty_accounts.balance + v.column2 FROM {relation} "
                   "WHERE loyalty_accounts.id = v.column1", params)
    earned = [r for r in movements if r[6] > 0]
    if earned:  # plain inserts of new rows: COPY on PostgreSQL
        tx.copy("loyalty_lots", ("account_id", "movement_id", "earned", "expires", "points", "remaining"),
                [(acct[r[5]], r[0], r[9], iso(datetime.fromisoformat(r[9]) + timedelta(days=EXPIRY_DAYS)), r[6], r[6])
                 for r in earned])
    for relation, params in tx.values(sorted(needs.items()), ("bigint", "bigint")):
        tx.execute(_FIFO.format(needs=relation), params)
    moved = [r for r in movements if r[6]]
    if moved:
        issued = account(tx, pool, COUNTERPART["earn"], "")  # clawbacks' counterpart too
        tx.copy("loyalty_entries", ("movement_id", "account_id", "amount"),
                [e for r in moved for e in ((r[0], acct[r[5]], r[6]), (r[0], issued, -r[6]))])


def _member_accounts(tx: Tx, pool: str, persons: list[str]) -> dict[str, int]:
    """``member_account`` of each person: accounts found (and the missing ones made) in a few
    statements; a person with a merged record's points to fold in goes one by one."""
    found: dict[str, int] = {}
    folding: set[str] = set()
    for test, chunk in tx.among(persons):
        # from the persons' merged records (few) to their accounts: as a join, both engines began at
        # every account with points (a scan per batch, 45 ms on SQLite at 2,000 members)
        merged, accounts = tx.reads(
            (f"SELECT DISTINCT m.merged_into AS person FROM members m WHERE m.merged_into {test} AND EXISTS ("
             f"SELECT 1 FROM loyalty_accounts a WHERE a.owner = m.id AND a.pool = ? AND a.kind = 'member' "
             f"AND a.balance > 0)", (*chunk, pool)),
            (f"SELECT owner, id FROM loyalty_accounts WHERE pool = ? AND kind = 'member' AND owner {test}",
             (pool, *chunk)))
        folding.update(r["person"] for r in merged)
        found.update((r["owner"], r["id"]) for r in accounts)
    missing = [p for p in persons if p not in found and p not in folding]
    if missing:  # made now (concurrent first uses make one), as ``account`` does
        tx.executemany("INSERT INTO loyalty_accounts (pool, kind, owner, balance, created) VALUES (?, 'member', ?, 0, ?) "
                       "ON CONFLICT (pool, kind, owner) DO NOTHING", [(pool, p, iso(utcnow())) for p in missing])
        for test, chunk in tx.among(missing):
            found.update(tx.rows(f"SELECT owner, id FROM loyalty_accounts WHERE pool = ? AND kind = 'member' "
                                 f"AND owner {test}", (pool, *chunk)))
    return {p: member_account(tx, pool, p) if p in folding else int(found[p]) for p in persons}


def _tiers_of(tx: Tx, pool: str, persons: list[str], now: datetime
              ) -> tuple[dict[str, str], dict[str, str], dict[str, float]]:
    """The persons' computed tiers, their member records' tiers and their 12 months of spend (``tiers.recompute``'s)."""
    stored: dict[str, str] = {}
    record: dict[str, str] = {}
    spend: dict[str, float] = {}
    since = int((now - timedelta(days=tiers.WINDOW_DAYS)).timestamp())
    for test, chunk in tx.among(persons):
        tiered, records, spent = tx.reads(
            (f"SELECT person, tier FROM loyalty_member_tiers WHERE pool = ? AND person {test}", (pool, *chunk)),
            (f"SELECT id, tier FROM members WHERE id {test}", chunk),
            (f"SELECT COALESCE(m.merged_into, m.id) AS person, SUM(o.paid) AS spend FROM orders o JOIN members m "
             f"ON m.id = o.member_id WHERE o.status IN ('paid', 'refund') AND o.ts >= ? AND (m.id {test} "
             f"OR m.merged_into {test}) GROUP BY COALESCE(m.merged_into, m.id)", (since, *chunk, *chunk)))
        stored.update((r["person"], r["tier"]) for r in tiered)
        record.update((r["id"], r["tier"]) for r in records)
        spend.update((r["person"], float(r["spend"] or 0)) for r in spent)
    return stored, record, spend


def _pick_or(ladder: list[dict], spend: float, fallback: str | None) -> str | None:
    picked = tiers._pick(ladder, spend)
    return fallback if picked is None else picked


def _tier_named(benefits: dict[str, dict], tier: str | None) -> dict:
    return benefits.get(tier or "") or {"tier": tier, "rank": 0, "multiplier": 1.0, "discount": 1.0, "min_spend": 0.0}


def _points(rules: dict[tuple[str, str], float], order: dict, lines: list[tuple[str | None, float]],
            tier: dict) -> tuple[int, dict]:
    paid = abs(float(order["paid"]))
    total = sum(abs(a) for _, a in lines)
    if not lines or total <= 0:
        lines, total = [(None, paid)], paid
    base = sum(abs(a) * paid / total * rate_of(rules, order["channel"], c) for c, a in lines)
    return math.floor(base * tier["multiplier"] + 1e-9), {"base": round(base, 2), "tier": tier["tier"],
                                                         "multiplier": tier["multiplier"]}


def post_new_orders(db: Database, *, limit: int = 1000, now: datetime | None = None, pool: str = POOL) -> int:
    """Post members' orders and refunds not yet in the ledger (those older than the expiry period
    would only expire at once and are left out); the number posted."""
    since = int(((now or utcnow()) - timedelta(days=EXPIRY_DAYS)).timestamp())
    ids = [r[0] for r in db.rows(
        "SELECT o.id FROM orders o JOIN members p ON p.id = o.member_id "
        "LEFT JOIN loyalty_movements m ON m.source_id = o.id AND m.source IN ('order', 'refund') "
        "WHERE o.status IN ('paid', 'refund') AND o.ts >= ? AND m.id IS NULL "
        "ORDER BY o.ts, o.id LIMIT ?", (since, limit))]
    for order_id in ids:
        post_order(db, order_id, pool=pool)
    return len(ids)


def expire(db: Database, *, now: datetime | None = None, limit: int = 1000) -> int:
    """Lots past their expiry lose what remains of them (one movement per lot); the number expired."""
    now = now or utcnow()
    lots = db.query("SELECT l.id, a.pool, a.owner FROM loyalty_lots l JOIN loyalty_accounts a ON a.id = l.account_id "
                    "WHERE l.remaining > 0 AND l.expires <= ? ORDER BY l.expires, l.id LIMIT ?", (iso(now), limit))
    done = 0
    for lot in lots:
        with db.transaction() as tx:
            acct = member_account(tx, lot["pool"], lot["owner"])
            tx.execute("UPDATE loyalty_accounts SET balance = balance WHERE id = ?", (acct,))  # the row lock first
            row = tx.one("SELECT remaining, expires, account_id FROM loyalty_lots WHERE id = ?", (lot["id"],))
            if not row or row["remaining"] <= 0 or row["account_id"] != acct:
                continue
            mid = secrets.token_hex(12)
            if not _insert_movement(tx, mid, lot["pool"], "expire", "expiry", f"lot:{lot['id']}", lot["owner"],
                                    -row["remaining"], None, None, iso(now), {"lot": lot["id"], "expires": row["expires"]}):
                continue
            if _spend(tx, acct, row["remaining"], lot=lot["id"]) is None:
                raise RuntimeError(f"lot {lot['id']} holds more than its account")  # the CHECK would refuse it too
            _entries(tx, mid, acct, -row["remaining"], lot["pool"], "expired")
            done += 1
    return done


def notify_expiring(db: Database, *, now: datetime | None = None, days: int = NOTICE_DAYS, limit: int = 5000) -> list[dict]:
    """Lots expiring within ``days`` whose member has not been told yet: one notice per lot, recorded
    (channels read ``loyalty_notices``), returned."""
    now = now or utcnow()
    due = db.query("SELECT l.id, a.owner, l.remaining, l.expires FROM loyalty_lots l "
                   "JOIN loyalty_accounts a ON a.id = l.account_id LEFT JOIN loyalty_notices n ON n.lot_id = l.id "
                   "WHERE l.remaining > 0 AND l.expires > ? AND l.expires <= ? AND n.lot_id IS NULL "
                   "ORDER BY l.expires LIMIT ?", (iso(now), iso(now + timedelta(days=days)), limit))
    with db.transaction() as tx:
        for lot in due:
            tx.execute("INSERT INTO loyalty_notices (lot_id, person, points, expires, noticed) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (lot_id) DO NOTHING", (lot["id"], lot["owner"], lot["remaining"], lot["expires"],
                                                           iso(now)))
    return [{"lot": r["id"], "person": r["owner"], "points": r["remaining"], "expires": r["expires"]} for r in due]


def history(db: Database, person: str, *, pool: str = POOL, limit: int = 50, offset: int = 0) -> list[dict]:
    rows = db.query("SELECT id, kind, source, source_id, points, store, channel, ts, detail FROM loyalty_movements "
                    "WHERE person = ? AND pool = ? ORDER BY ts DESC, id LIMIT ? OFFSET ?", (person, pool, limit, offset))
    for r in rows:
        r["detail"] = json.loads(r["detail"])
    return rows


# ---- redemption codes: the member's phone shows one, the till or the guide screen takes it ---------


def issue_code(db: Database, person: str, points: int, *, pool: str = POOL, ttl_s: int = CODE_TTL_S,
               now: datetime | None = None) -> dict:
    if points <= 0:
        raise Invalid("a code redeems a positive number of points", code="invalid_points")
    now = now or utcnow()
    code = "".join(secrets.choice("0123456789") for _ in range(12))  # 10^12: not guessable within its minutes
    expires = now + timedelta(seconds=ttl_s)
    db.execute("INSERT INTO loyalty_codes (code, pool, person, points, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
               (code, pool, person, points, iso(now), iso(expires)))
    return {"code": code, "points": points, "expires": iso(expires)}


def redeem_code(db: Database, code: str, *, store: str | None, channel: str, now: datetime | None = None) -> Movement:
    """Redeem the points a code stands for, once; the code itself is the request id. Asked again from
    the same store and channel (a till's retry), the answer is the same spending (``replayed``); from
    another store or channel it is ``CodeUsed``: two tills shown one code at once honour it at one,
    not both (each would otherwise give the discount while the points are spent once)."""
    now = now or utcnow()
    with db.transaction() as tx:
        found = tx.one("SELECT * FROM loyalty_codes WHERE code = ?", (code,))
        if found is None or found["expires"] <= iso(now) and found["movement_id"] is None:
            raise UnknownCode("no such redemption code, or it expired")
        moved = _post(tx, pool=found["pool"], kind="redeem", source="redemption", source_id=f"code:{code}",
                      person=found["person"], points=-found["points"], store=store, channel=channel,
                      detail={"code": code[:4] + "…"}, expect=-found["points"], ref=f"code:{code[:4]}…")
        if not tx.execute("UPDATE loyalty_codes SET movement_id = ? WHERE code = ? AND movement_id IS NULL",
                          (moved.id, code)) and not moved.replayed:
            raise CodeUsed("this code was already redeemed")
        if moved.replayed and (moved.store, moved.channel) != (store, channel):
            raise CodeUsed(f"this code was already redeemed ({moved.channel} at {moved.store or 'no store'})")
        return moved


def check(db: Database) -> dict[str, Any]:
    """The ledger's invariants: no negative member balance, every movement's entries sum to zero,
    every member balance equals the sum of its entries, lots hold exactly the balance."""
    with db.transaction() as tx:
        negative = tx.scalar("SELECT COUNT(*) FROM loyalty_accounts WHERE kind = 'member' AND balance < 0")
        unbalanced = tx.scalar("SELECT COUNT(*) FROM (SELECT movement_id FROM loyalty_entries GROUP BY movement_id "
                               "HAVING SUM(amount) <> 0) x")
        mismatch = tx.scalar(
            "SELECT COUNT(*) FROM loyalty_accounts a LEFT JOIN (SELECT account_id, SUM(amount) AS s FROM loyalty_entries "
            "GROUP BY account_id) e ON e.account_id = a.id WHERE a.kind = 'member' AND a.balance <> COALESCE(e.s, 0)")
        lots = tx.scalar(
            "SELECT COUNT(*) FROM loyalty_accounts a LEFT JOIN (SELECT account_id, SUM(remaining) AS s FROM loyalty_lots "
            "GROUP BY account_id) l ON l.account_id = a.id WHERE a.kind = 'member' AND a.balance <> COALESCE(l.s, 0)")
        total = tx.scalar("SELECT COALESCE(SUM(amount), 0) FROM loyalty_entries")
    return {"negative_balances": int(negative), "unbalanced_movements": int(unbalanced),
            "ledger_mismatch": int(mismatch), "lots_mismatch": int(lots), "entries_sum": int(total)}
