"""Survivorship: which source record's value a person's profile shows, attribute by attribute.

A person is several source records (a counter sign-up, a CRM row, a POS card, a Tmall buyer, a
WeChat user), each saying something about name, gender, birthday, tier, points, tags, home store,
contact phone and address. The person's value of each attribute comes from one rule, as in
Salesforce Data Cloud's reconciliation rules and Segment Profiles' survivorship:

* ``source_priority``: the first non-empty value in the brand's source order (default CRM/counter
  > POS > WeChat > Youzan > Douyin > Tmall > JD); ties inside one source go to the most recent;
* ``most_recent``: the value of the record observed last (``members.seen``, else its creation);
* ``most_frequent``: the value most records carry; ties by source priority;
* ``first_non_empty``: the value of the record observed first;
* ``union`` (tags only): every record's values, each naming the records that carried it.

Each attribute comes with its lineage: the rule, the record and source that gave it, when that
record was observed and how many records had a value. The person's id (its earliest record) plays
no part, so a VIP counter sign-up whose phone then appears on an older Tmall order keeps its tier
and tags. A Tmall or JD buyer's ``普通会员`` is the column default, not a fact: only member
sources (counter, CRM import) and POS state a tier.

The rules are the brand's (``settings`` key ``survivorship``, ``PUT /v1/identity/survivorship``).

``store`` keeps the result per person in ``person_profiles`` (with whether the person's face
consent counts), so segments and portraits filter on the surviving values rather than the head
record's: it runs wherever persons change (``tags.refresh`` after imports, merges, splits,
verification and the nightly batch; a sign-up; a consent change); a change of these rules rewrites
everyone's in batches on the scheduler (``cloud.cdp.profile_rewrite``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from cloud.cdp.oneid import UNVERIFIED
from cloud.db import Database, Tx
from cloud.db.config_cache import cached
from cloud.errors import Invalid
from cloud.loyalty.tiers import earned_by_spending

ATTRIBUTES = ("name", "gender", "birthday", "tier", "points", "tags", "home_store", "phone", "address", "signed_up")
RULES = ("source_priority", "most_recent", "most_frequent", "first_non_empty", "union")
SOURCES = ("member", "members", "pos", "wechat", "youzan", "douyin", "tmall", "jd")
DEFAULT_PRIORITY = SOURCES
DEFAULT_RULES: dict[str, str] = {
    "name": "source_priority", "gender": "source_priority", "birthday": "source_priority",
    "tier": "source_priority", "points": "most_recent", "tags": "union", "home_store": "source_priority",
    "phone": "source_priority", "address": "most_recent", "signed_up": "source_priority",
}
DEFAULT_TIER = "普通会员"
#: sources whose tier column is a stated fact; elsewhere it is the column default
TIER_SOURCES = frozenset({"member", "members", "pos"})
_SETTING = "survivorship"
#: the columns of ``members`` survivorship reads
RECORD_COLUMNS = "id, source, name, gender, birthday, tier, tags, points, home_store, address, signed_up, created, seen"


class InvalidRules(Invalid):
    code = "invalid_survivorship"


@dataclass(frozen=True)
class Config:
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    rules: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RULES))

    def as_dict(self) -> dict:
        return {"source_priority": list(self.priority), "rules": dict(self.rules)}


@dataclass(frozen=True)
class Attribute:
    """One attribute's surviving value and where it came from."""

    value: object
    rule: str
    record: str | None  # the record that gave it (None when no record had a value)
    source: str | None
    observed: str | None  # when that record was last observed (ISO)
    candidates: int  # records with a value
    records: tuple[str, ...] = ()  # union: every record that contributed

    def lineage(self) -> dict:
        out = asdict(self)
        out.pop("value")
        if self.rule != "union":
            out.pop("records")
        else:
            out["records"] = list(self.records)
        return out


_CONFIG_SQL = "SELECT value FROM settings WHERE key = ?"


def config(tx: Tx | Database) -> Config:
    return _config_of(tx.scalar(_CONFIG_SQL, (_SETTING,)))


def rules(db: Database) -> Config:
    """The brand's rules as readers outside a rules change use them (a card reads them twice):
    through ``cloud.db.config_cache``, so a change reaches every process within seconds."""
    return cached(db, config)


def _config_of(raw: str | None) -> Config:
    if not raw:
        return Config()
    stored = json.loads(raw)
    return Config(tuple(stored.get("source_priority") or DEFAULT_PRIORITY),
                  {**DEFAULT_RULES, **(stored.get("rules") or {})})


def set_config(tx: Tx, *, source_priority: Sequence[str] | None, rules: Mapping[str, str] | None) -> Config:
    """Store the brand's rules: a source order (unknown sources refused; sources left out rank last)
    and a rule per attribute (others keep theirs). The stored profiles are not rewritten here:
    ``cloud.cdp.profile_rewrite.change_rules`` queues that for the scheduler."""
    current = config(tx)
    priority = tuple(source_priority) if source_priority is not None else current.priority
    unknown = [s for s in priority if s not in SOURCES]
    if unknown or len(set(priority)) != len(priority):
        raise InvalidRules(f"source_priority must name distinct sources of {', '.join(SOURCES)}; got {list(priority)}")
    merged = {**current.rules, **(rules or {})}
    for attribute, rule in merged.items():
        if attribute not in ATTRIBUTES:
            raise InvalidRules(f"unknown attribute {attribute!r}; one of {', '.join(ATTRIBUTES)}")
        if rule not in RULES or (rule == "union" and attribute != "tags"):
            raise InvalidRules(f"{attribute}: rule {rule!r} is not one of {', '.join(RULES)} (union is for tags only)")
    chosen = Config(priority, merged)
    tx.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               (_SETTING, json.dumps(chosen.as_dict(), ensure_ascii=False)))
    return chosen


def _empty(value: object) -> bool:
    return value is None or value == "" or value == [] or value == ()


def record_values(row: Mapping, phones: Sequence[str]) -> dict[str, object]:
    """What one record says about each attribute (None where it says nothing)."""
    tier = row.get("tier")
    if row.get("source") not in TIER_SOURCES and tier == DEFAULT_TIER:
        tier = None
    raw_tags = row.get("tags")
    tags = json.loads(raw_tags) if isinstance(raw_tags, str) else list(raw_tags or [])
    return {"name": row.get("name") or None, "gender": row.get("gender") or None,
            "birthday": row.get("birthday") or None, "tier": tier or None, "points": row.get("points"),
            "tags": tags, "home_store": row.get("home_store") or None, "phone": phones[0] if phones else None,
            "address": row.get("address") or None, "signed_up": row.get("signed_up") or None}


def _observed(row: Mapping) -> str:
    return str(row.get("seen") or row.get("created") or "")


def survive(rows: Sequence[Mapping], phones: Mapping[str, Sequence[str]], cfg: Config | None = None) -> dict[str, Attribute]:
    """Every attribute's surviving value among these records (rows of ``RECORD_COLUMNS``)."""
    cfg = cfg or Config()
    rank = {source: i for i, source in enumerate(cfg.priority)}
    said = [(row, record_values(row, phones.get(row["id"], ()))) for row in rows]
    # the two orders the rules pick by, sorted once per person rather than once per attribute (a
    # stable sort of every record, filtered, is the stable sort of the records having a value)
    by_source_recent = sorted(said, key=lambda s: (rank.get(s[0]["source"], len(rank)), _descending(_observed(s[0]))))
    by_source_first = sorted(said, key=lambda s: (rank.get(s[0]["source"], len(rank)), _observed(s[0])))
    out: dict[str, Attribute] = {}
    for attribute in ATTRIBUTES:
        rule = cfg.rules.get(attribute, DEFAULT_RULES[attribute])
        having = [(row, values[attribute]) for row, values in said if not _empty(values[attribute])]
        if not having:  # nobody says: no value (a tier is then the brand's default, and says so)
            if attribute == "tier":
                out[attribute] = Attribute(DEFAULT_TIER, "default", None, None, None, 0)
            else:
                out[attribute] = Attribute([] if attribute == "tags" else None, rule, None, None, None, 0)
            continue
        if rule == "union":
            tags: dict[str, None] = {}
            contributors: list[str] = []
            ordered = [(row, values[attribute]) for row, values in by_source_first if not _empty(values[attribute])]
            for row, value in ordered:
                for tag in value if isinstance(value, list) else [value]:
                    tags.setdefault(str(tag), None)
                contributors.append(row["id"])
            first = ordered[0][0]
            out[attribute] = Attribute(list(tags), "union", first["id"], first["source"], _observed(first),
                                       len(having), tuple(contributors))
            continue
        by_priority = [(row, values[attribute]) for row, values in by_source_recent if not _empty(values[attribute])]
        if rule == "most_recent":
            row, value = max(having, key=lambda h: (_observed(h[0]), -rank.get(h[0]["source"], len(rank))))
        elif rule == "first_non_empty":
            row, value = min(having, key=lambda h: (_observed(h[0]), rank.get(h[0]["source"], len(rank))))
        elif rule == "most_frequent":
            counts = Counter(json.dumps(v, ensure_ascii=False, sort_keys=True) for _, v in having)
            best = max(counts.values())
            row, value = next(h for h in by_priority if counts[json.dumps(h[1], ensure_ascii=False, sort_keys=True)] == best)
        else:  # source_priority
            row, value = by_priority[0]
        out[attribute] = Attribute(value, rule, row["id"], row["source"], _observed(row), len(having))
    return out


def _descending(text: str) -> tuple[int, ...]:
    """A sort key putting later ISO times first."""
    return tuple(-ord(c) for c in text)


def _record_rows(tx: Tx, persons: Sequence[str]) -> tuple[list[dict], dict[str, list[str]], set[str]]:
    """The rows of these ids and of the records merged into them (oldest first), each record's
    usable phones, and the records holding an identifier kept apart until its owner proves it
    (``oneid.UNVERIFIED``: a guide card's member says so, and this read saves it a round trip): one
    round trip on PostgreSQL for each chunk of ``Tx.among`` (a person's rows all come from one chunk,
    so each person's stay in order)."""
    rows: list[dict] = []
    phones: dict[str, list[str]] = {}
    unverified: set[str] = set()
    for test, chunk in tx.among(persons):
        found, identifier_rows = tx.reads(
            (f"SELECT {RECORD_COLUMNS}, merged_into, face_consent, consent_proven, consent_withdrawn, source_key, preferences "
             f"FROM members WHERE id {test} OR merged_into {test} ORDER BY created, id", (*chunk, *chunk)),
            # by record id (identifiers_member_kind_value), not a join from the phones: that read every phone
            # of the brand (the planner started from identifiers_kind_value), 34 ms a person at 5,000 records
            ("SELECT i.member_id, i.value, i.blocked FROM identifiers i WHERE i.member_id IN ("
             f"SELECT id FROM members WHERE id {test} OR merged_into {test}) "
             "AND ((i.kind = 'phone' AND i.blocked IS NULL) OR i.blocked = ?) ORDER BY i.id", (*chunk, *chunk, UNVERIFIED)))
        rows += found
        for row in identifier_rows:
            if row["blocked"] is None:
                phones.setdefault(row["member_id"], []).append(row["value"])
            else:
                unverified.add(row["member_id"])
    return rows, phones, unverified


def _every_record(tx: Tx) -> tuple[list[dict], dict[str, list[str]]]:
    """``_record_rows`` for the whole brand, in two scans. The nightly batch read its records 500
    persons at a time, and each chunk's ``merged_into IN (...)`` became a scan of ``members`` when
    the planner's statistics predated the merges (SQLite's ANALYZE of an unmerged brand says every
    ``merged_into`` value is shared by all rows): one scan per 500 persons, 213 s at 250k persons
    against 56 s now (docs/PERFORMANCE.md)."""
    rows = tx.query(f"SELECT {RECORD_COLUMNS}, merged_into, face_consent, consent_proven, consent_withdrawn, source_key, preferences "
                    "FROM members ORDER BY created, id")
    phones: dict[str, list[str]] = {}
    for member_id, value in tx.rows("SELECT member_id, value FROM identifiers WHERE kind = 'phone' "
                                    "AND blocked IS NULL ORDER BY id"):
        phones.setdefault(member_id, []).append(value)
    return rows, phones


def _records_of(tx: Tx, persons: Sequence[str] | None) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """The records of these persons (None: everyone; by person, oldest first) and each record's
    usable phones."""
    if persons is None:
        rows, phones = _every_record(tx)
    else:
        rows, phones, _ = _record_rows(tx, persons)
    records: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        records[row["merged_into"] or row["id"]].append(row)
    return records, phones


@dataclass(frozen=True)
class PersonRecords:
    """One id's rows (``id = person OR merged_into = person``, oldest first, with ``source_key``,
    ``preferences``, ``face_consent`` and ``consent_proven``) and the person's surviving attributes:
    what a guide card's member and profile need of ``members``, read once (two statements; the
    brand's rules come from the caller, ``rules``) instead of a statement per question."""

    rows: list[dict]
    attributes: dict[str, Attribute]
    #: the records holding an unverified identifier (``oneid.UNVERIFIED``)
    unverified: frozenset[str] = frozenset()

    def row(self, record_id: str) -> dict | None:
        return next((r for r in self.rows if r["id"] == record_id), None)

    def face_consent(self, person: str) -> bool:
        return face_consent(self.rows, person)


def face_consent(rows: Sequence[Mapping], person: str) -> bool:
    """Whether the person's face consent counts, on their records' rows: the head record's own flag,
    or any record's consent once proven by a one-time code to that record's phone
    (``consent_proven``, ``cloud.cdp.verification``). Unproven consent on a record that is not the
    head does not count, so a merge alone never turns consent on. A withdrawal marks every record
    the person had (``consent_withdrawn``) until they grant it again: a record that joins afterwards
    with its own flag (an older CRM export, which then heads the person) does not undo it."""
    if any(r["consent_withdrawn"] is not None for r in rows):
        return False
    return any(r["face_consent"] == 1 and (r["id"] == person or r["consent_proven"] is not None) for r in rows)


def face_consent_of(db: Database | Tx, person: str) -> bool:
    """``face_consent`` for one person (a head record's id), read from their records' consent
    columns alone: for the face paths that ask nothing else of the person (learning from a confirmed
    arrival, re-embedding for a new pack). They read the head's raw flag before, which an older
    record joining after a withdrawal turned back on (issue 15)."""
    rows = db.query("SELECT id, face_consent, consent_proven, consent_withdrawn FROM members "
                    "WHERE id = ? OR merged_into = ?", (person, person))
    return face_consent(rows, person)


def bought_before(tx: Tx, persons: Sequence[str] | None) -> set[str]:
    """Those of ``persons`` (None: every person) one of whose records, from a source that states
    tiers (a counter sign-up, the CRM, the POS), holds a tier the brand's ladder gives only for spend:
    they have bought, even when none of those orders reached the CDP (a CRM list imported before its
    order history). Such a person is not a prospect, and their first order here is not their first."""
    tiers = earned_by_spending(tx)
    if not tiers or persons is not None and not persons:
        return set()
    sources = sorted(TIER_SOURCES)
    select = (f"SELECT COALESCE(merged_into, id) FROM members WHERE source IN ({', '.join('?' for _ in sources)}) "
              f"AND tier IN ({', '.join('?' for _ in tiers)})")
    if persons is None:
        return {r[0] for r in tx.rows(select, (*sources, *tiers))}
    return {r[0] for test, params in tx.among(sorted(set(persons)))
            for r in tx.rows(f"{select} AND (id {test} OR merged_into {test})", (*sources, *tiers, *params, *params))}


def person_records(tx: Tx, person: str, cfg: Config) -> PersonRecords:
    rows, phones, unverified = _record_rows(tx, [person])
    mine = [r for r in rows if (r["merged_into"] or r["id"]) == person]
    return PersonRecords(rows, survive(mine, phones, cfg), frozenset(unverified))


#: the computed stats (``person_stats``, written by ``tags.refresh``) that segments test, copied into
#: the person's profile row when it is stored: a segment then looks each person up once, not in both
#: tables (at 1M persons on PostgreSQL the two lookups were ~13 us of a driven count's ~30 us a person)
SEGMENT_STATS = ("orders", "ltv", "r", "f", "m", "value_tier", "lifecycle", "cycle_days", "top_categories",
                 "price_band", "fav_channel", "fav_store")
PROFILE_COLUMNS = ("member_id", "name", "gender", "birthday", "tier", "points", "tags", "home_store", "phone",
                   "address", "signed_up", "face_consent", "updated", *SEGMENT_STATS)
_CHUNK = 500


def _values(rows: Sequence[Mapping], phones: Mapping[str, Sequence[str]], cfg: Config) -> dict[str, object]:
    """``values_of(survive(...))``; a one-record person (most of a brand) without the rule machinery."""
    if len(rows) != 1:
        return values_of(survive(rows, phones, cfg))
    said = record_values(rows[0], phones.get(rows[0]["id"], ()))
    return {k: ([] if k == "tags" else DEFAULT_TIER if k == "tier" else None) if _empty(v) else v
            for k, v in said.items()}


def _stats_of(tx: Tx, persons: Sequence[str] | None) -> dict[str, tuple]:
    """Person -> its ``SEGMENT_STATS`` as ``person_stats`` holds them (None: everyone's)."""
    select = f"SELECT member_id, {', '.join(SEGMENT_STATS)} FROM person_stats"
    if persons is None:
        return {r[0]: tuple(r[1:]) for r in tx.rows(select)}
    return {r[0]: tuple(r[1:]) for test, params in tx.among(persons)
            for r in tx.rows(f"{select} WHERE member_id {test}", params)}


def store(tx: Tx, persons: Sequence[str] | None = None) -> int:
    """Write the surviving values of these persons (None: everyone) to ``person_profiles``, with
    their ``SEGMENT_STATS`` as ``person_stats`` has them now (``tags.refresh`` writes those first and
    then calls this); a person that no longer exists (merged into another, erased) loses its row.
    Face consent is stored as it counts (``face_consent``): the head record's, or any record's
    proven one. The rows written."""
    cfg, updated = config(tx), datetime.now(UTC).isoformat(timespec="seconds")
    if persons is None:
        tx.execute("DELETE FROM person_profiles")
        wanted = [r[0] for r in tx.rows("SELECT id FROM members WHERE merged_into IS NULL ORDER BY id")]
    else:
        wanted = sorted(set(persons))
    written = 0
    everyone = _records_of(tx, None) if persons is None else None
    all_stats = _stats_of(tx, None) if persons is None else None
    no_stats = (None,) * len(SEGMENT_STATS)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        if everyone is None:
            for test, params in tx.among(chunk):
                tx.execute(f"DELETE FROM person_profiles WHERE member_id {test}", params)
        records, phones = everyone or _records_of(tx, chunk)
        stats = all_stats if all_stats is not None else _stats_of(tx, chunk)
        out = []
        for person in chunk:
            rows = records.get(person, [])
            if not any(r["id"] == person for r in rows):
                continue  # merged into someone else, or erased: that person's row is theirs
            values = _values(rows, phones, cfg)
            consent = face_consent(rows, person)
            out.append((person, values["name"], values["gender"], values["birthday"], values["tier"],
                        values["points"], json.dumps(values["tags"], ensure_ascii=False), values["home_store"],
                        values["phone"], values["address"], values["signed_up"], int(consent), updated,
                        *stats.get(person, no_stats)))
        tx.copy("person_profiles", PROFILE_COLUMNS, out)
        written += len(out)
    return written


def values_of(attributes: Mapping[str, Attribute]) -> dict[str, object]:
    return {name: a.value for name, a in attributes.items()}


def lineage_of(attributes: Mapping[str, Attribute]) -> dict[str, dict]:
    return {name: {"value": a.value, **a.lineage()} for name, a in attributes.items()}


def explain(db: Database, person: str) -> dict[str, dict]:
    """Each attribute of the person with its value and lineage (what the identity view shows)."""
    cfg = rules(db)
    with db.transaction() as tx:
        return lineage_of(person_records(tx, person, cfg).attributes)
