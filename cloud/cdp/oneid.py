"""OneID: source records linked into persons by hard identifiers, explainably and reversibly.

Every source record (a counter sign-up, a Tmall buyer, a POS card holder) is a row of ``members``
with its identifiers. Hard identifiers (phone, unionid, member card, platform buyer ids) link
records that share a value; soft ones (face, device MAC) never link anything, they only attach
sightings. Each candidate link is stored with the rule (identifier kind, priority) that made it
and its outcome, so a person can be explained, split and replayed:

* rules are applied in priority order; a link that would give a person more values of a kind than
  the rule allows (two member cards) is rejected, so the stronger evidence wins;
* a value on the blocklist (empty, masked ``138****1234``, placeholders such as ``00000000000``)
  or shared by more records than the rule's ``max_share`` links nobody: that is what stops one
  shared phone or device from swallowing thousands of customers into a super-cluster;
* a split stores a cannot-link pair, honoured by every later resolution; a manual merge stores a
  manual link.

Resolution is union-find over the candidate links. It runs on the components touched by new
records (incremental, at every import and sign-up) or over everything (``rebuild``, after a rule
change: replay). A person's id is its earliest record's id; the other records point at it with
``merged_into``, so no id handed out ever dangles and a split simply clears the pointer.
"""

from __future__ import annotations

import functools
import gc
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from itertools import repeat
from typing import ClassVar, ParamSpec, TypeVar
from uuid import uuid4

from cloud.cdp import purchases
from cloud.db import Database, Tx
from cloud.db.database import POSTGRES
from cloud.errors import CodedError

_ONEID_LOCK = 0x1D5C1
_P = ParamSpec("_P")
_R = TypeVar("_R")
#: A sign-up's identifiers held back until its phone is verified (``cloud.cdp.members``): they link
#: nobody, and no blocklist replay releases them.
UNVERIFIED = "unverified"
MANUAL_PRIORITY = 1000
#: links an operator decided: a manual merge (still bound by the per-person limits) and a review
#: merge of a conflict (not bound by them: the operator saw both sides' evidence)
_DECIDED = ("manual", "review")
#: the blocked reason of a value a conflict decision assigned to another record (kept by reclassify)
CONFLICT_BLOCK = "conflict:"
_CHUNK = 500
#: a rebuild that moves at least 1/_RESTATED of the records re-reads the planner's statistics
_RESTATED = 10
_NOTHING: frozenset[str] = frozenset()
_NO_VALUES: dict[str, set[str]] = {}

#: SQL for the person a stored member id belongs to now (``members`` aliased ``m``).
PERSON_OF = "COALESCE(m.merged_into, m.id)"


class IdentityError(CodedError):
    """A OneID operation refused: unknown link or member (404), or a merge, split or rule that cannot be."""

    status = HTTPStatus.CONFLICT
    statuses: ClassVar[dict[str, int]] = {
        "unknown_link": HTTPStatus.NOT_FOUND, "unknown_member": HTTPStatus.NOT_FOUND,
        "hard_identifier": HTTPStatus.UNPROCESSABLE_ENTITY, "bad_pattern": HTTPStatus.UNPROCESSABLE_ENTITY,
    }


@dataclass(frozen=True)
class Rule:
    kind: str
    hard: bool
    priority: int
    max_per_person: int
    max_share: int
    enabled: bool


@dataclass
class _Contest:
    """A group of records sharing a value whose union would break a per-person limit."""

    kind: str
    value: str
    reason: str
    sides: list[list[str]]  # each side's records holding the value
    floating: dict[str, str | None]  # a record holding no limited value -> the record it stayed with


@dataclass
class Resolution:
    records: int = 0
    links: int = 0
    rejected: int = 0
    changed_persons: set[str] = field(default_factory=set)
    moved: int = 0  # records whose person changed
    seconds: float = 0.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def rules(tx: Tx | Database) -> dict[str, Rule]:
    return {
        r["kind"]: Rule(r["kind"], bool(r["hard"]), r["priority"], r["max_per_person"], r["max_share"], bool(r["enabled"]))
        for r in tx.query("SELECT * FROM link_rules")
    }


def set_rule(tx: Tx | Database, rule: Rule) -> None:
    tx.execute(
        "INSERT INTO link_rules (kind, hard, priority, max_per_person, max_share, enabled) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (kind) DO UPDATE SET hard = excluded.hard, priority = excluded.priority, "
        "max_per_person = excluded.max_per_person, max_share = excluded.max_share, enabled = excluded.enabled",
        (rule.kind, rule.hard, rule.priority, rule.max_per_person, rule.max_share, rule.enabled),
    )


class Blocklist:
    """Values that identify nobody; patterns are regular expressions per kind (``*`` = any kind)."""

    def __init__(self, entries: Iterable[tuple[str, str, str]]) -> None:
        self._entries = [(kind, re.compile(pattern, re.IGNORECASE), reason) for kind, pattern, reason in entries]

    @classmethod
    def load(cls, tx: Tx | Database) -> Blocklist:
        return cls(tx.rows("SELECT kind, pattern, reason FROM blocklist ORDER BY id"))

    def reason(self, kind: str, value: str) -> str | None:
        for entry_kind, pattern, reason in self._entries:
            if entry_kind in ("*", kind) and pattern.search(value):
                return reason
        return None


def add_identifiers(
    tx: Tx, member_id: str, pairs: Iterable[tuple[str, str]], *, blocklist: Blocklist | None = None
) -> None:
    blocklist = blocklist or Blocklist.load(tx)
    now = _now()
    tx.executemany(
        "INSERT INTO identifiers (member_id, kind, value, blocked, created) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [(member_id, kind, value, blocklist.reason(kind, value), now) for kind, value in pairs],
    )


def _lock(tx: Tx) -> None:
    """Identity writes are serialised across processes: two imports must not race one cluster."""
    if tx.dialect is POSTGRES:
        tx.execute("SELECT pg_advisory_xact_lock(?)", (_ONEID_LOCK,))


lock = _lock


def _in(ids: Sequence[str]) -> str:
    return ", ".join("?" for _ in ids)


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def resolve_around(tx: Tx, member_ids: Sequence[str], *, actor: str) -> Resolution:
    """Incremental: re-resolve the persons of these records and of every record sharing a value."""
    _lock(tx)
    active = rules(tx)
    hard = [k for k, r in active.items() if r.hard and r.enabled]
    if not hard or not member_ids:
        return Resolution()
    persons: set[str] = set()
    for test, chunk in tx.among(list(member_ids)):
        heads, shared = tx.reads(
            (f"SELECT COALESCE(merged_into, id) AS person FROM members WHERE id {test}", chunk),
            (f"SELECT i.kind, i.value FROM identifiers i WHERE i.member_id {test} AND i.blocked IS NULL "
             f"AND i.kind IN ({_in(hard)})", (*chunk, *hard)))
        persons.update(r["person"] for r in heads)
        persons.update(_sharing(tx, {(r["kind"], r["value"]) for r in shared}, active))
    # links refused or held for review at an earlier resolution: their blocker may have changed
    # (a split, an assigned value, a record gone), so their other side is revisited too. The
    # records are read once and the other sides' persons in one query (they were read again, and
    # each side's person asked alone: two round trips a link)
    records = _cluster_records(tx, sorted(persons))
    inside = set(records)
    others = sorted({x for test, chunk in tx.among(records) for link in tx.rows(
        f"SELECT a, b FROM links WHERE status IN ('rejected', 'review') AND reason <> 'value_too_common' "
        f"AND (a {test} OR b {test})", (*chunk, *chunk)) for x in link if x not in inside})
    more = {r[0] for test, chunk in tx.among(others) for r in tx.rows(
        f"SELECT COALESCE(merged_into, id) FROM members WHERE id {test}", chunk)} - persons
    return _resolve(tx, records + _cluster_records(tx, sorted(more)), actor=actor, active=active)


def _sharing(tx: Tx, pairs: set[tuple[str, str]], active: dict[str, Rule]) -> set[str]:
    """The persons of every record holding one of these (kind, value) pairs, leaving out values
    held by more records than their rule's ``max_share`` (too common to link by).

    Two queries (``Tx.among``: a count, then the holders of the values not too common) instead
    of one query per value: an order batch of 200 buyers made 400 round trips here."""
    kinds = sorted({kind for kind, _ in pairs})
    common = {(kind, value) for test, values in tx.among(sorted({value for _, value in pairs}))
              for kind, value, n in tx.rows(
                  "SELECT i.kind, i.value, COUNT(*) FROM identifiers i JOIN members m ON m.id = i.member_id "
                  f"WHERE i.blocked IS NULL AND i.kind IN ({_in(kinds)}) AND i.value {test} "
                  "GROUP BY i.kind, i.value", (*kinds, *values)) if n > active[kind].max_share}
    usable = sorted({value for kind, value in pairs if (kind, value) not in common})
    return {person for test, values in tx.among(usable) for kind, value, person in tx.rows(
        "SELECT i.kind, i.value, COALESCE(m.merged_into, m.id) FROM identifiers i JOIN members m "
        f"ON m.id = i.member_id WHERE i.blocked IS NULL AND i.kind IN ({_in(kinds)}) AND i.value {test}",
        (*kinds, *values)) if (kind, value) in pairs and (kind, value) not in common}


def _identifier_rows(tx: Tx, records: Sequence[str]) -> list[tuple[str, str, str, str]]:
    """(kind, value, record, record's created) of these records' usable identifiers."""
    return [row for test, chunk in tx.among(records) for row in tx.rows(
        "SELECT i.kind, i.value, i.member_id, m.created FROM identifiers i JOIN members m ON m.id = i.member_id "
        f"WHERE i.member_id {test} AND i.blocked IS NULL", chunk)]


def _cluster_records(tx: Tx, persons: Sequence[str]) -> list[str]:
    return [r[0] for test, chunk in tx.among(list(persons)) for r in tx.rows(
        f"SELECT id FROM members WHERE id {test} OR merged_into {test}", (*chunk, *chunk))]


def _resolve_persons(tx: Tx, persons: Sequence[str], *, actor: str, active: dict[str, Rule]) -> Resolution:
    return _resolve(tx, _cluster_records(tx, persons), actor=actor, active=active)


def rebuild(db: Database, *, actor: str) -> Resolution:
    """Replay: re-resolve everything, after re-checking identifiers if the blocklist changed.

    Identifiers are checked against the blocklist when they arrive, so only a blocklist change
    (``add_block``) makes the full re-check necessary.
    """
    with db.transaction() as tx:
        _lock(tx)
        if tx.scalar("SELECT value FROM settings WHERE key = 'blocklist_changed'"):
            reclassify(tx)
            tx.execute("DELETE FROM settings WHERE key = 'blocklist_changed'")
        result = _resolve(tx, None, actor=actor, active=rules(tx))
        if result.moved and result.moved * _RESTATED >= result.records:
            # statistics taken before these merges (a bulk load's, all heads empty) tell SQLite's
            # planner that every record shares one ``merged_into``, so each person's read (``id = ?
            # OR merged_into = ?``: the profile, the tags, the next import's OneID) became a scan of
            # every record; re-reading them costs ~2% of the rebuild
            tx.execute("ANALYZE members")
        return result


def reclassify(tx: Tx) -> int:
    """Apply the current blocklist to every stored identifier; the number of flags changed."""
    blocklist = Blocklist.load(tx)
    changes = [
        (reason, row_id)
        for row_id, kind, value, blocked in tx.rows("SELECT id, kind, value, blocked FROM identifiers")
        if blocked != UNVERIFIED and not (blocked or "").startswith(CONFLICT_BLOCK)  # a review decision
        and (reason := blocklist.reason(kind, value)) != blocked
    ]
    tx.executemany("UPDATE identifiers SET blocked = ? WHERE id = ?", changes)
    return len(changes)


def _without_cycle_collection(resolve: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``resolve`` with Python's cycle collector paused. A resolution allocates a few small
    containers per record (groups, values, members, links) and frees them all at the end, none in a
    cycle; with the collector on, each allocation burst started another pass over every object
    alive, about a quarter of a full rebuild's CPU at 100k persons (more, the more objects live)."""

    @functools.wraps(resolve)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return resolve(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        """A root is never a key of ``parent``: most records asked are roots, answered by one lookup."""
        parent = self.parent
        root = parent.get(x)
        if root is None:
            return x
        while (up := parent.get(root)) is not None:
            root = up
        while x != root:
            parent[x], x = root, parent[x]
        return root


class _Holders:
    """Who holds which identifier, from (kind, value, record, record's created) rows: the groups of
    records sharing a hard value (as (created, record), earliest first once sorted), each record's
    created and its values of the limited kinds. Rows are taken as they come, so a full
    rebuild walks them while the server is still sending the rest (``Tx.stream``)."""

    def __init__(self, hard: set[str], limited: set[str]) -> None:
        self.limited = limited
        # each hard kind's values -> their first holder, and a group only once a second holds one: most
        # values (2.55M of 3.1M at 1M persons) are held by one record. A (kind, value) key and a
        # (created, record) holder were two tuples a row (the 1M full rebuild's read peaked at 2.25 GB
        # with them, 1.92 GB without, on the same rows); both are built for a shared value's holders only
        self.first_holder: dict[str, dict[str, str]] = {kind: {} for kind in hard}
        self.groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.created_of: dict[str, str] = {}
        self.values: dict[str, dict[str, set[str]]] = {}  # a record (then a component's root) -> its limited values

    def read(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        limited = self.limited  # locals: this loop runs once per identifier row
        first_holder, groups, created_of, values = self.first_holder, self.groups, self.created_of, self.values
        for kind, value, member_id, created in rows:
            created_of[member_id] = created
            if (holders := first_holder.get(kind)) is not None:  # a hard kind
                if (earlier := holders.setdefault(value, member_id)) != member_id:
                    if (group := groups.get(key := (kind, value))) is None:
                        groups[key] = [(created_of[earlier], earlier), (created, member_id)]
                    else:
                        group.append((created, member_id))
                if kind in limited:  # kept for every record read: only those in a group are ever looked up
                    # no ``setdefault``: its default, a new dict and a new set, was built for every row
                    if (own := values.get(member_id)) is None:
                        values[member_id] = {kind: {value}}
                    elif (of_kind := own.get(kind)) is None:
                        own[kind] = {value}
                    else:
                        of_kind.add(value)


@_without_cycle_collection
def _resolve(tx: Tx, records: list[str] | None, *, actor: str, active: dict[str, Rule]) -> Resolution:
    """Union-find over the candidate links among ``records`` (None = every record)."""
    started = time.perf_counter()
    limited = {k for k, r in active.items() if r.hard and r.enabled and r.max_per_person > 0}
    hard = {k for k, r in active.items() if r.hard and r.enabled}
    scope = None if records is None else set(records)
    if scope is not None and not scope:
        return Resolution()

    # 1. candidate links an operator decided: manual and review-merge pairs, applied first
    decided = f"rule IN ({_in(_DECIDED)}) AND status = 'active'"
    if scope is None:
        manual = tx.rows(f"SELECT id, a, b, rule FROM links WHERE {decided}", _DECIDED)
    else:  # by the scope's records (links_a), not a scan of every link: an import resolves per batch
        manual = [row for test, chunk in tx.among(sorted(scope)) for row in tx.rows(
            f"SELECT id, a, b, rule FROM links WHERE a {test} AND {decided}", (*chunk, *_DECIDED))]
    pairs: list[tuple[str, str, str]] = [(a, b, rule) for _, a, b, rule in sorted(manual)
                                         if scope is None or (a in scope and b in scope)]

    # 2. the identifier rows of every record that may link: the scope's, or on a full rebuild every
    #    record's, walked as they come (then the decided pairs' records that had none). The records
    #    sharing a value were found in SQL first (a grouping of every identifier, a join and a DISTINCT
    #    sort before the first row), which kept the records that link nobody out of Python but left it
    #    idle for the first 4-6 s of the read: at 1M persons the first resolution read the sharers' 2.75M
    #    rows in 12.3-13.0 s and reads all 3.8M in 10.4-10.7 s (PostgreSQL, where the larger maps give
    #    0.6-2 s of it back to the union-find; SQLite's whole first resolution 82.1, 88.3 -> 72.8, 74.2 s),
    #    so the walk finds the shared values itself
    holders = _Holders(hard, limited)
    if scope is None:
        if tx.dialect is POSTGRES:
            # one Python walk takes the rows: workers would only take the core it runs on; back to the
            # server's setting right after
            tx.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        holders.read(tx.stream("SELECT i.kind, i.value, i.member_id, m.created FROM identifiers i "
                               "JOIN members m ON m.id = i.member_id WHERE i.blocked IS NULL"))
        if tx.dialect is POSTGRES:
            tx.execute("SET LOCAL max_parallel_workers_per_gather TO DEFAULT")
        if decided_records := {m for a, b, _ in pairs for m in (a, b)}:
            holders.read(_identifier_rows(tx, sorted(decided_records - holders.created_of.keys())))
    else:
        holders.read(_identifier_rows(tx, sorted(scope)))
    groups, created_of, values = holders.groups, holders.created_of, holders.values

    # 3. each group of records sharing a value is a candidate link, strongest rule first (the group's
    #    earliest record links to every other)
    # -priority, kind, value, records (earliest first): sorted as they stand, strongest rule first, with no
    # key function building a tuple per group (half a million groups at 1M persons)
    linkable: list[tuple[int, str, str, list[str]]] = []
    too_common: list[tuple[str, str, str, str]] = []
    for (kind, value), sharing in groups.items():
        sharing.sort()
        first = sharing[0][1]
        if len(sharing) > active[kind].max_share:
            too_common += [(kind, value, first, m) for _, m in sharing[1:]]
            continue
        linkable.append((-active[kind].priority, kind, value, [m for _, m in sharing]))
    linkable.sort()  # (kind, value) is unique, so the records' lists are never compared

    # every group's records came with their created; a decided pair's record holding no identifier did not
    missing = sorted({m for a, b, _ in pairs for m in (a, b)} - created_of.keys())
    for test, chunk in tx.among(missing):
        created_of.update(tx.rows(f"SELECT id, created FROM members WHERE id {test}", chunk))

    # only the pairs among the records that may link: with none, ``union`` skips the test. The set of
    # those records (1.2M at 1M persons) is built only when there are pairs to sift
    blocked_pairs: dict[str, set[str]] = defaultdict(set)
    if cannot := tx.rows("SELECT a, b FROM cannot_link"):
        involved = {m for g in linkable for m in g[3]} | {m for a, b, _ in pairs for m in (a, b)}
        for a, b in cannot:
            if a in involved and b in involved:
                blocked_pairs[a].add(b)
                blocked_pairs[b].add(a)

    if scope is None:
        old_head = dict(tx.rows("SELECT id, merged_into FROM members WHERE merged_into IS NOT NULL"))
    else:
        old_head = {}
        for test, chunk in tx.among(sorted(scope)):
            old_head.update(tx.rows(
                f"SELECT id, merged_into FROM members WHERE merged_into IS NOT NULL AND id {test}", chunk))

    # 3. union-find with per-person limits and cannot-link pairs; a group whose records would give
    #    one person two values of a limited kind (one phone on two member cards) is a conflict: its
    #    sides stay apart, records holding no such value stay with the side they were with before
    #    (never moving history), and the candidate links wait in ``identity_conflicts``
    uf = _UnionFind()
    members_of: dict[str, list[str]] = {}
    outcome: list[tuple[str, str, str, str, str, int, str, str | None]] = []
    contested: list[_Contest] = []

    def union(a: str, b: str, *, check_limits: bool) -> str | None:
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            return None
        ma, mb = members_of.get(ra, [ra]), members_of.get(rb, [rb])
        if blocked_pairs and any(x in blocked_pairs and blocked_pairs[x] & set(mb) for x in ma):
            return "cannot_link"
        if check_limits:
            va, vb = values.get(ra, _NO_VALUES), values.get(rb, _NO_VALUES)
            for limited_kind in sorted(limited):  # the first broken kind names the refusal, whatever the hash seed
                if len(va.get(limited_kind, _NOTHING) | vb.get(limited_kind, _NOTHING)) > active[limited_kind].max_per_person:
                    return f"limit:{limited_kind}"
        big, small = (ra, rb) if len(ma) >= len(mb) else (rb, ra)
        uf.parent[small] = big
        ma.extend(mb)  # ra's list (or a new one) grown in place: ``ma + mb`` copied both sides each union
        members_of[big] = ma
        members_of.pop(small, None)
        if moving := values.pop(small, None):
            into = values.setdefault(big, {})
            for k, vals in moving.items():
                into.setdefault(k, set()).update(vals)
        return None

    # 4. the links that explain it, in place of the rule links stored for this scope: each goes to the
    #    engine as the union-find makes it (``Tx.copying``), so PostgreSQL inserts a first rebuild's 680k
    #    links and both their indexes while Python resolves the rest, where the COPY used to wait for the
    #    records' moves and then run alone (5-6 s of the server's at 1M persons on a slow day)
    now = _now()
    rule_links = _RuleLinks(_stored_links(tx, scope))
    with tx.copying("links", (*_LINK, "created", "actor")) as write_link:
        sent = 0

        def send() -> int:  # the rule links made since the last call; returns how many are made in all
            for link in rule_links.new(o for o in outcome[sent:] if o[4] not in _DECIDED):
                write_link((*link, now, actor))
            return len(outcome)

        for a, b, rule in pairs:
            reason = union(a, b, check_limits=rule != "review")
            outcome.append((a, b, "manual", "", rule, MANUAL_PRIORITY, "active" if reason is None else "rejected", reason))
        for rank, kind, value, records_ in linkable:
            if len(outcome) - sent >= _LINKS_SENT_TOGETHER:
                sent = send()
            priority, first = -rank, records_[0]
            roots = list(dict.fromkeys(uf.find(m) for m in records_))
            violated: list[str] = []
            if len(roots) > 1:  # the union is only built when the sizes alone could break the limit
                held = [values[r] for r in roots if r in values]
                counts: dict[str, int] = {}
                for v in held:
                    for k, vals in v.items():
                        counts[k] = counts.get(k, 0) + len(vals)
                violated = sorted(k for k, n in counts.items() if n > active[k].max_per_person and len(
                    set().union(*(v.get(k, _NOTHING) for v in held))) > active[k].max_per_person)
            if not violated:  # then no union of the group's parts breaks a limit either: not checked again
                for m in records_[1:]:
                    reason = union(first, m, check_limits=False)
                    outcome.append((first, m, kind, value, kind, priority, "active" if reason is None else "rejected", reason))
                continue
            reason = "conflict:" + ",".join(f"limit:{k}" for k in violated)
            foreign = {r: any(values.get(r, _NO_VALUES).get(k, _NOTHING) - ({value} if k == kind else set())
                              for k in violated) for r in roots}
            sides = [r for r in roots if foreign[r]]
            in_group = {r: [m for m in records_ if uf.find(m) == r] for r in roots}
            side_records = [in_group[r] for r in sides]

            def old_persons(root: str) -> set[str]:
                return {old_head.get(m, m) for m in members_of.get(root, [root])}

            attached: dict[str, str | None] = {}
            for r in roots:
                if foreign[r]:
                    continue
                mine = old_persons(r)
                homes = [s for s in sides if old_persons(s) & mine] if len(sides) > 1 else sides
                target = homes[0] if len(homes) == 1 else None
                for m in in_group[r]:
                    attached[m] = None
                if target is not None:
                    anchor = in_group[target][0]
                    why = union(anchor, in_group[r][0], check_limits=False)
                    for m in in_group[r]:
                        attached[m] = anchor if why is None else None
                        outcome.append((anchor, m, kind, value, kind, priority, "active" if why is None else "rejected",
                                        None if why is None else why))
                else:
                    outcome += [(side_records[0][0] if side_records else first, m, kind, value, kind, priority, "review",
                                 reason) for m in in_group[r]]
            for s in sides[1:]:
                outcome.append((side_records[0][0], in_group[s][0], kind, value, kind, priority, "review", reason))
            def kept_apart(x: str, y: str) -> bool:  # a keep-apart decision (or a split) already stands
                other = set(members_of.get(y, [y]))
                return any(blocked_pairs.get(m, set()) & other for m in members_of.get(x, [x]))

            apart = any(not kept_apart(sides[i], sides[j]) for i in range(len(sides)) for j in range(i + 1, len(sides)))
            if apart or any(v is None for v in attached.values()):
                contested.append(_Contest(kind, value, reason, side_records, attached))
        too_common.sort(key=lambda t: (t[0], t[1]))  # by value, each value's records as they came (earliest first)
        outcome += [(a, b, k, v, k, active[k].priority, "rejected", "value_too_common") for k, v, a, b in too_common]
        send()
    for test, chunk in tx.among(rule_links.stale()):
        tx.execute(f"DELETE FROM links WHERE id {test}", chunk)
    settled = {(g[1], g[2]) for g in linkable} - {(c.kind, c.value) for c in contested}

    # 5. each component's person is its earliest record
    new_head: dict[str, str] = {}
    for members in members_of.values():
        head = min(zip(map(created_of.get, members, repeat("")), members))[1]  # earliest (created, id), in C
        for m in members:
            if m != head:
                new_head[m] = head
    # the records whose head differs: one lookup a record with a head, no union of the two maps' keys
    moved = sorted([m for m, head in new_head.items() if old_head.get(m) != head]
                   + [m for m in old_head if m not in new_head])
    changes = [(new_head.get(m), m) for m in moved]

    def move() -> None:  # the records to their persons, and segments' per-person purchase facts with them
        _move_heads(tx, changes)
        purchases.follow(tx, old_head, new_head, moved)

    # 6. the audit of what changed, worked out here while the engine moves the records (at 1M persons, a
    #    first rebuild's 35 s of writes on PostgreSQL)
    with tx.aside(move) if changes else nullcontext():  # most resolutions move nobody: no thread
        audit, changed = _audit_rows(old_head, new_head, moved, actor, now)
        # what only the union-find read is emptied here, while the engine works: left to the return, the
        # millions of small objects of a 1M first rebuild took ~2 s of its wall to free (py-spy)
        for done in (holders.first_holder, groups, created_of, values, uf.parent, members_of, linkable):
            done.clear()
    for a, b, _, _, rule, _, st, reason in outcome:
        if rule in _DECIDED:
            tx.execute("UPDATE links SET status = ?, reason = ? WHERE rule = ? AND a = ? AND b = ? "
                       "AND status <> 'split'", (st, reason, rule, a, b))
    _queue_conflicts(tx, contested, settled, now)

    # 7. the audit, and let face galleries re-read owners
    tx.copy("audit", ("ts", "actor", "action", "person_id", "detail"), audit)
    if changed:
        tx.execute("UPDATE gallery_state SET epoch = epoch + 1 WHERE id = 1")
    accepted = sum(1 for o in outcome if o[6] == "active")
    return Resolution(
        records=len(scope) if scope is not None else int(tx.scalar("SELECT COUNT(*) FROM members")),
        links=accepted, rejected=len(outcome) - accepted, changed_persons=changed, moved=len(changes),
        seconds=time.perf_counter() - started,
    )


def _move_heads(tx: Tx, changes: list[tuple[str | None, str]]) -> None:
    """Point each record at its new head (``(head or None, record)`` pairs, in record id order), in
    one statement: a first rebuild moves a third of the records, and one statement per record cost
    PostgreSQL a round trip each (a fifth of the rebuild's wall at 250k: 169,933 updates 23.2, 23.9 s
    against 10.4, 12.5 s as one ``UPDATE ... FROM`` the pairs as arrays; h15w) and SQLite as much in
    Python's per-row binding as in its own work (1.9-2.0 s CPU against 1.4-1.8 s as one ``UPDATE ...
    FROM`` the pairs as one JSON array, in id order, so each row is found next to the last one's;
    h15s). Both are ``Tx.values``."""
    for relation, params in tx.values(changes, ("text", "text")):
        tx.execute(f"UPDATE members AS m SET merged_into = v.column1 FROM {relation} WHERE m.id = v.column2", params)


_LINK = ("a", "b", "kind", "value", "rule", "priority", "status", "reason")
#: the union-find hands its links to the COPY in lists of about this many (one check a group)
_LINKS_SENT_TOGETHER = 10_000


def _stored_links(tx: Tx, scope: set[str] | None) -> list[tuple]:
    """The rule links stored for ``scope``'s records (None = every record), as ``(id, *_LINK)``.
    Split links and decided ones are not rule links."""
    kept = f"status <> 'split' AND rule NOT IN ({_in(_DECIDED)})"
    read = f"SELECT id, {', '.join(_LINK)} FROM links WHERE {kept}"
    if scope is None:
        return tx.rows(read, _DECIDED)
    return [row for test, chunk in tx.among(sorted(scope)) for row in tx.rows(f"{read} AND a {test}",
                                                                              (*_DECIDED, *chunk))]


class _RuleLinks:
    """The rule links a resolution makes, against those stored for its scope, link by link as the
    union-find makes them: a link stored as it is made keeps its row, its ``created`` and its
    ``actor``; a new one is written; a stored one no longer made, or made differently, is stale and
    goes. Deleting and copying them all again made a replay that moves nobody rewrite every link
    (680k at 1M persons, and both of their indexes)."""

    def __init__(self, stored: list[tuple]) -> None:
        self.ids_of: dict[tuple, list[int]] = defaultdict(list)
        for row in stored:
            self.ids_of[row[1:]].append(row[0])

    def new(self, links: Iterable[tuple]) -> Iterator[tuple]:
        """Those of ``links`` (``_LINK`` tuples) not stored as they are."""
        ids_of = self.ids_of
        if not ids_of:  # nothing stored (a first rebuild): every link is new, none is hashed to look
            yield from links
            return
        for link in links:
            if ids_of.get(link):
                ids_of[link].pop()  # stays as stored
            else:
                yield link

    def stale(self) -> list[int]:
        """The ids of the stored links not made, once every made link has been through ``new``."""
        return sorted(i for ids in self.ids_of.values() for i in ids)


def _queue_conflicts(tx: Tx, contested: list[_Contest], settled: set[tuple[str, str]], now: str) -> None:
    """Open (or refresh) a review item per contested value; clear the open ones no longer contested.

    A decided item whose records cover the group's stands (its decision is in the links, the
    cannot-link pairs or the blocked values, all kept by a rebuild): it is not reopened.
    """
    open_rows = tx.query("SELECT id, kind, value FROM identity_conflicts WHERE status = 'open'")
    cleared = [(now, r["id"]) for r in open_rows if (r["kind"], r["value"]) in settled]
    tx.executemany("UPDATE identity_conflicts SET status = 'cleared', updated = ? WHERE id = ?", cleared)
    for c in contested:
        records = {m for side in c.sides for m in side} | set(c.floating)
        sides, floating = json.dumps(c.sides), json.dumps(c.floating, sort_keys=True)
        existing = tx.query("SELECT id, status, sides, floating FROM identity_conflicts WHERE kind = ? AND value = ? "
                            "ORDER BY id DESC", (c.kind, c.value))
        current = next((r for r in existing if r["status"] == "open"), None)
        if current is not None:
            tx.execute("UPDATE identity_conflicts SET sides = ?, floating = ?, reason = ?, updated = ? WHERE id = ?",
                       (sides, floating, c.reason, now, current["id"]))
            continue
        if any(records <= ({m for side in json.loads(r["sides"]) for m in side} | set(json.loads(r["floating"])))
               for r in existing):
            continue  # decided before, and nobody new joined
        tx.execute("INSERT INTO identity_conflicts (kind, value, reason, sides, floating, status, created, updated) "
                   "VALUES (?, ?, ?, ?, ?, 'open', ?, ?)", (c.kind, c.value, c.reason, sides, floating, now, now))


def _audit_rows(old: dict[str, str], new: dict[str, str], moved: Iterable[str], actor: str,
                now: str) -> tuple[list[tuple], set[str]]:
    """The audit rows of the ``moved`` records (those whose head differs between ``old`` and ``new``),
    and the persons changed. Only they are walked: every record with a head, old or new, was (a replay
    moving nobody walked them all for nothing)."""
    merged: dict[str, set[str]] = defaultdict(set)
    split: dict[str, set[str]] = defaultdict(set)
    for record in moved:
        before, after = old.get(record, record), new.get(record, record)
        if after != record:
            merged[after].add(before)
        if before != record:
            split[before].add(record)
    rows = [(now, actor, "merge", person, json.dumps({"absorbed": sorted(ids - {person})}))
            for person, ids in merged.items() if ids - {person}]
    rows += [(now, actor, "split", person, json.dumps({"records": sorted(ids)})) for person, ids in split.items()]
    return rows, set(merged) | set(split) | {r for ids in merged.values() for r in ids}


# operator actions ------------------------------------------------------------------------------


def split_link(db: Database, link_id: int, *, actor: str, reason: str) -> Resolution:
    """Undo a merge: these two records are not the same person, now and in every replay."""
    with db.transaction() as tx:
        _lock(tx)
        link = tx.one("SELECT * FROM links WHERE id = ?", (link_id,))
        if link is None:
            raise IdentityError("unknown_link", f"no link {link_id}")
        if link["status"] != "active":
            raise IdentityError("not_active", f"link {link_id} is {link['status']}, not active")
        tx.execute("UPDATE links SET status = 'split', reason = ?, actor = ? WHERE id = ?", (reason, actor, link_id))
        tx.execute("INSERT INTO cannot_link (a, b, created, actor) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                   (link["a"], link["b"], _now(), actor))
        tx.execute("INSERT INTO audit (ts, actor, action, person_id, detail) VALUES (?, ?, 'split_link', ?, ?)",
                   (_now(), actor, _person(tx, link["a"]), json.dumps({"link": link_id, "reason": reason,
                                                                       "a": link["a"], "b": link["b"]})))
        persons = {_person(tx, link["a"]), _person(tx, link["b"])}
        return _resolve_persons(tx, sorted(p for p in persons if p), actor=actor, active=rules(tx))


def merge(db: Database, a: str, b: str, *, actor: str, reason: str) -> Resolution:
    """A manual link, as strong as any rule; refused when it breaks a per-person limit."""
    with db.transaction() as tx:
        _lock(tx)
        pa, pb = _person(tx, a), _person(tx, b)
        if pa is None or pb is None:
            raise IdentityError("unknown_member", f"no live member {a if pa is None else b}")
        if pa == pb:
            raise IdentityError("already_merged", f"{a} and {b} are already one person")
        tx.execute("DELETE FROM cannot_link WHERE (a = ? AND b = ?) OR (a = ? AND b = ?)", (a, b, b, a))
        tx.execute("INSERT INTO links (a, b, kind, value, rule, priority, status, reason, created, actor) "
                   "VALUES (?, ?, 'manual', '', 'manual', ?, 'active', ?, ?, ?)",
                   (a, b, MANUAL_PRIORITY, reason, _now(), actor))
        result = _resolve_persons(tx, [pa, pb], actor=actor, active=rules(tx))
        if _person(tx, a) != _person(tx, b):
            why = tx.scalar("SELECT reason FROM links WHERE rule = 'manual' AND a = ? AND b = ? ORDER BY id DESC",
                            (a, b))
            raise IdentityError("merge_refused", f"{a} and {b} cannot be one person: {why}")
        # HQ's explicit merge is the other proof an unverified sign-up's identifiers wait for
        tx.execute("UPDATE identifiers SET blocked = NULL WHERE blocked = ? AND member_id IN (?, ?)", (UNVERIFIED, a, b))
        return result


def _person(tx: Tx, member_id: str) -> str | None:
    return tx.scalar("SELECT COALESCE(merged_into, id) FROM members WHERE id = ?", (member_id,))


def graph(db: Database, person: str) -> dict:
    """The person's records, identifiers, links (accepted, rejected, split) and soft sightings."""
    with db.transaction() as tx:
        records = tx.query(
            "SELECT id, source, source_key, name, created FROM members WHERE id = ? OR merged_into = ? "
            "ORDER BY created, id", (person, person))
        ids = [r["id"] for r in records]
        identifiers, links, sightings = [], [], []
        for chunk in _chunks(ids):
            identifiers += tx.query(
                f"SELECT member_id, kind, value, blocked FROM identifiers WHERE member_id IN ({_in(chunk)}) "
                "ORDER BY member_id, kind, value", chunk)
            links += tx.query(
                f"SELECT id, a, b, kind, value, rule, priority, status, reason, created, actor FROM links "
                f"WHERE a IN ({_in(chunk)}) OR b IN ({_in(chunk)}) ORDER BY id", (*chunk, *chunk))
            sightings += tx.query(
                f"SELECT member_id, kind, value, score, store, ts FROM sightings WHERE member_id IN ({_in(chunk)}) "
                "ORDER BY ts DESC LIMIT 100", chunk)
    return {"person_id": person, "records": records, "identifiers": identifiers, "links": links,
            "sightings": sightings}


def add_sighting(db: Database, member_id: str, *, kind: str, value: str, score: float, store: str | None,
                 ts: datetime) -> None:
    """Soft evidence (a face match, a device MAC hash seen in store): attached, never merging."""
    with db.transaction() as tx:
        if rules(tx).get(kind, Rule(kind, False, 0, 0, 0, True)).hard:
            raise IdentityError("hard_identifier", f"{kind} is a hard identifier, not a sighting")
        tx.execute("INSERT INTO sightings (member_id, kind, value, score, store, ts) VALUES (?, ?, ?, ?, ?, ?)",
                   (member_id, kind, value, score, store, ts.astimezone(UTC).isoformat()))


def new_record_id() -> str:
    return uuid4().hex


def add_block(db: Database, kind: str, pattern: str, reason: str) -> None:
    """Block values matching ``pattern`` for ``kind`` (``*`` = all); applies to everyone at the next rebuild."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise IdentityError("bad_pattern", f"not a regular expression: {exc}") from None
    with db.transaction() as tx:
        tx.execute("INSERT INTO blocklist (kind, pattern, reason) VALUES (?, ?, ?)", (kind, pattern, reason))
        tx.execute("INSERT INTO settings (key, value) VALUES ('blocklist_changed', '1') ON CONFLICT (key) DO NOTHING")


def audit_trail(db: Database, *, person: str | None, limit: int, offset: int) -> list[dict]:
    """The identity audit, newest first (one person's, or everyone's), each ``detail`` decoded."""
    where, args = ("WHERE person_id = ?", [person]) if person else ("", [])
    rows = db.query(f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset))
    for row in rows:
        row["detail"] = json.loads(row["detail"])
    return rows


def blocklist_entries(db: Database) -> list[tuple[str, str, str]]:
    """The blocklist as HQ wrote it: (kind, pattern, reason), oldest first."""
    return db.rows("SELECT kind, pattern, reason FROM blocklist ORDER BY id")
