"""The purchase dimensions read from the per-day facts (``cloud.cdp.purchases``) give exactly the
persons the order lines give, on a generated brand with refunds, through OneID's merge, split and
rule-change rebuild and an erasure; and the per-person facts stay what summing the lines by person gives.

The oracle is computed here in Python from the order lines and the records' persons: per person, the
lines in the dimension's scope and window summed (net units, net amount, distinct sale orders,
refund lines, first and last sale), then the dimension's test; a number that zero satisfies takes
in the people without lines. Every purchase dimension of the catalogue is evaluated at an instant
that is not a day boundary (so "last N days" windows start inside a day), with several windows and
operators, and the facts kept as lines landed are checked to be what summing all the lines again gives.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from cloud.cdp import dimensions, erasure, oneid, purchases, segments
from cloud.cdp.purchases import LOCAL
from cloud.db import Database
from cloud.synthetic.brand import generate

END = datetime(2026, 11, 30, 7, 13, 29, tzinfo=UTC)
AS_OF = END - timedelta(hours=5, seconds=17)  # 10:56:12 local: windows of N days start inside a day
_CMP = {">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "=": lambda a, b: a == b,
        "between": lambda a, b: b[0] <= a <= b[1]}


@pytest.fixture
def brand(db: Database) -> Database:
    generate(db, persons=250, stores=6, seed=11, end=END)
    with db.transaction() as tx:
        # refunds land as orders do: one in three orders of the last four months comes back (whole or one unit)
        sold = tx.rows("SELECT order_id, member_id, channel, store, ts, sku, category, qty, price, amount "
                       "FROM order_lines WHERE ts >= ? ORDER BY order_id, sku", (int((END - timedelta(days=120)).timestamp()),))
        refunds = [(f"r-{o}", m, ch, st, ts + 86400 * (1 + i % 20), sku, cat, -1 if i % 2 else -qty, price,
                    -price if i % 2 else -amount)
                   for i, (o, m, ch, st, ts, sku, cat, qty, price, amount) in enumerate(sold) if i % 3 == 0]
        purchases.add_lines(tx, refunds)
    return db


def _lines(db: Database) -> list[tuple]:
    return db.rows("SELECT COALESCE(m.merged_into, m.id), l.order_id, l.channel, l.store, l.ts, l.sku, l.category, "
                   "l.qty, l.amount FROM order_lines l JOIN members m ON m.id = l.member_id")


def _truth(db: Database, spec: dimensions.DimSpec, lines: list[tuple], persons: set[str]) -> set[str]:
    dim = dimensions.CATALOGUE[spec.name]
    measure = dim.name.split(".")[0]
    column = {None: None, "channel": 2, "store": 3, "sku": 5, "category": 6}[dim.scope]
    start = end = None
    if dim.window == "days":
        start = int((AS_OF - timedelta(days=spec.days or 0)).timestamp())
    elif dim.window == "between":
        assert spec.from_ and spec.to
        start = int(datetime(spec.from_.year, spec.from_.month, spec.from_.day, tzinfo=LOCAL).timestamp())
        end = int(datetime(spec.to.year, spec.to.month, spec.to.day, tzinfo=LOCAL).timestamp()) + 86400
    per: dict[str, dict] = defaultdict(lambda: {"qty": 0, "amount": 0.0, "orders": set(), "refunds": 0, "sales": []})
    for r in lines:
        person, order, ts, qty, amount = r[0], r[1], r[4], r[7], r[8]
        if column is not None and r[column] != spec.scope:
            continue
        if (start is not None and ts < start) or (end is not None and ts >= end):
            continue
        p = per[person]
        p["qty"] += qty
        p["amount"] += amount
        p["refunds"] += qty < 0
        if qty > 0:
            p["orders"].add(order)
            p["sales"].append(ts)
    if measure in ("bought", "not_bought"):
        bought = {k for k, p in per.items() if p["qty"] > 0}
        return bought if measure == "bought" else persons - bought
    if measure == "refunded":
        refunded = {k for k, p in per.items() if p["refunds"]}
        return refunded if spec.value in (None, True) else persons - refunded
    if measure in ("first_purchase", "last_purchase"):
        lo, hi = dimensions._date_bounds(spec.op or "", spec.value)
        pick = min if measure == "first_purchase" else max
        return {k for k, p in per.items() if p["sales"] and (lo is None or pick(p["sales"]) >= lo.timestamp())
                and (hi is None or pick(p["sales"]) < hi.timestamp())}
    key = {"order_count": "orders", "order_amount": "amount", "units": "qty"}[measure]

    def value(person: str) -> float:
        p = per.get(person)
        return 0 if p is None else len(p[key]) if key == "orders" else p[key]

    return {k for k in persons if _CMP[spec.op or ""](value(k), spec.value)}


def _specs(db: Database) -> list[dict]:
    scopes = {"channel": db.scalar("SELECT channel FROM order_lines GROUP BY channel ORDER BY COUNT(*) DESC LIMIT 1"),
              "store": db.scalar("SELECT store FROM order_lines WHERE store IS NOT NULL GROUP BY store "
                                 "ORDER BY COUNT(*) DESC LIMIT 1"),
              "category": db.scalar("SELECT category FROM order_lines GROUP BY category ORDER BY COUNT(*) DESC LIMIT 1"),
              "sku": db.scalar("SELECT sku FROM order_lines GROUP BY sku ORDER BY COUNT(*) DESC LIMIT 1")}
    tests = {"bool": [{}, {"value": False}], "number": [{"op": ">=", "value": 2}, {"op": "<", "value": 2},
                                                        {"op": "between", "value": [1, 3]}, {"op": "=", "value": 0}]}
    amounts = [{"op": ">=", "value": 300}, {"op": "<", "value": 150.5}, {"op": "between", "value": [0, 800]}]
    windows = {"days": [{"days": 1}, {"days": 30}, {"days": 90}, {"days": 365}],
               "between": [{"from": "2026-08-01", "to": "2026-09-30"}, {"from": "2026-11-29", "to": "2026-11-29"}]}
    local = AS_OF.astimezone(LOCAL).date()
    dates = [{"op": "after", "value": str(local - timedelta(days=60))},
             {"op": "before", "value": str(local - timedelta(days=200))},
             {"op": "on", "value": str(local - timedelta(days=3))},
             {"op": "between", "value": [str(date(2026, 3, 1)), str(date(2026, 6, 30))]}]
    specs = []
    for dim in dimensions.CATALOGUE.values():
        if dim.group != "purchase":
            continue
        scope = {"scope": scopes[dim.scope]} if dim.scope else {}
        if dim.window is None:
            specs += [{"name": dim.name, **scope, **d} for d in dates]
            continue
        measure = dim.name.split(".")[0]
        ops = amounts if measure == "order_amount" else tests[dim.type]
        specs += [{"name": dim.name, **scope, **w, **o} for w in windows[dim.window] for o in ops
                  if measure != "refunded" or o == {} or w in windows[dim.window][-2:]]
    return specs


def _check(db: Database) -> int:
    lines = _lines(db)
    persons = {r[0] for r in db.rows("SELECT id FROM members WHERE merged_into IS NULL")}
    specs = _specs(db)
    wrong, found = [], 0
    truths: dict[int, set[str]] = {}
    with db.transaction() as tx:
        for n, raw in enumerate(specs):
            condition = segments.Condition.parse({"dim": raw})
            got = set(segments.matching_persons(tx, condition, as_of=AS_OF))
            want = truths[n] = _truth(db, condition.root.dim, lines, persons)  # type: ignore[union-attr]
            found += bool(got)
            if got != want:
                wrong.append((raw, sorted(got - want)[:3], sorted(want - got)[:3]))
    assert wrong == []
    _check_and(db, specs, truths, persons)
    # the facts are exactly the lines summed again
    def facts() -> list[tuple]:  # amounts to the micro-yuan: summed in another order, floats differ in the last bit
        return sorted((*r[:5], round(r[5], 6), *r[6:]) for r in db.rows(
            "SELECT member_id, scope, value, day, qty, amount, orders, refunds, first_ts, last_ts FROM purchase_days"))

    kept = facts()
    with db.transaction() as tx:  # summed again from the lines, as a change to a record's lines does
        tx.execute("DELETE FROM purchase_days")
        purchases.refresh(tx, [r[0] for r in tx.rows("SELECT DISTINCT member_id FROM order_lines")])
    assert facts() == kept
    assert _person_facts(db) == _person_facts_from_lines(db)
    return found


#: the driver of the ANDs below: a category bought in a "last N days" window (its set has edge persons)
_DRIVER = {"name": "bought.category.days", "days": 90}


def _check_and(db: Database, specs: list[dict], truths: dict[int, set[str]], persons: set[str]) -> None:
    """Each purchase condition in an AND with a bought-category condition, and that AND negated: the
    narrower of the two drives and the other is probed per person (``segments._roles``), and the answer
    is still the two oracle sets' intersection (or the rest of the persons)."""
    category = db.scalar("SELECT category FROM order_lines GROUP BY category ORDER BY COUNT(*) DESC LIMIT 1")
    driver = {**_DRIVER, "scope": category}
    ours = _truth(db, segments.Condition.parse({"dim": driver}).root.dim, _lines(db), persons)  # type: ignore[union-attr]
    wrong, found = [], 0
    with db.transaction() as tx:
        for n, raw in enumerate(specs):
            both = {"and": [{"dim": driver}, {"dim": raw}]}
            found += bool(ours & truths[n])
            for condition, want in ((both, ours & truths[n]), ({"not": both}, persons - (ours & truths[n]))):
                got = set(segments.matching_persons(tx, segments.Condition.parse(condition), as_of=AS_OF))
                if got != want:
                    wrong.append((condition, sorted(got - want)[:3], sorted(want - got)[:3]))
    assert wrong == []
    assert found > len(specs) // 3  # the ANDs find someone: the comparison is not over empty sets


def test_an_and_drives_from_its_narrowest_buyers_and_probes_the_rest() -> None:
    """The 5-condition segment of the benchmark: the category bought in 90 days drives, the "not
    bought" and the year's amount are probed, the attributes stay as they are; an AND without a
    condition only buyers pass keeps every condition a set."""
    five = [{"dim": {"name": "bought.category.days", "scope": "护肤", "days": 90}},
            {"dim": {"name": "not_bought.category.days", "scope": "彩妆", "days": 90}},
            {"dim": {"name": "gender", "op": "in", "value": ["female"]}},
            {"dim": {"name": "order_amount.any.days", "days": 365, "op": ">=", "value": 300}},
            {"dim": {"name": "bought.channel.days", "scope": "tmall", "days": 30}}]
    nodes = segments.Condition.parse({"and": five}).root.and_  # type: ignore[union-attr]
    assert segments._roles(nodes) == {0: "probe", 1: "probe", 3: "probe", 4: "drive"}
    assert segments._roles(nodes[:4]) == {0: "drive", 1: "probe", 3: "probe"}
    assert segments._roles(nodes[1:3]) == {}


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _probe_runs(plan: dict) -> list[int]:
    """How many times each probe ran in a PostgreSQL JSON plan: the loops of its correlated subplans
    (a condition names them ``(SubPlan n)``; the sets, computed once, are ``(hashed SubPlan n)``)."""
    tests = " ".join(str(node.get(key, "")) for node in _nodes(plan) for key in ("Filter", "Join Filter", "Index Cond"))
    looked_up = set(re.findall(r"(?<!hashed )(SubPlan \d+)\)", tests))
    return [node["Actual Loops"] for node in _nodes(plan) if node.get("Subplan Name") in looked_up]


def test_an_and_probes_only_the_persons_its_driver_lists(brand: Database) -> None:
    """The probes are asked of the driver's persons, not of every person the engine reads: at 1M
    persons PostgreSQL estimated the driver at 200 rows, read every head in id order for a merge join
    and probed each one (1.0M probes for 89,808 listed persons). Here the joins that could start from
    the driver's list are switched off, so every head is read, and still each probe runs at most once
    per person the driver lists."""
    if brand.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL plan's loop counts; SQLite searches members from the driver's list either way")
    top, other = (r[0] for r in brand.rows(
        "SELECT category FROM order_lines GROUP BY category ORDER BY COUNT(*) DESC LIMIT 2"))
    driver = {"dim": {**_DRIVER, "scope": other}}
    condition = segments.Condition.parse({"and": [
        driver, {"dim": {"name": "not_bought.category.days", "scope": top, "days": 90}},
        {"dim": {"name": "order_amount.any.days", "days": 365, "op": ">=", "value": 100}}]})
    listed = segments.count(brand, segments.Condition.parse(driver), as_of=AS_OF)
    heads = segments.count(brand, None)
    sql, params = segments._where(condition, AS_OF, None)
    with brand.transaction() as tx:
        tx.execute("SET LOCAL enable_nestloop = off")
        plan = tx.scalar(f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT COUNT(*) {sql}", params)[0]["Plan"]
    runs = _probe_runs(plan)
    assert len(runs) == 2 and 0 < max(runs) <= listed < heads // 2, (runs, listed, heads)


def _person_facts(db: Database) -> dict[tuple, tuple]:
    return {tuple(r[:4]): (r[4], round(r[5], 6), *r[6:]) for r in db.rows(
        "SELECT person_id, scope, value, day, qty, amount, orders, refunds, first_ts, last_ts FROM person_purchase_days")}


def _person_facts_from_lines(db: Database) -> dict[tuple, tuple]:
    """Every line summed by its record's person now (a record no longer stored is its own), local day
    and scope, here in Python: what ``person_purchase_days`` must hold whatever OneID did since."""
    cells: dict[tuple, list] = defaultdict(lambda: [0, 0.0, set(), 0, None, None])
    for person, order, channel, store, ts, category, qty, amount in db.rows(
            "SELECT COALESCE(m.merged_into, l.member_id), l.order_id, l.channel, l.store, l.ts, l.category, l.qty, "
            "l.amount FROM order_lines l LEFT JOIN members m ON m.id = l.member_id WHERE l.member_id IS NOT NULL"):
        day = datetime.fromtimestamp(ts, LOCAL).toordinal() - date(1970, 1, 1).toordinal()
        for scope, value in (("any", ""), ("channel", channel), ("store", store), ("category", category)):
            if scope == "store" and not store:  # an online line has no store, and no store row
                continue
            c = cells[(person, scope, value, day)]
            c[0] += qty
            c[1] += amount
            c[3] += qty < 0
            if qty > 0:
                c[2].add(order)
                c[4] = ts if c[4] is None else min(c[4], ts)
                c[5] = ts if c[5] is None else max(c[5], ts)
    return {k: (q, round(a, 6), len(o), r, f, last) for k, (q, a, o, r, f, last) in cells.items()}


def test_purchase_dimensions_from_facts_match_the_lines(brand: Database) -> None:
    assert brand.scalar("SELECT COUNT(*) FROM members WHERE merged_into IS NOT NULL") > 0  # multi-record persons
    assert brand.scalar("SELECT COUNT(*) FROM order_lines WHERE qty < 0") > 100
    assert _check(brand) > 100  # most conditions find someone: the comparison is not over empty sets

    # OneID merges two persons and splits a record off another: the person facts move with the records
    heads = [r[0] for r in brand.rows("SELECT DISTINCT member_id FROM order_lines l JOIN members m ON m.id = l.member_id "
                                      "WHERE m.merged_into IS NULL ORDER BY member_id LIMIT 6")]
    oneid.merge(brand, heads[0], heads[1], actor="test", reason="same person")
    link = brand.one("SELECT id, a, b FROM links WHERE status = 'active' AND rule <> 'manual' AND b IN (SELECT member_id "
                     "FROM order_lines) ORDER BY id LIMIT 1")  # the record split off takes its purchases along
    assert link is not None
    oneid.split_link(brand, link["id"], actor="test", reason="two people")
    assert brand.scalar("SELECT COUNT(*) FROM members WHERE id = ? AND merged_into IS NULL", (link["b"],)) == 1
    _check(brand)

    # an erasure re-keys the person's lines to an anonymous id: the person and its purchases are gone
    erasure.erase(brand, heads[2], actor="test")
    assert brand.scalar("SELECT COUNT(*) FROM purchase_days WHERE member_id = ?", (heads[2],)) == 0
    assert brand.scalar("SELECT COUNT(*) FROM person_purchase_days WHERE person_id = ?", (heads[2],)) == 0
    _check(brand)

    # a full rebuild that moves one record (a new record sharing a person's phone, with purchases of
    # its own): only the persons it left and joined have their facts changed, not everyone's
    phone = brand.one("SELECT i.value, COALESCE(m.merged_into, m.id) AS person FROM identifiers i JOIN members m ON m.id = i.member_id "
                      "WHERE i.kind = 'phone' AND i.blocked IS NULL ORDER BY i.value LIMIT 1")
    with brand.transaction() as tx:
        tx.execute("INSERT INTO members (id, source, source_key, created) VALUES ('late', 'crm', 'late', "
                   "'2026-01-01T00:00:00+00:00')")
        oneid.add_identifiers(tx, "late", [("phone", phone["value"])])
        purchases.add_lines(tx, [("late-o1", "late", "pos", None, int((END - timedelta(days=3)).timestamp()),
                                  "SKU-LATE", "护肤", 2, 50.0, 100.0)])
    untouched = brand.scalar("SELECT COUNT(*) FROM person_purchase_days")
    assert oneid.rebuild(brand, actor="test").moved == 1
    assert brand.scalar("SELECT merged_into FROM members WHERE id = 'late'") == phone["person"]
    assert brand.scalar("SELECT COUNT(*) FROM person_purchase_days") >= untouched
    _check(brand)

    # a rule change and a full rebuild: phones no longer link, so every phone-made person comes apart
    # (it moves more than a quarter of the records: a large move, as a first rebuild's)
    before = brand.scalar("SELECT COUNT(*) FROM members WHERE merged_into IS NULL")
    with brand.transaction() as tx:
        oneid.set_rule(tx, oneid.Rule("phone", True, 80, 2, 20, False))
    moved = oneid.rebuild(brand, actor="test").moved
    assert moved * 4 >= brand.scalar("SELECT COUNT(*) FROM members")
    assert brand.scalar("SELECT COUNT(*) FROM members WHERE merged_into IS NULL") > before
    _check(brand)

    # and back: phones link again, records only join persons (a first rebuild's move): their facts are
    # added to the persons they join, every moved record's in one statement
    with brand.transaction() as tx:
        oneid.set_rule(tx, oneid.Rule("phone", True, 80, 2, 20, True))
    assert oneid.rebuild(brand, actor="test").moved * 4 >= brand.scalar("SELECT COUNT(*) FROM members")
    assert brand.scalar("SELECT COUNT(*) FROM members WHERE merged_into IS NULL") == before
    _check(brand)
