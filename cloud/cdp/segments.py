"""Segments (圈人): a JSON condition language compiled to parameterised SQL.

A condition is one of::

    {"and": [c, ...]}  {"or": [c, ...]}  {"not": c}
    {"bought": {"category": "护肤" | "sku": "SKU", "within_days": 90, "min_count": 1, "min_amount": 0,
                "channel": "tmall", "store": "sh-001"}}
    {"tag": {"name": "敏感肌", "value": "true"}}
    {"lifecycle": ["active", "repurchase_due"]}      {"value_tier": ["high"]}
    {"store": "sh-001"}   (bought or visited there)  {"channel": "tmall"}
    {"visited": {"store": "sh-001", "within_days": 30, "min_count": 1}}
    {"consent": {"face": true}}
    {"dim": {"name": "bought.category.days", "scope": "护肤", "days": 90}}   (one of 100+ catalogued
          dimensions: ``cloud.cdp.dimensions``, ``GET /v1/segments/dimensions``)

"Bought A in 90 days but not B" is ``{"and": [{"bought": {"category": "A", "within_days": 90}},
{"not": {"bought": {"category": "B", "within_days": 90}}}]}``. Every value the caller gives
travels as a bound parameter; the SQL text is assembled only from this module's fixed fragments,
so no value can change a query's shape. The same SQL runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, RootModel, Tag, ValidationError, model_validator

from cloud.cdp import dimensions, purchases
from cloud.cdp.lifecycle import LIFECYCLE_STAGES, VALUE_TIERS
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from cloud.errors import Invalid, NotFound
from protocol.messages import new_id

Text = Annotated[str, Field(min_length=1, max_length=100)]
Days = Annotated[int, Field(ge=1, le=3650)]
MAX_NODES = 100
_CHUNK = 500


class InvalidCondition(Invalid):
    """A segment condition that does not parse: unknown type, operator, field or value."""

    code = "invalid_condition"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BoughtSpec(_Strict):
    category: Text | None = None
    sku: Text | None = None
    within_days: Days = 365
    min_count: int = Field(default=1, ge=1, le=10_000, description="distinct orders")
    min_amount: float | None = Field(default=None, ge=0, allow_inf_nan=False,
                                     description="yuan spent on the matching lines")
    channel: Text | None = None
    store: Text | None = None

    @model_validator(mode="after")
    def _one_product(self) -> BoughtSpec:
        if (self.category is None) == (self.sku is None):
            raise ValueError("give exactly one of category or sku")
        return self


class Bought(_Strict):
    bought: BoughtSpec


class TagSpec(_Strict):
    name: Text
    value: Text = "true"


class HasTag(_Strict):
    tag: TagSpec


class Lifecycle(_Strict):
    lifecycle: list[Literal[LIFECYCLE_STAGES]] = Field(min_length=1)  # type: ignore[valid-type]


class ValueTier(_Strict):
    value_tier: list[Literal[VALUE_TIERS]] = Field(min_length=1)  # type: ignore[valid-type]


class AtStore(_Strict):
    store: Text


class InChannel(_Strict):
    channel: Text


class VisitedSpec(_Strict):
    store: Text | None = None
    within_days: Days = 30
    min_count: int = Field(default=1, ge=1, le=10_000)


class Visited(_Strict):
    visited: VisitedSpec


class ConsentSpec(_Strict):
    face: bool


class HasConsent(_Strict):
    consent: ConsentSpec


class Dim(_Strict):
    dim: dimensions.DimSpec

    @model_validator(mode="after")
    def _known(self) -> Dim:
        try:
            checked = dimensions.validate(self.dim)
        except dimensions.DimensionError as exc:
            raise ValueError(str(exc)) from None
        object.__setattr__(self, "dim", checked)
        return self


class And(_Strict):
    and_: list[Condition] = Field(alias="and", min_length=1, max_length=MAX_NODES)


class Or(_Strict):
    or_: list[Condition] = Field(alias="or", min_length=1, max_length=MAX_NODES)


class Not(_Strict):
    not_: Condition = Field(alias="not")


_KINDS: dict[str, type[BaseModel]] = {
    "and": And, "or": Or, "not": Not, "bought": Bought, "tag": HasTag, "lifecycle": Lifecycle,
    "value_tier": ValueTier, "store": AtStore, "channel": InChannel, "visited": Visited, "consent": HasConsent,
    "dim": Dim,
}


def _kind(value: object) -> str | None:
    """A node is named by its only key; anything else fails with the list of known kinds."""
    if isinstance(value, BaseModel):
        return next(k for k, cls in _KINDS.items() if isinstance(value, cls))
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if key in _KINDS else None
    return None


if TYPE_CHECKING:
    Node = BaseModel  # one of _KINDS: the union below is built from that table at run time
else:
    Node = Annotated[
        Union[tuple(Annotated[cls, Tag(key)] for key, cls in _KINDS.items())],  # noqa: UP007 - a runtime union
        Discriminator(_kind, custom_error_type="unknown_condition",
                      custom_error_message=f"a condition is an object with one key, one of: {', '.join(_KINDS)}"),
    ]


class Condition(RootModel[Node]):
    """Any condition node, validated from JSON in one call."""

    @classmethod
    def of(cls, data: object) -> Condition:
        return cls.model_validate(data)

    @classmethod
    def parse(cls, data: object) -> Condition:
        """A condition from HQ's JSON, or ``InvalidCondition`` naming the first wrong place."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidCondition(f"{where}: {first['msg']}" if where else first["msg"]) from None

    def dump(self) -> dict:
        return self.model_dump(by_alias=True, exclude_none=True)

    @model_validator(mode="after")
    def _size(self) -> Condition:
        if _count(self.root) > MAX_NODES:
            raise ValueError(f"a condition has at most {MAX_NODES} nodes")
        return self


def _unwrap(node: object) -> Node:
    return node.root if isinstance(node, Condition) else node  # type: ignore[return-value]


def _count(node: object) -> int:
    node = _unwrap(node)
    if isinstance(node, (And, Or)):
        return 1 + sum(_count(c) for c in (node.and_ if isinstance(node, And) else node.or_))
    if isinstance(node, Not):
        return 1 + _count(node.not_)
    return 1


And.model_rebuild()
Or.model_rebuild()
Not.model_rebuild()
Condition.model_rebuild()

_PERSON = "COALESCE(m.merged_into, m.id)"
#: one share of a driven AND's persons (``_shares``): its index, of how many
Share = tuple[int, int]


def _bought_dims(b: BoughtSpec) -> list[Dim] | None:
    """A ``bought`` node of one scope (a category or a SKU, no channel or store) as the catalogue's
    purchase dimensions over the same window: ``bought`` (net units above zero, so a purchase
    refunded in the window is not bought), and ``order_count`` (distinct sale orders) and
    ``order_amount`` (net) for its minimums. Asked that way it reads the person facts and can drive
    an AND, as the same ``dim`` nodes do; None for a node with a channel or store (two scopes at once,
    which the facts do not sum), asked of the lines."""
    if b.channel is not None or b.store is not None:
        return None
    family, scope = ("category", b.category) if b.category is not None else ("sku", b.sku)
    window = {"scope": scope, "days": b.within_days}
    specs = [dimensions.DimSpec(name=f"bought.{family}.days", **window)]
    if b.min_count > 1:
        specs.append(dimensions.DimSpec(name=f"order_count.{family}.days", op=">=", value=b.min_count, **window))
    if b.min_amount is not None:
        specs.append(dimensions.DimSpec(name=f"order_amount.{family}.days", op=">=", value=b.min_amount, **window))
    return [Dim(dim=spec) for spec in specs]


def _parts(children: Sequence[object]) -> list[object]:
    """An AND's conditions, each ``bought`` of one scope as its dimensions (``_bought_dims``), so the
    AND can be driven by them."""
    parts: list[object] = []
    for child in children:
        node = _unwrap(child)
        dims = _bought_dims(node.bought) if isinstance(node, Bought) else None
        parts += dims if dims is not None else [node]
    return parts


def _roles(children: Sequence[object]) -> dict[int, purchases.Role]:
    """How an AND's purchase conditions are asked (``purchases.holds``): the narrowest one that only
    buyers pass drives (the persons it lists are the only ones read), every other one summed from the
    facts is probed for the persons that reach it; the AND's other conditions are unchanged. Without
    such a driver every condition stays a set."""
    dims = {i: c.dim for i, c in ((i, _unwrap(c)) for i, c in enumerate(children)) if isinstance(c, Dim)}
    summed = [i for i, d in dims.items() if dimensions.summed(d)]
    drivers = sorted((dimensions.breadth(dims[i]), i) for i in summed if dimensions.needs_rows(dims[i]))
    if not drivers:  # probing every person costs about what the sets do (0.41-0.46 s against 0.41 s at 250k)
        return {}
    return {i: "drive" if i == drivers[0][1] else "probe" for i in summed}


def _driven(children: Sequence[object], roles: dict[int, purchases.Role], now: int, params: list,
            share: Share | None = None) -> str:
    """A driven AND (``_roles``) as one ``IN``: the driver's persons, named ``p`` inside it, so each
    probe (a test of ``p.id``) is asked of the persons the driver lists and of no one else, however
    the engine joins the rest. As separate conditions of the outer ``p`` the probes went wherever
    ``members`` was read: PostgreSQL at 1M persons estimated the driver's ``UNION ALL`` at 200 rows,
    scanned every head and ran each probe 1.0M times for the driver's 89,808 persons (9.6 s).

    The AND's other conditions (gender, lifecycle, a tag: a look-up of the person's profile row or
    a set built once) are tested inside too, on the driver's persons, before any probe: the persons
    they leave are kept first (a ``MATERIALIZED`` step, which neither engine folds into the probes'
    query), and only those are probed. Beside the probes, a test of the profile row went below them
    wherever the plan joined that row: PostgreSQL evaluates a condition on ``p`` alone at ``p``'s
    scan, so it probed every driver's person and then dropped the men.
    ``share``: only the driver's persons in that share are read (``_shares``)."""
    (drive,) = (i for i, role in roles.items() if role == "drive")
    persons = _compile(children[drive], now, params, role="drive")
    others = [c for i, c in enumerate(children) if i not in roles]
    tests = [_share_test(share, params)] if share is not None else []
    tests += [_compile(c, now, params) for c in others]
    probes = [_compile(children[i], now, params, role="probe") for i in sorted(roles) if roles[i] == "probe"]
    if not others:
        tested = f" WHERE {' AND '.join(tests + probes)}" if tests or probes else ""
        return f"p.id IN (SELECT p.id FROM ({persons}) p{tested})"
    join = f" {dimensions.PROFILE_JOIN}" if any(_reads_profile(c) for c in others) else ""
    reached = f"SELECT p.id FROM ({persons}) p{join} WHERE {' AND '.join(tests)}"
    probed = f" WHERE {' AND '.join(probes)}" if probes else ""
    return f"p.id IN (WITH reached AS MATERIALIZED ({reached}) SELECT p.id FROM reached p{probed})"


def _compile(node: object, now: int, params: list, *, role: purchases.Role = "set", share: Share | None = None) -> str:
    """A boolean SQL expression over the person ``p`` (and its profile row ``pp``); params appended in order;
    ``role``: how a purchase condition is asked (``_roles``); ``share``: of a driven AND, the persons
    of that share only (``_shares``)."""
    node = _unwrap(node)
    dims = _bought_dims(node.bought) if isinstance(node, Bought) else None
    if isinstance(node, And) or dims is not None:
        parts: Sequence[object] = _parts(node.and_) if isinstance(node, And) else dims or ()
        if roles := _roles(parts):  # every condition of the AND is asked inside its driver's IN
            return _driven(parts, roles, now, params, share)
        return "(" + " AND ".join(_compile(c, now, params) for c in parts) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(_compile(c, now, params) for c in node.or_) + ")"
    if isinstance(node, Not):
        return f"(NOT {_compile(node.not_, now, params)})"
    if isinstance(node, Bought):  # with a channel or store: the lines, with _bought_dims' net tests
        b = node.bought
        where = ["l.category = ?" if b.category else "l.sku = ?", "l.ts >= ?"]
        params += [b.category or b.sku, now - b.within_days * 86400]
        for column, value in (("l.channel", b.channel), ("l.store", b.store)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        having = [purchases.LINE_AGG["qty"] + " > 0"]
        if b.min_count > 1:
            having.append(purchases.LINE_AGG["orders"] + " >= ?")
            params.append(b.min_count)
        if b.min_amount is not None:
            having.append(purchases.LINE_AGG["amount"] + " >= ?")
            params.append(b.min_amount)
        return (f"p.id IN (SELECT {_PERSON} FROM order_lines l JOIN members m ON m.id = l.member_id "
                f"WHERE {' AND '.join(where)} GROUP BY {_PERSON} HAVING {' AND '.join(having)})")
    if isinstance(node, HasTag):
        params += [node.tag.name, node.tag.value]
        return "p.id IN (SELECT member_id FROM person_tags WHERE tag = ? AND value = ?)"
    if isinstance(node, Lifecycle):
        params += node.lifecycle
        return f"pp.lifecycle IN ({', '.join('?' for _ in node.lifecycle)})"
    if isinstance(node, ValueTier):
        params += node.value_tier
        return f"pp.value_tier IN ({', '.join('?' for _ in node.value_tier)})"
    if isinstance(node, AtStore):
        params += [node.store, node.store]
        return (f"(p.id IN (SELECT {_PERSON} FROM orders o JOIN members m ON m.id = o.member_id WHERE o.store = ?) "
                f"OR p.id IN (SELECT {_PERSON} FROM visits v JOIN members m ON m.id = v.member_id WHERE v.store = ?))")
    if isinstance(node, InChannel):
        params.append(node.channel)
        return f"p.id IN (SELECT {_PERSON} FROM orders o JOIN members m ON m.id = o.member_id WHERE o.channel = ?)"
    if isinstance(node, Visited):
        v = node.visited
        since = datetime.fromtimestamp(now - v.within_days * 86400, UTC).isoformat(timespec="microseconds")
        where, args = ["v.ts >= ?"], [since]
        if v.store is not None:
            where.append("v.store = ?")
            args.append(v.store)
        params += args + [v.min_count]
        return (f"p.id IN (SELECT {_PERSON} FROM visits v JOIN members m ON m.id = v.member_id "
                f"WHERE {' AND '.join(where)} GROUP BY {_PERSON} HAVING COUNT(*) >= ?)")
    if isinstance(node, Dim):
        return dimensions.compile(node.dim, datetime.fromtimestamp(now, UTC), params, role=role)
    if isinstance(node, HasConsent):
        # the person's consent as it counts (survivorship.store): the head record's, or a proven one
        return "(pp.face_consent = 1)" if node.consent.face else "(COALESCE(pp.face_consent, 0) = 0)"
    raise TypeError(f"not a condition: {node!r}")  # pragma: no cover - the models are exhaustive


def _share_test(share: Share, params: list) -> str:
    """The person ``p`` is in that share: PostgreSQL's hash of the id (sign bit cleared) modulo the
    number of shares, so the shares are disjoint, cover everyone and are about the same size."""
    params += [share[1], share[0]]
    return "(hashtext(p.id) & 2147483647) % ? = ?"


def _shares(db: Database | Tx, condition: Condition | None) -> int:
    """Into how many shares a question about the segment is split, each asked on its own connection
    at the same time (``Database.rows_at_once``): the database's parallelism when the condition is an
    AND driven by its buyers (each person it keeps is one of the driver's, so splitting the driver's
    persons splits the answer), else one. Such a count is mostly per-person work after the driver:
    at 1M persons on PostgreSQL the 5-condition count listed the driver's 89,599 persons in 0.13 s
    and spent ~1.9 s probing and looking up each of them, one after another in one server process
    while the other cores idled; the server's parallel query leaves correlated probes to its leader."""
    node = None if condition is None else _unwrap(condition)
    if not isinstance(db, Database) or not isinstance(node, And) or not _roles(_parts(node.and_)):
        return 1
    return db.parallelism()


def _asked(db: Database | Tx, condition: Condition | None, at: datetime, store: str | None, select: str, *,
           head: Sequence = (), tail: str = "", joins: str | None = None) -> list[tuple]:
    """The rows of ``SELECT {select} FROM <the segment> {tail}`` (``head``: the select's parameters),
    from every share together when the question splits (``_shares``); each share's rows as it gave
    them, so ``select`` must be something the caller adds up across shares (counts)."""
    shares = _shares(db, condition)
    statements = []
    for index in range(shares):
        sql, params = _where(condition, at, store, joins=joins, share=(index, shares) if shares > 1 else None)
        statements.append((f"SELECT {select} {sql}{tail}", (*head, *params)))
    if isinstance(db, Database) and shares > 1:
        return [row for rows in db.rows_at_once(statements) for row in rows]
    return db.rows(*statements[0])


def _reads_profile(node: object) -> bool:
    """Whether the condition reads the person's profile row (``person_profiles pp``: the surviving
    values and the copied stats), which is joined only then."""
    node = _unwrap(node)
    if isinstance(node, And) and _roles(_parts(node.and_)):
        return False  # a driven AND joins the profile row inside its own IN (``_driven``)
    if isinstance(node, (And, Or)):
        return any(_reads_profile(c) for c in (node.and_ if isinstance(node, And) else node.or_))
    if isinstance(node, Not):
        return _reads_profile(node.not_)
    if isinstance(node, Dim):
        return dimensions.uses_profile(node.dim)
    return isinstance(node, (HasConsent, Lifecycle, ValueTier))


def _where(condition: Condition | None, as_of: datetime | None, store: str | None, *,
           listing: bool = False, joins: str | None = None, share: Share | None = None) -> tuple[str, list]:
    """The FROM/WHERE of a segment (no condition = every person); the profile row joined when needed
    (``listing``: always, for the rows a page shows; ``joins``: the caller's joins instead, which must
    include person_profiles as ``pp``); ``share``: of a condition that splits (``_shares``), that
    share's persons only."""
    now = int((as_of or datetime.now(UTC)).timestamp())
    params: list = []
    read = listing or (condition is not None and _reads_profile(condition))
    join = joins if joins is not None else dimensions.PROFILE_JOIN if read else ""
    base = f"FROM members p {join} WHERE p.merged_into IS NULL"
    sql = base if condition is None else f"{base} AND {_compile(condition, now, params, share=share)}"
    if store is not None:  # a store manager sees only people who bought or visited there
        sql += f" AND {_compile(AtStore(store=store), now, params)}"
    return sql, params


def count(db: Database | Tx, condition: Condition | None, *, as_of: datetime | None = None, store: str | None = None) -> int:
    return sum(int(n) for n, in _asked(db, condition, as_of or datetime.now(UTC), store, "COUNT(*)"))


def page(db: Database | Tx, condition: Condition | None, *, limit: int, offset: int, as_of: datetime | None = None,
         store: str | None = None) -> list[dict]:
    sql, params = _where(condition, as_of, store, listing=True)
    return db.query(
        f"SELECT p.id, COALESCE(pp.name, p.name) AS name, pp.lifecycle, pp.value_tier, pp.ltv, pp.orders {sql} "
        "ORDER BY p.id LIMIT ? OFFSET ?",
        (*params, limit, offset))


def matching_persons(tx: Tx, condition: Condition, *, within: Sequence[str] | None = None,
                     as_of: datetime | None = None) -> list[str]:
    sql, params = _where(condition, as_of, None)
    if within is None:
        return [r[0] for r in tx.rows(f"SELECT p.id {sql}", params)]
    found: list[str] = []
    for start in range(0, len(within), _CHUNK):
        chunk = list(within[start:start + _CHUNK])
        found += [r[0] for r in tx.rows(
            f"SELECT p.id {sql} AND p.id IN ({', '.join('?' for _ in chunk)})", (*params, *chunk))]
    return found


def variant(person_id: str, salt: str, split: Sequence[int]) -> str:
    """Deterministic A/B(/C...) group: the same person and salt always land in the same group."""
    bucket = int.from_bytes(hashlib.sha256(f"{salt}:{person_id}".encode()).digest()[:8], "big") % 100
    edge = 0
    for index, share in enumerate(split):
        edge += share
        if bucket < edge:
            return chr(ord("A") + index)
    return chr(ord("A") + len(split) - 1)


#: What a spreadsheet reads as the start of a formula (and the tab/CR that hide one).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(cell: str) -> str:
    """A text cell a spreadsheet shows as text: one starting like a formula gets a leading ``'``
    (an imported name ``=HYPERLINK("http://evil","x")`` must not become a live link at HQ)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def export_csv(db: Database, condition: Condition, *, as_of: datetime | None = None, store: str | None = None,
               salt: str | None = None, split: Sequence[int] = (50, 50), batch: int = 5000) -> Iterator[str]:
    """The whole segment as CSV text chunks, with each person's A/B group when a salt is given."""
    header = ["member_id", "name", "lifecycle", "value_tier", "ltv", "orders"] + (["variant"] if salt else [])
    offset = 0
    buffer = io.StringIO()
    csv.writer(buffer).writerow(header)
    yield buffer.getvalue()
    while True:
        rows = page(db, condition, limit=batch, offset=offset, as_of=as_of, store=store)
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for r in rows:
            writer.writerow([r["id"], formula_safe(r["name"] or ""), formula_safe(r["lifecycle"] or ""),
                             formula_safe(r["value_tier"] or ""), r["ltv"] or 0,
                             r["orders"] or 0] + ([variant(r["id"], salt, split)] if salt else []))
        yield buffer.getvalue()
        offset += batch


def split_counts(db: Database, condition: Condition, *, salt: str, split: Sequence[int],
                 as_of: datetime | None = None, store: str | None = None) -> dict[str, int]:
    sql, params = _where(condition, as_of, store)
    counts: dict[str, int] = {chr(ord("A") + i): 0 for i in range(len(split))}
    for (person,) in db.rows(f"SELECT p.id {sql}", params):
        counts[variant(person, salt, split)] += 1
    return counts



def _facet_counts(db: Database | Tx, condition: Condition | None, at: datetime, store: str | None, *,
                  within: Condition | None = None) -> list[dict[str, dict[str, int]]]:
    """Per facet, per value (``unknown`` for none): how many persons of the segment (``None``: the
    whole base) have it; one grouped pass over the matching persons' profile, stats and home store
    (one per share, added up, when the condition splits: ``_shares``).
    ``within``: in the same pass, also how many of them meet that condition too (a store manager's
    portrait groups their store's base and its segment at once; both rows read one pass, not two)."""
    exprs, head = [], []
    for expr, expr_params in dimensions.FACETS.values():
        exprs.append(expr)
        head += expr_params(at)
    select = ", ".join(f"{e} AS f{i}" for i, e in enumerate(exprs))
    group = ", ".join(f"f{i}" for i in range(len(exprs)))
    counted: list[str] = ["COUNT(*)"]
    marks: list = []  # the params of ``within``, before the WHERE's
    if within is not None:
        counted.append(f"SUM(CASE WHEN {_compile(within, int(at.timestamp()), marks)} THEN 1 ELSE 0 END)")
    sides: list[dict[str, dict[str, int]]] = [{name: {} for name in dimensions.FACETS} for _ in counted]
    for r in _asked(db, condition, at, store, f"{select}, {', '.join(counted)}", head=(*head, *marks),
                    tail=f" GROUP BY {group}", joins=dimensions.FACET_JOINS):
        for i, name in enumerate(dimensions.FACETS):
            key = "unknown" if r[i] in (None, "") else str(r[i])
            for counts, n in zip(sides, r[len(exprs):], strict=True):
                if n:
                    counts[name][key] = counts[name].get(key, 0) + n
    return sides


def store_base(tx: Tx, at: datetime) -> None:
    """Keep the whole base's facet counts as they are now (the nightly tag batch calls this after it
    rewrote every person's stats and profile): a portrait then groups only its segment's persons, not
    the whole base each time (the base's grouping was most of a portrait's cost), and the base's
    counts change only when persons do."""
    tx.execute("DELETE FROM portrait_base")
    tx.copy("portrait_base", ("facet", "value", "persons", "as_of"),
            ((facet, value, n, iso(at)) for facet, values in _facet_counts(tx, None, at, None)[0].items()
             for value, n in values.items()))


def _stored_base(db: Database) -> tuple[dict[str, dict[str, int]], datetime] | None:
    """The base's facet counts the last tag batch kept, and when; None before the first batch."""
    rows = db.rows("SELECT facet, value, persons, as_of FROM portrait_base")
    if not rows:
        return None
    counts: dict[str, dict[str, int]] = {name: {} for name in dimensions.FACETS}
    for facet, value, n, _ in rows:
        counts.setdefault(facet, {})[value] = n
    return counts, datetime.fromisoformat(rows[0][3])


def portrait(db: Database, condition: Condition | None, *, as_of: datetime | None = None,
             store: str | None = None) -> dict:
    """人群画像: the segment against the whole base by city tier, age band, gender, channel (favourite),
    tier and lifecycle; per facet and value: both counts, both shares and the index (segment share /
    base share x 100, TGI). The segment's persons are grouped now; the whole base's counts are the
    ones the last nightly tag batch kept (``base_as_of`` says when), or, before the first batch and
    for a store manager (whose base is their store's people), grouped now as well, the segment
    counted among the base's rows in the same pass (``base_as_of`` null)."""
    at = as_of or datetime.now(UTC)
    stored = _stored_base(db) if store is None else None
    base_as_of: datetime | None = None
    if stored is not None:
        base, base_as_of = stored
        segment = base if condition is None else _facet_counts(db, condition, at, store)[0]
    else:  # the base grouped now, the segment counted among it in the same pass
        base, *among = _facet_counts(db, None, at, store, within=condition)
        segment = among[0] if among else base
    totals = {side: sum(next(iter(counts.values())).values()) for side, counts in (("segment", segment),
                                                                                   ("base", base))}
    facets = {}
    for name in dimensions.FACETS:
        values = []
        for key in sorted(base[name].keys() | segment[name].keys(),
                          key=lambda k: (-base[name].get(k, 0), k)):
            seg, whole = segment[name].get(key, 0), base[name].get(key, 0)
            seg_share = seg / totals["segment"] if totals["segment"] else 0.0
            base_share = whole / totals["base"] if totals["base"] else 0.0
            values.append({"value": key, "segment": seg, "base": whole,
                           "segment_share": round(seg_share, 6), "base_share": round(base_share, 6),
                           "index": round(seg_share / base_share * 100, 1) if base_share else None})
        facets[name] = values
    return {"segment": totals["segment"], "base": totals["base"], "facets": facets, "base_as_of": base_as_of}


class UnknownSegment(NotFound):
    """No saved segment with that id."""

    code = "unknown_segment"


def save(db: Database, name: str, condition: Condition, *, actor: str) -> dict:
    """Save a condition under a name; the saved segment (id, name, condition, created, created_by)."""
    segment_id, created, dumped = new_id(), utcnow(), condition.dump()
    segment = {"id": segment_id, "name": name, "condition": dumped, "created": created, "created_by": actor}
    db.execute(
        "INSERT INTO segments (id, name, condition, created, created_by) VALUES (?, ?, ?, ?, ?)",
        (segment_id, name, json.dumps(dumped, ensure_ascii=False), iso(created), actor))
    return segment


def saved(db: Database, segment_id: str) -> tuple[dict, Condition]:
    """A saved segment's row and its parsed condition. Raises UnknownSegment."""
    row = db.one("SELECT * FROM segments WHERE id = ?", (segment_id,))
    if row is None:
        raise UnknownSegment(f"no segment {segment_id}")
    return row, Condition.model_validate_json(row["condition"])


def listing(db: Database, *, limit: int, offset: int) -> tuple[list[dict], int]:
    """Saved segments, newest first (conditions decoded), and how many there are."""
    with db.transaction() as tx:
        rows = tx.query("SELECT * FROM segments ORDER BY created DESC, id LIMIT ? OFFSET ?", (limit, offset))
        total = tx.scalar("SELECT COUNT(*) FROM segments")
    return [{**r, "condition": json.loads(r["condition"])} for r in rows], total
