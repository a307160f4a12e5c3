"""Computed tags (标签): RFM and value tier, lifecycle stage, preferences, and HQ's rule tags.

``refresh(db, persons)`` recomputes the persons touched by an import, a visit or a merge;
``refresh(db)`` is the nightly batch over everyone, which also re-cuts the RFM quintiles the
incremental updates then reuse. Results live in ``person_stats`` (one row per live person, what
segments filter on), ``person_profiles`` (the surviving attributes, ``survivorship.store``) and
``person_tags`` (manual tags from sign-ups and HQ's rule tags, each defined as a segment condition).

Lifecycle, from the person's own paid orders and the configurable windows: ``prospect`` (no
order), ``new`` (one order, recent), ``active``, ``repurchase_due`` (the time since the last order
passed the person's own median gap between orders, before going dormant), ``dormant``,
``churned``. A person whose record states a tier reached only by spending (a CRM 金卡会员) has bought
before any order the CDP holds (``survivorship.bought_before``): with no order here their stage is
``unknown``, not ``prospect``, and one recent order does not make them ``new``.
"""

from __future__ import annotations

import json
import statistics
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from cloud.cdp import survivorship
from cloud.cdp.lifecycle import Windows, windows
from cloud.cdp.segments import Condition, matching_persons, store_base
from cloud.clock import iso, utcnow
from cloud.db import Database, Read, Tx

DAY = 86400


def _scope(tx: Tx, persons: Sequence[str] | None) -> dict[str, str]:
    """Live record id -> its person, for the given persons (None = everyone)."""
    if persons is None:
        return dict(tx.rows("SELECT id, COALESCE(merged_into, id) FROM members"))
    return {record: person for test, params in tx.among(persons) for record, person in tx.rows(
        f"SELECT id, COALESCE(merged_into, id) FROM members WHERE id {test} OR merged_into {test}",
        (*params, *params))}


def _fetch(tx: Tx, sql: str, records: dict[str, str], everyone: bool) -> list[tuple]:
    """Rows of ``sql`` (whose first column is a member id) for the records in scope."""
    if everyone:
        return tx.rows(sql.format(where="member_id IS NOT NULL"))
    return [row for test, params in tx.among(sorted(records))
            for row in tx.rows(sql.format(where=f"member_id {test}"), params)]


def refresh(db: Database, persons: Sequence[str] | None = None, *, as_of: datetime | None = None) -> int:
    """Recompute stats and tags; the number of persons written."""
    now = int((as_of or datetime.now(UTC)).timestamp())
    everyone = persons is None
    with db.transaction() as tx:
        win = windows(tx)
        records = _scope(tx, persons)
        live = sorted(set(records.values()))
        orders = _fetch(tx, "SELECT member_id, ts, paid, status, channel, store FROM orders WHERE {where}",
                        records, everyone)
        lines = _fetch(tx, "SELECT member_id, category, SUM(amount), CAST(SUM(qty) AS DOUBLE PRECISION) FROM order_lines WHERE {where} "
                           "GROUP BY member_id, category", records, everyone)
        earlier = survivorship.bought_before(tx, None if everyone else live)
        stats = _compute(live, records, orders, lines, now, win, earlier)
        thresholds = _rfm_thresholds(tx, stats, everyone)
        for row in stats.values():
            _score(row, thresholds)
        touched = None if everyone else sorted(set(persons or []) | set(live))
        _write_stats(tx, stats, touched)
        _write_manual_tags(tx, records, touched)
        survivorship.store(tx, touched)  # rule tags may filter on the surviving attributes
        _apply_rule_tags(tx, live, everyone, as_of)
        if everyone:  # the nightly batch: every person's facets as they are now, for the portraits
            store_base(tx, as_of or datetime.now(UTC))
    return len(stats)


def _compute(live: list[str], records: dict[str, str], orders: list[tuple], lines: list[tuple], now: int,
             win: Windows, earlier: set[str]) -> dict[str, dict]:
    paid_ts: dict[str, list[int]] = defaultdict(list)
    ltv: dict[str, float] = defaultdict(float)
    channels: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    stores: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for member_id, ts, paid, status, channel, store in orders:
        person = records.get(member_id)
        if person is None:
            continue
        ltv[person] += paid
        if status == "paid":
            paid_ts[person].append(ts)
            _count(channels[person], channel, ts)
            if store:
                _count(stores[person], store, ts)
    spend: dict[str, Counter] = defaultdict(Counter)
    units: dict[str, float] = defaultdict(float)
    for member_id, category, amount, qty in lines:
        person = records.get(member_id)
        if person is not None:
            spend[person][category] += amount
            units[person] += qty
    out: dict[str, dict] = {}
    for person in live:
        times = sorted(paid_ts.get(person, []))
        gaps = [b - a for a, b in zip(times, times[1:]) if b - a > DAY]
        cycle = statistics.median(gaps) / DAY if gaps else None
        lifecycle = _lifecycle(times, cycle, now, win, bought_before=person in earlier)
        value = ltv.get(person, 0.0)
        unit_price = value / units[person] if units.get(person) else None
        band = None if unit_price is None else (
            "low" if unit_price < win.price_bands[0] else "mid" if unit_price < win.price_bands[1] else "high")
        out[person] = {
            "member_id": person, "orders": len(times), "ltv": round(value, 2),
            "first_ts": times[0] if times else None, "last_ts": times[-1] if times else None,
            "recency": (now - times[-1]) / DAY if times else None, "lifecycle": lifecycle,
            "cycle_days": round(cycle, 1) if cycle else None,
            "top_categories": json.dumps([c for c, amount in sorted(spend[person].items(), key=_by_amount)[:3]
                                          if amount > 0], ensure_ascii=False),
            "price_band": band,
            "fav_channel": _favourite(channels.get(person)),
            "fav_store": _favourite(stores.get(person)),
        }
    return out


def _count(uses: dict[str, tuple[int, int]], key: str, ts: int) -> None:
    """One more order through ``key`` (a channel, a store): how many, and the latest one's time."""
    count, last = uses.get(key, (0, ts))
    uses[key] = (count + 1, max(last, ts))


def _favourite(uses: dict[str, tuple[int, int]] | None) -> str | None:
    """The most used; a tie goes to the one used last, then to the name. Not to whichever the read
    returned first: the batch scans every order and the per-person refresh reads its persons' by
    index, in different orders, and both must name the same favourite."""
    return max(uses.items(), key=lambda item: (item[1], item[0]))[0] if uses else None


def _by_amount(item: tuple[str, float]) -> tuple[float, str]:
    """Spend per category, most first; a tie by name (not by read order, as ``_favourite``)."""
    return -item[1], item[0]


def _lifecycle(times: list[int], cycle: float | None, now: int, win: Windows, *, bought_before: bool) -> str:
    if not times:
        return "unknown" if bought_before else "prospect"
    since_last = (now - times[-1]) / DAY
    if since_last > win.churn_days:
        return "churned"
    if since_last > win.dormant_days:
        return "dormant"
    if len(times) == 1 and (now - times[0]) / DAY <= win.new_days and not bought_before:
        return "new"
    if cycle is not None and since_last >= cycle:
        return "repurchase_due"
    return "active" if since_last <= win.active_days else "dormant"


def _rfm_thresholds(tx: Tx, stats: dict[str, dict], everyone: bool) -> dict[str, list[float]]:
    """Quintile cut points of recency, frequency and money; re-cut by the nightly batch only."""
    buyers = [s for s in stats.values() if s["orders"]]
    if everyone and len(buyers) >= 5:
        cuts = {
            "r": np.quantile([s["recency"] for s in buyers], [0.2, 0.4, 0.6, 0.8]).tolist(),
            "f": np.quantile([s["orders"] for s in buyers], [0.2, 0.4, 0.6, 0.8]).tolist(),
            "m": np.quantile([s["ltv"] for s in buyers], [0.2, 0.4, 0.6, 0.8]).tolist(),
        }
        tx.execute("INSERT INTO settings (key, value) VALUES ('rfm_thresholds', ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (json.dumps(cuts),))
        return cuts
    saved = tx.scalar("SELECT value FROM settings WHERE key = 'rfm_thresholds'")
    # before the first batch: fixed cut points (days, orders, yuan) so tags exist from day one
    return json.loads(saved) if saved else {"r": [30, 90, 180, 365], "f": [1, 2, 3, 5], "m": [200, 500, 1000, 3000]}


def _score(row: dict, cuts: dict[str, list[float]]) -> None:
    if not row["orders"]:
        row.update(r=None, f=None, m=None, value_tier=None)
        return
    # bisect_left is numpy's searchsorted(side="left") on a plain list, without making an array per call
    r = 5 - bisect_left(cuts["r"], row["recency"])  # recent = high
    f = 1 + bisect_left(cuts["f"], row["orders"])
    m = 1 + bisect_left(cuts["m"], row["ltv"])
    total = r + f + m
    row.update(r=r, f=f, m=m, value_tier="high" if total >= 12 else "medium" if total >= 8 else "low")


_STAT_COLUMNS = ("member_id", "orders", "ltv", "first_ts", "last_ts", "r", "f", "m", "value_tier", "lifecycle",
                 "cycle_days", "top_categories", "price_band", "fav_channel", "fav_store", "updated")


def _delete_for(tx: Tx, table: str, persons: Sequence[str] | None, extra: str = "", params: tuple = ()) -> None:
    """Delete the rows of ``persons`` (None = all); ``extra`` is fixed SQL, values go in ``params``."""
    if persons is None:
        tx.execute(f"DELETE FROM {table} WHERE 1 = 1 {extra}", params)
        return
    for test, chunk in tx.among(persons):
        tx.execute(f"DELETE FROM {table} WHERE member_id {test} {extra}", (*chunk, *params))


def _write_stats(tx: Tx, stats: dict[str, dict], persons: Sequence[str] | None) -> None:
    _delete_for(tx, "person_stats", persons)
    updated = datetime.now(UTC).isoformat(timespec="seconds")
    tx.copy("person_stats", _STAT_COLUMNS,
            (tuple(updated if c == "updated" else s[c] for c in _STAT_COLUMNS) for s in stats.values()))


def _write_manual_tags(tx: Tx, records: dict[str, str], persons: Sequence[str] | None) -> None:
    _delete_for(tx, "person_tags", persons, "AND source = 'manual'")
    manual: set[tuple[str, str]] = set()
    rows = tx.rows("SELECT id, tags FROM members WHERE tags <> '[]'") if persons is None else [
        r for test, params in tx.among(sorted(records))
        for r in tx.rows(f"SELECT id, tags FROM members WHERE tags <> '[]' AND id {test}", params)]
    for member_id, tags_json in rows:
        if member_id in records:
            manual.update((records[member_id], tag) for tag in json.loads(tags_json))
    tx.copy("person_tags", ("member_id", "tag", "value", "source"), ((p, t, "true", "manual") for p, t in manual))


def _apply_rule_tags(tx: Tx, live: list[str], everyone: bool, as_of: datetime | None) -> None:
    for name, value, condition in tx.rows("SELECT name, value, condition FROM tag_rules ORDER BY name"):
        parsed = Condition.model_validate_json(condition)
        _delete_for(tx, "person_tags", None if everyone else live, "AND tag = ? AND source = 'rule'", (name,))
        hits = matching_persons(tx, parsed, within=None if everyone else live, as_of=as_of)
        tx.copy("person_tags", ("member_id", "tag", "value", "source"), ((p, name, value, "rule") for p in hits))



def counts(db: Database, *, limit: int, offset: int) -> list[dict]:
    """Each tag value and its source, with how many persons carry it."""
    return db.query(
        "SELECT tag, value, source, COUNT(*) AS persons FROM person_tags GROUP BY tag, value, source "
        "ORDER BY tag, value LIMIT ? OFFSET ?", (limit, offset))


def rules(db: Database) -> list[dict]:
    """HQ's rule tags (name, value, condition as a dict, display on the guide card, priority), by name."""
    return [{"name": r["name"], "value": r["value"], "condition": json.loads(r["condition"]),
             "display": bool(r["display"]), "priority": r["priority"]}
            for r in db.query("SELECT * FROM tag_rules ORDER BY name")]


def set_rule(db: Database, name: str, value: str, condition: Condition, *, display: bool = False,
             priority: int = 0) -> None:
    """Define (or redefine) a rule tag; ``refresh`` applies it. ``display``: the guide card shows it,
    higher ``priority`` first (``displayed``)."""
    db.execute(
        "INSERT INTO tag_rules (name, value, condition, created, display, priority) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value, condition = excluded.condition, "
        "display = excluded.display, priority = excluded.priority",
        (name, value, json.dumps(condition.dump(), ensure_ascii=False), iso(utcnow()), int(display), priority))


def displayed(person: str, *, limit: int = 6) -> Read[list[str]]:
    """The person's rule tags HQ marked for the guide card, highest priority first (then by name): the
    tag's name, or ``name·value`` when the rule's value is not plain ``true``. A read, gathered with the
    card's other reads about the person."""
    return Read(
        "SELECT t.tag, t.value FROM person_tags t JOIN tag_rules r ON r.name = t.tag "
        "WHERE t.member_id = ? AND t.source = 'rule' AND r.display = 1 ORDER BY r.priority DESC, t.tag LIMIT ?",
        (person, limit), _displayed)


def _displayed(rows: list[dict]) -> list[str]:
    return [r["tag"] if r["value"] == "true" else f"{r['tag']}·{r['value']}" for r in rows]
