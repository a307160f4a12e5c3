"""Lifecycle journeys (营销自动化): a trigger enters a person, steps move them along, exits take them out.

Triggers (``TRIGGERS``) and their parameters:

* ``first_purchase`` (``days``, 7): the person's first paid order (none for a person whose stated tier says they
  bought before, ``survivorship.bought_before``); the entry is due ``days`` after it.
  Entered as the order lands (``on_orders``, one of ``cloud.arrivals.till.ORDER_HOOKS``) and by the
  daily sweep (orders that came in by file);
* ``repurchase_due``: the person's own repurchase cycle (``person_stats.cycle_days``, the median days
  between their orders) has passed since their last order;
* ``dormant`` (``days``, 90): no order for ``days``; one journey per dormancy path (90, 180, 365);
* ``birthday_month``: the birthday falls in this month (in the brand's time zone), once a year;
* ``points_expiring`` (``days``, 30): points of a lot expire within ``days`` (loyalty's lots);
* ``visit_no_purchase``: a face visit to a store with no order in the 24 h after it;
* ``vip_arrival`` (``value_tiers``, ["high"]; ``within_minutes``, 10): a VIP walks in now; the step
  is usually a WeCom message to the member's own guide (专属导购), who is told at once.

The daily triggers run once per day per journey and look back ``catch_up_days`` (7) so a missed day
is not lost; the visit triggers run on every tick (the scheduler's ``journeys`` job). What the
trigger counts from (the first order, the last order a cycle or dormancy counts from, the year, the
lot's expiry, the visit) is the entry's *occurrence*: a person enters once per occurrence.

Steps run in order from the entry's due time: ``send`` (a channel and an approved template: a row
in ``marketing_sends`` of the step's campaign, so consent, suppression, quiet hours, the weekly cap
and the crash-safe sender apply exactly as to a campaign; on the ``coupon`` channel it issues one of
loyalty's e-coupons, attributed to the step), ``wait_hours``, and ``branch`` on the response
(``reached``: the last send went out; ``delivered``: its receipt came back; ``purchased``: an order
since the entry) to the ``yes`` or ``no`` step. A branch waits while its send is still queued. Exit conditions
(``exit_on``: ``purchase``, ``visit``) end an entry as soon as the person buys or walks in, both as
orders land and before every step.

Holdout: a deterministic share of entries (by a hash of the journey's salt and the person) is the
control group: recorded, never messaged. ``results`` compares both groups' orders within
``window_days`` of each entry's due time: conversion, revenue per head, the uplift with a 95% CI.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud.activation import campaigns, guide_task
from cloud.cdp import survivorship
from cloud.clock import DEFAULT_TZ, iso, utcnow, zone
from cloud.db import Database, Tx
from cloud.errors import Conflict, Invalid, NotFound
from cloud.loyalty import coupons

TRIGGERS = ("first_purchase", "repurchase_due", "dormant", "birthday_month", "points_expiring",
            "visit_no_purchase", "vip_arrival")
#: evaluated on every tick (visits are events); the others once a day
EVENT_TRIGGERS = ("visit_no_purchase", "vip_arrival")
_PERSON = "COALESCE(m.merged_into, m.id)"
_PAID = "o.paid > 0 AND o.refund_of IS NULL"
_CHUNK = 500
#: a branch whose send is still queued looks again this much later
_RECHECK = timedelta(minutes=10)


class UnknownJourney(NotFound):
    code = "unknown_journey"


class JourneyState(Conflict):
    code = "journey_state"


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SendStep(_Step):
    send: Literal["sms", "wechat", "wecom", "email", "coupon", "guide_task"]
    template_id: str = Field(min_length=1, max_length=64)


class WaitStep(_Step):
    wait_hours: float = Field(gt=0, le=24 * 365)


class BranchStep(_Step):
    branch: Literal["reached", "delivered", "purchased"]
    yes: int = Field(ge=0, le=50, description="the step to go to when it holds (the number of steps: the end)")
    no: int = Field(ge=0, le=50)


Step = SendStep | WaitStep | BranchStep


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int | None = Field(None, ge=1, le=3650)
    catch_up_days: int = Field(7, ge=1, le=60)
    value_tiers: list[str] = Field(default_factory=lambda: ["high"], max_length=5)
    within_minutes: int = Field(10, ge=1, le=240)


class JourneySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    trigger: Literal[TRIGGERS]  # type: ignore[valid-type]
    params: Params = Field(default_factory=Params)
    steps: Annotated[list[Step], Field(min_length=1, max_length=20)]
    exit_on: list[Literal["purchase", "visit"]] = Field(default_factory=list)
    holdout_pct: float = Field(10.0, ge=0, lt=100)
    window_days: int = Field(14, ge=1, le=365)
    quiet_start: int = Field(21, ge=0, le=23)
    quiet_end: int = Field(9, ge=0, le=23)
    weekly_cap: int = Field(2, ge=1, le=50)


_DEFAULT_DAYS = {"first_purchase": 7, "dormant": 90, "points_expiring": 30}


def _step_campaign(journey_id: str, index: int) -> str:
    return f"{journey_id}-{index}"


def create(db: Database, spec: JourneySpec, *, actor: str) -> dict:
    """A draft journey; each send step becomes a draft campaign of the journey (same checks, same sender)."""
    steps = spec.steps
    for i, step in enumerate(steps):
        if isinstance(step, BranchStep) and (step.yes > len(steps) or step.no > len(steps)):
            raise Invalid(f"step {i}: a branch goes to a step 0-{len(steps)} ({len(steps)}: the end)",
                          code="invalid_journey")
        if isinstance(step, SendStep) and campaigns.template(db, step.template_id)["channel"] != step.send:
            raise Invalid(f"step {i}: template {step.template_id} is not for {step.send}", code="template_channel")
    journey_id = uuid.uuid4().hex[:12]
    params = spec.params.model_dump()
    params["days"] = params["days"] or _DEFAULT_DAYS.get(spec.trigger)
    now = utcnow()
    with db.transaction() as tx:
        tx.execute("INSERT INTO journeys (id, name, trigger, params, steps, exit_on, holdout_pct, window_days, status, "
                   "salt, created, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?)",
                   (journey_id, spec.name, spec.trigger, json.dumps(params),
                    json.dumps([s.model_dump() for s in steps], ensure_ascii=False), json.dumps(spec.exit_on),
                    spec.holdout_pct, spec.window_days, secrets.token_hex(8), iso(now), actor))
        for i, step in enumerate(steps):
            if isinstance(step, SendStep):
                campaigns.insert(tx, _step_campaign(journey_id, i), name=spec.name,
                                 segment_id=f"journey:{journey_id}", channel=step.send, template_id=step.template_id,
                                 holdout_pct=0, window_days=spec.window_days, start_at=now,
                                 quiet_start=spec.quiet_start, quiet_end=spec.quiet_end, weekly_cap=spec.weekly_cap,
                                 actor=actor, journey_id=journey_id)
    return get(db, journey_id)


def _row(db: Database | Tx, journey_id: str) -> dict:
    row = db.one("SELECT * FROM journeys WHERE id = ?", (journey_id,))
    if row is None:
        raise UnknownJourney(f"no journey {journey_id}")
    return {**row, "params": json.loads(row["params"]), "steps": json.loads(row["steps"]),
            "exit_on": json.loads(row["exit_on"])}


def get(db: Database, journey_id: str) -> dict:
    row = _row(db, journey_id)
    entries: dict[str, dict[str, int]] = defaultdict(dict)
    for grp, status, n in db.rows("SELECT grp, status, COUNT(*) FROM journey_entries WHERE journey_id = ? "
                                  "GROUP BY grp, status", (journey_id,)):
        entries[grp][status] = int(n)
    sends: dict[str, dict[str, int]] = defaultdict(dict)
    for cid, status, n in db.rows("SELECT s.campaign_id, s.status, COUNT(*) FROM marketing_sends s JOIN campaigns c "
                                  "ON c.id = s.campaign_id WHERE c.journey_id = ? GROUP BY s.campaign_id, s.status",
                                  (journey_id,)):
        sends[cid][status] = int(n)
    steps = [{**s, "sends": sends.get(_step_campaign(journey_id, i), {})} if "send" in s else s
             for i, s in enumerate(row["steps"])]
    return {**{k: v for k, v in row.items() if k not in ("salt", "steps")}, "steps": steps, "entries": dict(entries)}


def listing(db: Database) -> list[dict]:
    return db.query("SELECT id, name, trigger, status, created FROM journeys ORDER BY created DESC")


def launch(db: Database, journey_id: str, *, now: datetime | None = None) -> dict:
    """Start (or resume) a journey: its triggers are evaluated from the next tick."""
    journey = _row(db, journey_id)
    if journey["status"] == "running":
        raise JourneyState(f"journey {journey_id} is running")
    for step in journey["steps"]:
        if "send" in step and not campaigns.template(db, step["template_id"])["approved"]:
            raise JourneyState(f"template {step['template_id']} is not approved", code="template_not_approved")
    ts = iso(now or utcnow())
    with db.transaction() as tx:
        tx.execute("UPDATE journeys SET status = 'running', launched_at = COALESCE(launched_at, ?) WHERE id = ?",
                   (ts, journey_id))
        tx.execute("UPDATE campaigns SET status = 'running', launched_at = COALESCE(launched_at, ?) "
                   "WHERE journey_id = ?", (ts, journey_id))
    return get(db, journey_id)


def pause(db: Database, journey_id: str) -> dict:
    """Nobody enters, no step runs and queued sends wait until the journey is launched again."""
    if _row(db, journey_id)["status"] != "running":
        raise JourneyState(f"journey {journey_id} is not running")
    with db.transaction() as tx:
        tx.execute("UPDATE journeys SET status = 'paused' WHERE id = ?", (journey_id,))
        tx.execute("UPDATE campaigns SET status = 'paused' WHERE journey_id = ?", (journey_id,))
    return get(db, journey_id)


def group(salt: str, person: str, holdout_pct: float) -> str:
    """The person's group in a journey: the same every time they enter it."""
    h = int.from_bytes(hashlib.sha256(f"{salt}:{person}".encode()).digest()[:8], "big")
    return "control" if h % 10000 < holdout_pct * 100 else "treatment"


# -- triggers: each returns (person, occurrence, due) for the persons it enters ------------------------

Candidate = tuple[str, str, datetime]


def _epoch(ts: datetime) -> int:
    return int(ts.timestamp())


def _from_epoch(seconds: int, like: datetime) -> datetime:
    return datetime.fromtimestamp(int(seconds), like.tzinfo)


def _in(persons: Sequence[str] | None, column: str) -> tuple[str, list[str]]:
    if persons is None:
        return "", []
    return f" AND {column} IN ({', '.join('?' for _ in persons)})", list(persons)


def _first_purchase(tx: Tx, p: dict, now: datetime, persons: Sequence[str] | None = None) -> list[Candidate]:
    days = timedelta(days=p["days"])
    extra, args = _in(persons, _PERSON)
    rows = tx.rows(f"SELECT {_PERSON}, MIN(o.ts) FROM orders o JOIN members m ON m.id = o.member_id WHERE {_PAID}"
                   f"{extra} GROUP BY {_PERSON} HAVING MIN(o.ts) > ? AND MIN(o.ts) <= ?",
                   (*args, _epoch(now - days - timedelta(days=p["catch_up_days"])), _epoch(now)))
    # a CRM 金卡会员's first order in the CDP is not their first purchase: their tier says they bought
    earlier = survivorship.bought_before(tx, [person for person, _ in rows])
    return [(person, "first", _from_epoch(first, now) + days) for person, first in rows if person not in earlier]


def _last_orders(tx: Tx, low: int, high: int) -> list[tuple[str, int]]:
    return [(str(a), int(b)) for a, b in tx.rows(
        f"SELECT {_PERSON}, MAX(o.ts) FROM orders o JOIN members m ON m.id = o.member_id WHERE {_PAID} "
        f"GROUP BY {_PERSON} HAVING MAX(o.ts) > ? AND MAX(o.ts) <= ?", (low, high))]


def _dormant(tx: Tx, p: dict, now: datetime) -> list[Candidate]:
    since = now - timedelta(days=p["days"])
    last = _last_orders(tx, _epoch(since - timedelta(days=p["catch_up_days"])), _epoch(since))
    return [(person, f"{p['days']}d:{ts}", now) for person, ts in last]


def _repurchase_due(tx: Tx, p: dict, now: datetime) -> list[Candidate]:
    cycles = {str(a): float(b) for a, b in tx.rows("SELECT member_id, cycle_days FROM person_stats "
                                                   "WHERE cycle_days IS NOT NULL AND cycle_days > 0")}
    if not cycles:
        return []
    low = _epoch(now - timedelta(days=max(cycles.values()) + p["catch_up_days"]))
    out = []
    for person, ts in _last_orders(tx, low, _epoch(now)):
        cycle = cycles.get(person)
        due = ts + (cycle or 0) * 86400
        if cycle and _epoch(now) - p["catch_up_days"] * 86400 < due <= _epoch(now):
            out.append((person, f"after:{ts}", now))
    return out


def _birthday_month(tx: Tx, p: dict, now: datetime) -> list[Candidate]:
    local = now.astimezone(zone(DEFAULT_TZ))
    rows = tx.rows("SELECT id FROM members WHERE merged_into IS NULL AND birthday IS NOT NULL "
                   "AND substr(birthday, 6, 2) = ?", (f"{local.month:02d}",))
    return [(str(r[0]), f"{local.year}", now) for r in rows]


def _points_expiring(tx: Tx, p: dict, now: datetime) -> list[Candidate]:
    rows = tx.rows("SELECT a.owner, MIN(l.expires) FROM loyalty_lots l JOIN loyalty_accounts a ON a.id = l.account_id "
                   "WHERE a.kind = 'member' AND l.remaining > 0 AND l.expires > ? AND l.expires <= ? GROUP BY a.owner",
                   (iso(now), iso(now + timedelta(days=p["days"]))))
    return [(str(owner), f"expires:{str(expires)[:10]}", now) for owner, expires in rows]


def _visits(tx: Tx, low: datetime, high: datetime) -> list[tuple[str, str, str]]:
    return [(str(a), str(b), str(c)) for a, b, c in tx.rows(
        f"SELECT v.id, {_PERSON}, v.ts FROM visits v JOIN members m ON m.id = v.member_id "
        f"WHERE v.ts > ? AND v.ts <= ?", (iso(low), iso(high)))]


def _visit_no_purchase(tx: Tx, p: dict, now: datetime) -> list[Candidate]:
    day = timedelta(hours=24)
    visits = _visits(tx, now - day - timedelta(days=p["catch_up_days"]), now - day)
    if not visits:
        return []
    persons = sorted({v[1] for v in visits})
    bought: dict[str, list[int]] = defaultdict(list)
    first = min(datetime.fromisoformat(v[2]) for v in visits)
    for start in range(0, len(persons), _CHUNK):
        extra, args = _in(persons[start:start + _CHUNK], _PERSON)
        for person, ts in tx.rows(f"SELECT {_PERSON}, o.ts FROM orders o JOIN members m ON m.id = o.member_id "
                                  f"WHERE {_PAID} AND o.ts >= ?{extra}", (_epoch(first), *args)):
            bought[str(person)].append(int(ts))
    out = []
    for visit, person, ts in visits:
        start = _epoch(datetime.fromisoformat(ts))
        if not any(start <= t < start + 86400 for t in bought.get(person, ())):
            out.append((person, f"visit:{visit}", now))
    return out


def _vip_arrival(tx: Tx, p: dict, now: datetime) -> list[Candidate]:
    visits = _visits(tx, now - timedelta(minutes=p["within_minutes"]), now)
    persons = sorted({v[1] for v in visits})
    vip: set[str] = set()
    tiers = list(p["value_tiers"]) or ["high"]
    for start in range(0, len(persons), _CHUNK):
        extra, args = _in(persons[start:start + _CHUNK], "member_id")
        vip |= {str(r[0]) for r in tx.rows(
            f"SELECT member_id FROM person_stats WHERE value_tier IN ({', '.join('?' for _ in tiers)}){extra}",
            (*tiers, *args))}
    return [(person, f"visit:{visit}", now) for visit, person, _ in visits if person in vip]


_TRIGGER = {"first_purchase": _first_purchase, "repurchase_due": _repurchase_due, "dormant": _dormant,
            "birthday_month": _birthday_month, "points_expiring": _points_expiring,
            "visit_no_purchase": _visit_no_purchase, "vip_arrival": _vip_arrival}


def _enter(tx: Tx, journey: dict, candidates: list[Candidate], now: datetime) -> int:
    """New entries (a person and occurrence already entered is left alone); returns how many."""
    if not candidates:
        return 0
    persons = sorted({c[0] for c in candidates})
    seen: set[tuple[str, str]] = set()
    for start in range(0, len(persons), _CHUNK):
        extra, args = _in(persons[start:start + _CHUNK], "person_id")
        seen |= {(str(a), str(b)) for a, b in tx.rows(
            f"SELECT person_id, occurrence FROM journey_entries WHERE journey_id = ?{extra}", (journey["id"], *args))}
    ts = iso(now)
    fresh, keys = [], set()
    for person, occurrence, due in candidates:
        if (person, occurrence) in seen or (person, occurrence) in keys:
            continue
        keys.add((person, occurrence))
        grp = group(journey["salt"], person, float(journey["holdout_pct"]))
        fresh.append((journey["id"], person, occurrence, grp, _epoch(max(due, now)), ts, iso(max(due, now)),
                      "active" if grp == "treatment" else "control", ts))
    tx.executemany("INSERT INTO journey_entries (journey_id, person_id, occurrence, grp, since, entered, due, status, "
                   "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", fresh)
    return len(fresh)


def _running(db: Database | Tx, trigger: str | None = None) -> list[dict]:
    sql = "SELECT * FROM journeys WHERE status = 'running'"
    rows = db.query(sql + " AND trigger = ?", (trigger,)) if trigger else db.query(sql)
    return [{**r, "params": json.loads(r["params"]), "steps": json.loads(r["steps"]),
             "exit_on": json.loads(r["exit_on"])} for r in rows]


def evaluate(db: Database, *, now: datetime | None = None) -> dict[str, int]:
    """Every running journey's trigger: the visit triggers now, the others once a (local) day."""
    now = now or utcnow()
    today = now.astimezone(zone(DEFAULT_TZ)).date().isoformat()
    entered: dict[str, int] = {}
    for journey in _running(db):
        daily = journey["trigger"] not in EVENT_TRIGGERS
        if daily and journey["last_daily"] == today:
            continue
        with db.transaction() as tx:
            found = _TRIGGER[journey["trigger"]](tx, journey["params"], now)
            entered[journey["id"]] = _enter(tx, journey, found, now)
            if daily:
                tx.execute("UPDATE journeys SET last_daily = ? WHERE id = ?", (today, journey["id"]))
    return entered


def on_orders(db: Database, orders: list[dict]) -> None:
    """As orders land: buyers leave journeys that exit on a purchase; first buyers enter theirs."""
    members = sorted({o["member_id"] for o in orders if o.get("member_id") and float(o.get("paid") or 0) > 0})
    if not members:
        return
    now = utcnow()
    with db.transaction() as tx:
        bought: dict[str, int] = {}
        for test, chunk in tx.among(members):
            for person, ts in tx.rows(f"SELECT {_PERSON}, MAX(o.ts) FROM orders o JOIN members m ON m.id = o.member_id "
                                      f"WHERE {_PAID} AND o.member_id {test} GROUP BY {_PERSON}", chunk):
                bought[str(person)] = max(int(ts), bought.get(str(person), 0))
        persons = sorted(bought)
        _exit(tx, persons, "purchase", "purchased", bought, now)
        for journey in _running(tx, "first_purchase"):
            _enter(tx, journey, _first_purchase(tx, journey["params"], now, persons), now)


def _exit(tx: Tx, persons: Sequence[str], condition: str, reason: str, last: dict[str, int], now: datetime) -> None:
    """End the active entries of ``persons`` in journeys exiting on ``condition`` entered before ``last``."""
    rows = [r for test, chunk in tx.among(persons) for r in tx.query(
        f"SELECT e.id, e.person_id, e.entered, j.exit_on FROM journey_entries e JOIN journeys j "
        f"ON j.id = e.journey_id WHERE e.status = 'active' AND e.person_id {test}", chunk)]
    ts = iso(now)
    done = [(reason, ts, r["id"]) for r in rows if condition in json.loads(r["exit_on"])
            and last.get(r["person_id"], 0) > _epoch(datetime.fromisoformat(r["entered"]))]
    tx.executemany("UPDATE journey_entries SET status = 'exited', reason = ?, updated = ? WHERE id = ?", done)
    tx.executemany("INSERT INTO journey_log (entry_id, step, action, ts) SELECT id, step, ?, ? FROM journey_entries "
                   "WHERE id = ?", [(f"exit:{reason}", ts, i) for _, _, i in done])


# -- steps --------------------------------------------------------------------------------------------

def _last_activity(tx: Tx, persons: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Per person: the latest paid order (epoch) and the latest visit (epoch)."""
    orders: dict[str, int] = {}
    visits: dict[str, int] = {}
    for start in range(0, len(persons), _CHUNK):
        chunk = persons[start:start + _CHUNK]
        extra, args = _in(chunk, _PERSON)
        orders.update((str(p), int(t)) for p, t in tx.rows(
            f"SELECT {_PERSON}, MAX(o.ts) FROM orders o JOIN members m ON m.id = o.member_id WHERE {_PAID}{extra} "
            f"GROUP BY {_PERSON}", args))
        visits.update((str(p), _epoch(datetime.fromisoformat(str(t)))) for p, t in tx.rows(
            f"SELECT {_PERSON}, MAX(v.ts) FROM visits v JOIN members m ON m.id = v.member_id WHERE 1 = 1{extra} "
            f"GROUP BY {_PERSON}", args))
    return orders, visits


def advance(db: Database, *, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Run the due steps of active entries in running journeys, batch after batch."""
    now = now or utcnow()
    out: dict[str, int] = defaultdict(int)
    while True:
        rows = due_entries(db, now, batch)
        if not rows:
            return dict(out)
        moved = advance_batch(db, rows, now, out)
        if not moved:
            return dict(out)


def due_entries(db: Database, now: datetime, batch: int) -> list[dict]:
    """Active entries of running journeys whose next step is due, as read (see ``_advance_batch``)."""
    return db.query("SELECT e.id, e.journey_id, e.person_id, e.entered, e.step, e.due, e.updated, e.last_send, "
                    "j.steps, j.exit_on FROM journey_entries e JOIN journeys j ON j.id = e.journey_id "
                    "WHERE e.status = 'active' AND e.due <= ? AND j.status = 'running' ORDER BY e.due, e.id LIMIT ?",
                    (iso(now), batch))


def advance_batch(db: Database, rows: list[dict], now: datetime, out: dict[str, int]) -> int:
    """Run the steps of ``rows`` and record them, each entry only if it is still as it was read
    (a compare-and-set on its step, due time and last update): two cloud processes, or a test and
    the scheduler, that read the same entries run each step once, never twice."""
    ts = iso(now)
    persons = sorted({r["person_id"] for r in rows})
    keys = [r["last_send"] for r in rows if r["last_send"]]
    with db.transaction() as tx:
        last_order, last_visit = _last_activity(tx, persons)
        send_status: dict[str, str] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            send_status.update((str(k), str(s)) for k, s in tx.rows(
                f"SELECT key, status FROM marketing_sends WHERE key IN ({', '.join('?' for _ in chunk)})", chunk))
    moves = [_move(r, send_status, last_order, last_visit, ts, now) for r in rows]
    moved = 0
    with db.transaction() as tx:
        sends: list[tuple] = []
        logs: list[tuple] = []
        for r, (update, outcome, entry_sends, entry_logs) in zip(rows, moves, strict=True):
            claimed = tx.execute("UPDATE journey_entries SET status = ?, reason = ?, step = ?, last_send = ?, due = ?, "
                                 "updated = ? WHERE id = ? AND status = 'active' AND step = ? AND due = ? AND updated = ?",
                                 (*update, r["id"], r["step"], r["due"], r["updated"]))
            if not claimed:  # another run moved it since it was read
                continue
            moved += 1
            out[outcome] += 1
            out["sends"] += len(entry_sends)
            sends += entry_sends
            logs += entry_logs
        tx.executemany("INSERT INTO marketing_sends (key, campaign_id, person_id, channel, status, attempts, due, "
                       "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", sends)
        tx.executemany("INSERT INTO journey_log (entry_id, step, action, ts) VALUES (?, ?, ?, ?)", logs)
    return moved


def _move(r: dict, send_status: dict[str, str], last_order: dict[str, int], last_visit: dict[str, int], ts: str,
          now: datetime) -> tuple[tuple, str, list[tuple], list[tuple]]:
    """One entry's steps from where it is: (its new state, the outcome, the sends to queue, its log lines)."""
    steps, exit_on = json.loads(r["steps"]), json.loads(r["exit_on"])
    entered = _epoch(datetime.fromisoformat(r["entered"]))
    purchased = last_order.get(r["person_id"], 0) > entered
    sends: list[tuple] = []
    logs: list[tuple] = []
    if ("purchase" in exit_on and purchased) or ("visit" in exit_on and last_visit.get(r["person_id"], 0) > entered):
        reason = "purchased" if "purchase" in exit_on and purchased else "visited"
        logs.append((r["id"], int(r["step"]), f"exit:{reason}", ts))
        return ("exited", reason, int(r["step"]), r["last_send"], ts, ts), f"exited:{reason}", sends, logs
    step, last_send, due, status = int(r["step"]), r["last_send"], ts, "active"
    for _ in range(2 * len(steps) + 1):  # a branch that loops back without a wait stops here
        if step >= len(steps):
            status = "done"
            break
        spec = steps[step]
        if "send" in spec:
            last_send = f"{_step_campaign(r['journey_id'], step)}:{r['id']}"
            sends.append((last_send, _step_campaign(r["journey_id"], step), r["person_id"], spec["send"],
                          "pending", 0, ts, ts))
            logs.append((r["id"], step, f"send:{spec['send']}", ts))
            step += 1
        elif "wait_hours" in spec:
            due = iso(now + timedelta(hours=float(spec["wait_hours"])))
            logs.append((r["id"], step, "wait", ts))
            step += 1
            break
        else:  # branch
            sent = send_status.get(last_send or "")
            if spec["branch"] in ("reached", "delivered") and sent in ("pending", "sending"):
                due = iso(now + _RECHECK)  # the message is still queued: look again later
                break
            holds = {"reached": sent in ("sent", "delivered"), "delivered": sent == "delivered",
                     "purchased": purchased}[spec["branch"]]
            logs.append((r["id"], step, f"branch:{spec['branch']}:{'yes' if holds else 'no'}", ts))
            step = int(spec["yes"] if holds else spec["no"])
    else:
        status = "done"  # branches only, no wait in between: a loop, ended
    return (status, None if status != "done" else "completed", step, last_send, due, ts), status, sends, logs


def tick(db: Database, *, now: datetime | None = None) -> dict[str, int]:
    """The scheduler's ``journeys`` job: evaluate triggers, then run what is due."""
    now = now or utcnow()
    entered = evaluate(db, now=now)
    return {"entered": sum(entered.values()), **advance(db, now=now)}


def entries(db: Database, journey_id: str, *, limit: int = 100) -> list[dict]:
    _row(db, journey_id)
    found = db.query("SELECT id, person_id, occurrence, grp, entered, step, due, status, reason FROM journey_entries "
                     "WHERE journey_id = ? ORDER BY id DESC LIMIT ?", (journey_id, limit))
    logs: dict[int, list[str]] = defaultdict(list)
    ids = [r["id"] for r in found]
    if ids:
        for entry, step, action in db.rows(f"SELECT entry_id, step, action FROM journey_log WHERE entry_id IN "
                                           f"({', '.join('?' for _ in ids)}) ORDER BY id", ids):
            logs[int(entry)].append(f"{step}:{action}")
    return [{**r, "log": logs.get(r["id"], [])} for r in found]


def results(db: Database, journey_id: str) -> dict:
    """Treatment against control: the share who bought within ``window_days`` of their entry's due
    time, revenue per head, and the uplift with a normal 95% interval (intention to treat: an
    entry whose sends a check held back still counts as treated)."""
    journey = _row(db, journey_id)
    window = int(journey["window_days"]) * 86400
    rows = db.query("SELECT person_id, grp, since FROM journey_entries WHERE journey_id = ?", (journey_id,))
    persons = sorted({r["person_id"] for r in rows})
    orders: dict[str, list[tuple[int, float]]] = defaultdict(list)
    low = min((int(r["since"]) for r in rows), default=0)
    for start in range(0, len(persons), _CHUNK):
        extra, args = _in(persons[start:start + _CHUNK], _PERSON)
        for person, ts, paid in db.rows(f"SELECT {_PERSON}, o.ts, o.paid FROM orders o JOIN members m "
                                        f"ON m.id = o.member_id WHERE {_PAID} AND o.ts >= ?{extra}", (low, *args)):
            orders[str(person)].append((int(ts), float(paid)))
    groups: dict[str, dict[str, Any]] = {g: {"n": 0, "converted": 0, "revenue": 0.0} for g in ("treatment", "control")}
    for r in rows:
        since = int(r["since"])
        mine = [paid for ts, paid in orders.get(r["person_id"], ()) if since <= ts < since + window]
        cell = groups[r["grp"]]
        cell["n"] += 1
        cell["converted"] += 1 if mine else 0
        cell["revenue"] += sum(mine)
    for cell in groups.values():
        cell["rate"] = round(cell["converted"] / cell["n"], 5) if cell["n"] else None
        cell["revenue_per_head"] = round(cell["revenue"] / cell["n"], 2) if cell["n"] else None
    t, c = groups["treatment"], groups["control"]
    uplift = None
    if t["n"] and c["n"]:
        d, se = campaigns.diff(t["converted"] / t["n"], t["n"], c["converted"] / c["n"], c["n"])
        uplift = {"estimate": round(d, 5), "se": round(se, 5),
                  "ci95": [round(d - 1.96 * se, 5), round(d + 1.96 * se, 5)],
                  "method": "difference in conversion within the window (intention to treat), normal 95% interval"}
    return {"journey": get(db, journey_id), "window_days": journey["window_days"], "groups": groups, "uplift": uplift,
            "coupons": coupons.totals(db, f"campaign:{journey_id}-"), "tasks": guide_task.totals(db, f"{journey_id}-%")}
