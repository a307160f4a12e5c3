"""Effect tracking (效果通): a cohort followed over 30/60/90/180 days against a matched control.

Three kinds of cohort, each with its own control:

* ``campaign:<id>``: the campaign's audience from launch, treatment against its holdout (same
  strata, drawn at random);
* a saved **segment** cohort (``POST /v1/cohorts`` with ``segment_id`` and ``start``): the segment's
  persons as of ``start``, against as many persons outside it, matched on value tier;
* a tagged **order source** (``order_nos`` of a channel, such as a livestream's order codes, each
  matched by its order id, so a till's receipt names its store: receipt numbers are only unique
  within a store; or a ``coupon_template`` whose redemptions are an influencer's coupon): the buyers
  of those orders, each followed from their first tagged order, against buyers on the same channels
  in the same days who did not come through the source, matched on value tier, each followed from
  their first order in those days.

``measures`` names what ``buyer_rate`` counts: ``orders_from_start`` (campaign and segment
cohorts) or ``repurchase_after_tagged_order`` (order sources, whose tagged order is the start).
Per group and horizon: persons, ``buyer_rate``, orders and revenue (LTV) per head, and the channel
mix of those orders. Matching draws, within each value tier, the
persons with the lowest hash of (cohort, person), so a cohort's control is the same on every read;
a tier with too few candidates gives fewer controls, and ``matched`` says how many were found.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, model_serializer, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from cloud.activation.campaigns import CampaignState, get
from cloud.cdp import segments
from cloud.cdp.imports.canonical import order_id
from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.errors import Conflict, NotFound

HORIZONS = (30, 60, 90, 180)
_PERSON = "COALESCE(m.merged_into, m.id)"
_PAID = "o.paid > 0 AND o.refund_of IS NULL"
_CHUNK = 500
_REF_MAX = 128  # an order number's or store code's length, well above any channel's

#: group -> person -> when they are followed from (epoch seconds)
Groups = dict[str, dict[str, int]]


class UnknownCohort(NotFound):
    code = "unknown_cohort"


class StorelessCohort(Conflict):
    """A cohort saved before till receipts were numbered per store: its receipt numbers name no
    store, so each could be any store's receipt; it is refused rather than followed wrongly."""

    code = "storeless_cohort"


class OrderRef(BaseModel):
    """One tagged order: its number and, on a channel numbered per store (the till), its store.

    A bare string is a number without a store, and is written back as one, so a platform cohort
    reads and is stored as it always was (``["L-1", ...]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    order_no: str = Field(min_length=1, max_length=_REF_MAX)
    store: str | None = Field(None, min_length=1, max_length=_REF_MAX)

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, value: Any) -> Any:
        return {"order_no": value} if isinstance(value, str) else value

    @model_serializer
    def _as_given(self) -> str | dict[str, str]:
        return self.order_no if self.store is None else {"order_no": self.order_no, "store": self.store}

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The API's document says what the API takes: a bare number or the object."""
        return {"anyOf": [{"type": "string", "minLength": 1, "maxLength": _REF_MAX}, handler(schema)]}


class CohortSpec(BaseModel):
    """One of: ``segment_id`` (with ``start``), ``order_nos`` (with their ``channel``), ``coupon_template``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    segment_id: str | None = Field(None, max_length=64)
    start: datetime | None = Field(None, description="segment cohorts: the day the segment is taken and followed from")
    channel: str | None = Field(None, max_length=20, description="the channel of order_nos (tmall, jd, pos, ...)")
    order_nos: list[OrderRef] = Field(
        default_factory=list, max_length=20000,
        description="order numbers, or {order_no, store}: a till's receipt (channel pos) names its store")
    coupon_template: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _one_kind(self) -> CohortSpec:
        kinds = [self.segment_id is not None, bool(self.order_nos), self.coupon_template is not None]
        if sum(kinds) != 1:
            raise ValueError("a cohort is a segment_id, order_nos or a coupon_template: exactly one")
        if self.order_nos and not self.channel:
            raise ValueError("order_nos name their channel")
        for ref in self.order_nos:  # a per-store receipt without its store raises here, as a 422
            order_id(str(self.channel), ref.order_no, ref.store)
        return self


def create(db: Database, spec: CohortSpec, *, actor: str) -> dict:
    if spec.segment_id is not None:
        segments.saved(db, spec.segment_id)  # raises UnknownSegment
    cohort_id = "c" + uuid.uuid4().hex[:12]
    definition = spec.model_dump(mode="json", exclude={"name"}, exclude_none=True, exclude_defaults=True)
    if spec.segment_id is not None:
        definition["start"] = iso(spec.start or utcnow())
    db.execute("INSERT INTO cohorts (id, name, definition, created, created_by) VALUES (?, ?, ?, ?, ?)",
               (cohort_id, spec.name, json.dumps(definition, ensure_ascii=False), iso(utcnow()), actor))
    return {"id": cohort_id, "name": spec.name, "definition": definition}


def listing(db: Database) -> list[dict]:
    return [{**r, "definition": json.loads(r["definition"])}
            for r in db.query("SELECT id, name, definition, created FROM cohorts ORDER BY created DESC")]


def cohort(db: Database, cohort_id: str, *, now: datetime | None = None) -> dict:
    now = now or utcnow()
    kind, _, ref = cohort_id.partition(":")
    if kind == "campaign" and ref:
        return _campaign(db, cohort_id, ref, now)
    row = db.one("SELECT * FROM cohorts WHERE id = ?", (cohort_id,))
    if row is None:
        raise UnknownCohort(f"no cohort {cohort_id}")
    definition = json.loads(row["definition"])
    if "segment_id" in definition:
        groups, strict, measures = _segment(db, cohort_id, definition), False, "orders_from_start"
    else:
        groups, strict, measures = _source(db, cohort_id, definition), True, "repurchase_after_tagged_order"
    return {"id": cohort_id, "name": row["name"], "definition": definition, "measures": measures,
            "matched": {g: len(p) for g, p in groups.items()}, "horizons": _follow(db, groups, now, strict=strict)}


def _campaign(db: Database, cohort_id: str, ref: str, now: datetime) -> dict:
    campaign = get(db, ref)
    if not campaign["launched_at"]:
        raise CampaignState(f"campaign {ref} has not been launched")
    start = int(datetime.fromisoformat(campaign["launched_at"]).timestamp())
    groups: Groups = {"treatment": {}, "control": {}}
    for person, grp in db.rows("SELECT person_id, grp FROM campaign_audience WHERE campaign_id = ?", (ref,)):
        groups[str(grp)][str(person)] = start
    return {"id": cohort_id, "campaign": campaign["name"], "start": campaign["launched_at"],
            "measures": "orders_from_start", "horizons": _follow(db, groups, now, strict=False)}


def _tiers(db: Database, persons: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for start in range(0, len(persons), _CHUNK):
        chunk = list(persons[start:start + _CHUNK])
        out.update((str(p), str(t or "-")) for p, t in db.rows(
            f"SELECT member_id, value_tier FROM person_stats WHERE member_id IN ({', '.join('?' for _ in chunk)})",
            chunk))
    return {p: out.get(p, "-") for p in persons}


def _matched(db: Database, cohort_id: str, cohort: Sequence[str], candidates: Sequence[str]) -> list[str]:
    """As many candidates as cohort members per value tier, the same ones on every read."""
    want: dict[str, int] = defaultdict(int)
    for tier in _tiers(db, cohort).values():
        want[tier] += 1
    pool: dict[str, list[str]] = defaultdict(list)
    for person, tier in _tiers(db, candidates).items():
        pool[tier].append(person)
    chosen: list[str] = []
    for tier, n in want.items():
        ranked = sorted(pool.get(tier, ()), key=lambda p: hashlib.sha256(f"{cohort_id}:{p}".encode()).digest())
        chosen += ranked[:n]
    return chosen


def _segment(db: Database, cohort_id: str, definition: dict) -> Groups:
    start = datetime.fromisoformat(definition["start"])
    _, condition = segments.saved(db, definition["segment_id"])
    with db.transaction() as tx:
        members = sorted(set(segments.matching_persons(tx, condition, as_of=start)))
    inside = set(members)
    others = [str(r[0]) for r in db.rows("SELECT id FROM members WHERE merged_into IS NULL") if r[0] not in inside]
    t = int(start.timestamp())
    return {"cohort": dict.fromkeys(members, t), "control": dict.fromkeys(_matched(db, cohort_id, members, others), t)}


def _tagged_ids(cohort_id: str, definition: dict) -> list[str]:
    """The order ids a stored ``order_nos`` cohort names, built as every order's id is built."""
    refs = [OrderRef.model_validate(ref) for ref in definition["order_nos"]]
    try:
        return [order_id(definition["channel"], ref.order_no, ref.store) for ref in refs]
    except ValueError as e:  # order_id's refusal: a per-store receipt saved without its store
        raise StorelessCohort(f"cohort {cohort_id}: {e}; create it again naming each receipt's store") from e


def _source(db: Database, cohort_id: str, definition: dict) -> Groups:
    if "order_nos" in definition:
        ids = _tagged_ids(cohort_id, definition)
        tagged: list[tuple[str, str, int]] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            tagged += [(str(a), str(b), int(c)) for a, b, c in db.rows(
                f"SELECT {_PERSON}, o.channel, o.ts FROM orders o JOIN members m ON m.id = o.member_id "
                f"WHERE {_PAID} AND o.id IN ({', '.join('?' for _ in chunk)})", chunk)]
    else:
        tagged = [(str(a), str(b), int(c)) for a, b, c in db.rows(
            f"SELECT {_PERSON}, o.channel, o.ts FROM coupons c JOIN orders o ON o.id = c.redeemed_order "
            f"JOIN members m ON m.id = o.member_id WHERE c.template_id = ? AND {_PAID}",
            (definition["coupon_template"],))]
    firsts: dict[str, int] = {}
    for person, _, ts in tagged:
        firsts[person] = min(ts, firsts.get(person, ts))
    if not firsts:
        return {"cohort": {}, "control": {}}
    channels = sorted({c for _, c, _ in tagged})
    low, high = min(firsts.values()), max(firsts.values())
    others: dict[str, int] = {}
    for person, ts in db.rows(
            f"SELECT {_PERSON}, MIN(o.ts) FROM orders o JOIN members m ON m.id = o.member_id WHERE {_PAID} "
            f"AND o.ts >= ? AND o.ts <= ? AND o.channel IN ({', '.join('?' for _ in channels)}) GROUP BY {_PERSON}",
            (low, high, *channels)):
        if str(person) not in firsts:
            others[str(person)] = int(ts)
    control = _matched(db, cohort_id, sorted(firsts), sorted(others))
    return {"cohort": firsts, "control": {p: others[p] for p in control}}


def _follow(db: Database, groups: Groups, now: datetime, *, strict: bool) -> list[dict]:
    """Each group's orders after each person's start (``strict``: the start's own order left out)."""
    persons = sorted({p for members in groups.values() for p in members})
    low = min((t for members in groups.values() for t in members.values()), default=0)
    orders: dict[str, list[tuple[int, float, str]]] = defaultdict(list)
    for start in range(0, len(persons), _CHUNK):
        chunk = persons[start:start + _CHUNK]
        for person, ts, paid, channel in db.rows(
                f"SELECT {_PERSON}, o.ts, o.paid, o.channel FROM orders o JOIN members m ON m.id = o.member_id "
                f"WHERE {_PAID} AND o.ts >= ? AND {_PERSON} IN ({', '.join('?' for _ in chunk)})", (low, *chunk)):
            orders[str(person)].append((int(ts), float(paid), str(channel)))
    latest = datetime.fromtimestamp(max((t for m in groups.values() for t in m.values()), default=0), now.tzinfo)
    horizons = []
    for days in HORIZONS:
        span = days * 86400
        out: dict = {"days": days, "complete": latest + timedelta(days=days) <= now}
        for grp, members in groups.items():
            n, buyers, count, paid = len(members), 0, 0, 0.0
            mix: dict[str, int] = defaultdict(int)
            for person, since in members.items():
                mine = [(p, c) for ts, p, c in orders.get(person, ())
                        if (ts > since if strict else ts >= since) and ts < since + span]
                buyers += 1 if mine else 0
                count += len(mine)
                paid += sum(p for p, _ in mine)
                for _, c in mine:
                    mix[c] += 1
            out[grp] = {"persons": n, "buyer_rate": round(buyers / n, 5) if n else None,
                        "orders_per_head": round(count / n, 4) if n else None,
                        "ltv_per_head": round(paid / n, 2) if n else None,
                        "channel_mix": {c: round(k / count, 4) for c, k in sorted(mix.items())} if count else {}}
        horizons.append(out)
    return horizons
