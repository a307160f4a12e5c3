"""Every catalogued segment dimension against hand-computed answers on a three-person brand (issue 15).

The brand, as of 2026-12-01 12:00 Asia/Shanghai (windows: the last 30 days, or 2026-11-01..11-30):

* A  female, born 1995-12-15 (30, band 30-34), 1500 points, home s1 (上海, tier 1), 金卡会员, signed up
  2025-05-01, face consent; a merged Tmall record A2. Stats: 3 orders, LTV 1200, R5 F4 M5 (high),
  active, cycle 30 d, top 护肤/彩妆, price band high, favourite pos / s1. Tag 敏感肌=true.
  Lines: o1 pos s1 K1 护肤 2 units 400 on 11-21; o2 (A2) tmall K2 彩妆 1 unit 300 on 10-22;
  o3 pos s1 K1 护肤 1 unit 500 on 05-15. Visits: s1 face 11-25 (served), s2 Wi-Fi 09-01.
* B  male, born 2001-03-02 (25, band 25-29), 200 points, home s2 (成都, tier 2), 普通会员, signed up
  2026-06-10, no consent. Stats: 1 order, LTV 100, R2 F1 M1 (low), dormant, top 彩妆, price band
  low, favourite tmall. Tag 敏感肌=false. Lines: o4 tmall K2 彩妆 1 unit 100 on 11-10, refunded
  11-16 (-1 unit, -100). Visits: s2 face+wifi 11-28 (greeted). A visit at s1 once taken for B
  was corrected ("不是本人"): nobody's.
* C  a WeChat record, nothing else known, signed up 2026-11-20: no orders, no visits, no stats.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cloud.cdp import dimensions, purchases, segments, survivorship, tags
from cloud.db import Database

LOCAL = timezone(timedelta(hours=8))
AS_OF = datetime(2026, 12, 1, 12, 0, tzinfo=LOCAL)
ALL = {"A", "B", "C"}


def _t(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T10:00:00+08:00")


def _iso(day: str) -> str:
    return _t(day).astimezone(UTC).isoformat(timespec="microseconds")


@pytest.fixture
def brand(db: Database) -> Database:
    with db.transaction() as tx:
        for store, city, tier in (("s1", "上海", "1"), ("s2", "成都", "2")):
            tx.execute("INSERT INTO stores (id, brand, name, city, city_tier, created) VALUES (?, 'b', ?, ?, ?, ?)",
                       (store, store, city, tier, "2025-01-01T00:00:00+00:00"))
        for row in (
            ("A", "member", "A", "female", "金卡会员", 1, "s1", "2025-05-01T00:00:00+00:00", None, "1995-12-15", 1500),
            ("A2", "tmall", "A2", None, "普通会员", 0, None, "2024-01-01T00:00:00+00:00", "A", None, None),
            ("B", "member", "B", "male", "普通会员", 0, "s2", "2026-06-10T00:00:00+00:00", None, "2001-03-02", 200),
            ("C", "wechat", "C", None, "普通会员", 0, None, "2026-11-20T00:00:00+00:00", None, None, None),
        ):
            tx.execute("INSERT INTO members (id, source, source_key, gender, tier, face_consent, home_store, created, "
                       "merged_into, birthday, points) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        for stats in (
            ("A", 3, 1200.0, 5, 4, 5, "high", "active", 30.0, '["护肤", "彩妆"]', "high", "pos", "s1"),
            ("B", 1, 100.0, 2, 1, 1, "low", "dormant", None, '["彩妆"]', "low", "tmall", None),
        ):
            tx.execute("INSERT INTO person_stats (member_id, orders, ltv, r, f, m, value_tier, lifecycle, cycle_days, "
                       "top_categories, price_band, fav_channel, fav_store, updated) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'x')", stats)
        tx.execute("INSERT INTO person_tags (member_id, tag, value, source) VALUES ('A', '敏感肌', 'true', 'manual')")
        tx.execute("INSERT INTO person_tags (member_id, tag, value, source) VALUES ('B', '敏感肌', 'false', 'manual')")
        for order, member, channel, store, day, sku, category, qty, amount in (
            ("o1", "A", "pos", "s1", "2026-11-21", "K1", "护肤", 2, 400.0),
            ("o2", "A2", "tmall", None, "2026-10-22", "K2", "彩妆", 1, 300.0),
            ("o3", "A", "pos", "s1", "2026-05-15", "K1", "护肤", 1, 500.0),
            ("o4", "B", "tmall", None, "2026-11-10", "K2", "彩妆", 1, 100.0),
            ("o4r", "B", "tmall", None, "2026-11-16", "K2", "彩妆", -1, -100.0),
        ):
            ts = int(_t(day).timestamp())
            tx.execute("INSERT INTO orders (id, channel, order_no, store, member_id, ts, paid, status, refund_of) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (order, channel, order, store, member, ts, amount, "refund" if qty < 0 else "paid",
                        "o4" if qty < 0 else None))
            purchases.add_lines(tx, [(order, member, channel, store, ts, sku, category, qty, abs(amount / qty),
                                      amount)])
        for visit, member, store, day, signals, corrected in (
            ("v1", "A", "s1", "2026-11-25", "face", None), ("v2", "A", "s2", "2026-09-01", "wifi", None),
            ("v3", "B", "s2", "2026-11-28", "face+wifi", None), ("v4", None, "s1", "2026-11-26", "face", "B"),
        ):
            tx.execute("INSERT INTO arrivals (event_id, brand, store, device, camera, ts, received) "
                       "VALUES (?, 'b', ?, 'e1', 'c1', ?, ?)", (f"e-{visit}", store, _iso(day), _iso(day)))
            tx.execute("INSERT INTO visits (id, brand, store, member_id, confidence, ts, arrival_event_id, device, "
                       "camera, card_id, signals, corrected_member_id) VALUES (?, 'b', ?, ?, 0.6, ?, ?, 'e1', 'c1', "
                       "?, ?, ?)", (visit, store, member, _iso(day), f"e-{visit}", f"card-{visit}", signals, corrected))
        for fid, visit, action in (("f1", "v1", "greeted"), ("f2", "v1", "served"), ("f3", "v3", "greeted"),
                                   ("f4", "v4", "served")):
            tx.execute("INSERT INTO feedback (feedback_id, brand, store, screen, card_id, visit_id, action, ts, received) "
                       "VALUES (?, 'b', 's1', 'g', ?, ?, ?, ?, ?)",
                       (fid, f"card-{visit}", visit, action, _iso("2026-11-28"), _iso("2026-11-28")))
        survivorship.store(tx)  # what every resolution and tag refresh keeps up to date
    return db


DAYS = {"days": 30}
NOV = {"from": "2026-11-01", "to": "2026-11-30"}
# (dimension, node fields besides the name, the expected persons): windowed ones are checked in both windows
WINDOWED: list[tuple[str, dict, set[str]]] = [
    ("bought.any", {}, {"A"}),
    ("bought.channel", {"scope": "tmall"}, set()),  # B's tmall order was refunded
    ("bought.store", {"scope": "s1"}, {"A"}),
    ("bought.category", {"scope": "彩妆"}, set()),
    ("bought.sku", {"scope": "K1"}, {"A"}),
    ("not_bought.any", {}, {"B", "C"}),
    ("not_bought.channel", {"scope": "tmall"}, ALL),
    ("not_bought.store", {"scope": "s1"}, {"B", "C"}),
    ("not_bought.category", {"scope": "彩妆"}, ALL),
    ("not_bought.sku", {"scope": "K1"}, {"B", "C"}),
    ("refunded.any", {}, {"B"}),
    ("refunded.channel", {"scope": "tmall"}, {"B"}),
    ("refunded.store", {"scope": "s1"}, set()),
    ("refunded.category", {"scope": "彩妆"}, {"B"}),
    ("refunded.sku", {"scope": "K2"}, {"B"}),
    ("order_count.any", {"op": ">=", "value": 1}, {"A", "B"}),
    ("order_count.channel", {"scope": "tmall", "op": ">=", "value": 1}, {"B"}),
    ("order_count.store", {"scope": "s1", "op": "=", "value": 1}, {"A"}),
    ("order_count.category", {"scope": "护肤", "op": ">", "value": 0}, {"A"}),
    ("order_count.sku", {"scope": "K2", "op": "between", "value": [1, 3]}, {"B"}),
    ("order_amount.any", {"op": ">=", "value": 100}, {"A"}),  # B's is net 0
    ("order_amount.channel", {"scope": "tmall", "op": "=", "value": 0}, ALL),
    ("order_amount.store", {"scope": "s1", "op": ">", "value": 300}, {"A"}),
    ("order_amount.category", {"scope": "护肤", "op": "between", "value": [100, 500]}, {"A"}),
    ("order_amount.sku", {"scope": "K2", "op": "<", "value": 50}, ALL),
    ("units.any", {"op": ">=", "value": 2}, {"A"}),
    ("units.channel", {"scope": "pos", "op": ">=", "value": 1}, {"A"}),
    ("units.store", {"scope": "s1", "op": "=", "value": 2}, {"A"}),
    ("units.category", {"scope": "彩妆", "op": "=", "value": 0}, ALL),
    ("units.sku", {"scope": "K2", "op": ">", "value": 0}, set()),
    ("visits.any", {"op": ">=", "value": 1}, {"A", "B"}),
    ("visits.store", {"scope": "s1", "op": ">=", "value": 1}, {"A"}),  # the corrected s1 visit is nobody's
    ("visits_face.any", {"op": ">=", "value": 1}, {"A", "B"}),
    ("visits_face.store", {"scope": "s2", "op": ">=", "value": 1}, {"B"}),
    ("visits_wifi.any", {"op": ">=", "value": 1}, {"B"}),
    ("visits_wifi.store", {"scope": "s1", "op": ">=", "value": 1}, set()),
    ("greeted.any", {}, {"A", "B"}),
    ("greeted.store", {"scope": "s2"}, {"B"}),
    ("served.any", {}, {"A"}),
    ("served.store", {"scope": "s2"}, set()),
]
PLAIN: list[tuple[str, dict, set[str]]] = [
    ("gender", {"op": "in", "value": ["female"]}, {"A"}),
    ("gender", {"op": "not_in", "value": ["female"]}, {"B", "C"}),
    ("age", {"op": "between", "value": [25, 34]}, {"A", "B"}),
    ("age", {"op": ">=", "value": 30}, {"A"}),
    ("age_band", {"op": "in", "value": ["30-34"]}, {"A"}),
    ("age_band", {"op": "in", "value": ["25-29"]}, {"B"}),
    ("birthday_month", {"op": "=", "value": 12}, {"A"}),
    ("signed_up", {"op": "after", "value": "2026-06-01"}, {"B", "C"}),
    ("points", {"op": ">=", "value": 1000}, {"A"}),
    ("home_store", {"op": "in", "value": ["s2"]}, {"B"}),
    ("city", {"op": "in", "value": ["上海"]}, {"A"}),
    ("city_tier", {"op": "in", "value": ["2"]}, {"B"}),
    ("tier", {"op": "in", "value": ["金卡会员"]}, {"A"}),
    ("lifecycle", {"op": "in", "value": ["active"]}, {"A"}),
    ("lifecycle", {"op": "not_in", "value": ["active"]}, {"B", "C"}),
    ("value_tier", {"op": "in", "value": ["high"]}, {"A"}),
    ("tag", {"scope": "敏感肌"}, {"A", "B"}),
    ("tag", {"scope": "敏感肌", "value": ["true"]}, {"A"}),
    ("consent_face", {"value": True}, {"A"}),
    ("consent_face", {"value": False}, {"B", "C"}),
    ("channel", {"op": "in", "value": ["tmall"]}, {"A"}),
    ("channel", {"op": "in", "value": ["wechat"]}, {"C"}),
    ("r_score", {"op": ">=", "value": 4}, {"A"}),
    ("f_score", {"op": ">=", "value": 4}, {"A"}),
    ("m_score", {"op": "<=", "value": 1}, {"B"}),
    ("rfm_score", {"op": ">=", "value": 12}, {"A"}),
    ("ltv", {"op": ">=", "value": 1000}, {"A"}),
    ("lifetime_orders", {"op": "=", "value": 1}, {"B"}),
    ("avg_order_value", {"op": ">=", "value": 300}, {"A"}),
    ("repurchase_cycle", {"op": "<=", "value": 60}, {"A"}),
    ("price_band", {"op": "in", "value": ["low"]}, {"B"}),
    ("fav_channel", {"op": "in", "value": ["tmall"]}, {"B"}),
    ("fav_store", {"op": "in", "value": ["s1"]}, {"A"}),
    ("top_category", {"op": "in", "value": ["彩妆"]}, {"A", "B"}),
    ("top_category", {"op": "in", "value": ["护肤"]}, {"A"}),
    ("first_purchase.any", {"op": "after", "value": "2026-06-01"}, {"B"}),
    ("first_purchase.channel", {"scope": "tmall", "op": "after", "value": "2026-06-01"}, {"A", "B"}),
    ("first_purchase.store", {"scope": "s1", "op": "before", "value": "2026-06-01"}, {"A"}),
    ("first_purchase.category", {"scope": "彩妆", "op": "on", "value": "2026-10-22"}, {"A"}),
    ("first_purchase.sku", {"scope": "K1", "op": "between", "value": ["2026-05-01", "2026-05-31"]}, {"A"}),
    ("last_purchase.any", {"op": "after", "value": "2026-11-15"}, {"A"}),
    ("last_purchase.channel", {"scope": "tmall", "op": "before", "value": "2026-11-01"}, {"A"}),
    ("last_purchase.store", {"scope": "s1", "op": "on", "value": "2026-11-21"}, {"A"}),
    ("last_purchase.category", {"scope": "彩妆", "op": "after", "value": "2026-11-01"}, {"B"}),
    ("last_purchase.sku", {"scope": "K2", "op": "between", "value": ["2026-11-01", "2026-11-30"]}, {"B"}),
    ("first_visit.any", {"op": "before", "value": "2026-10-01"}, {"A"}),
    ("first_visit.store", {"scope": "s2", "op": "on", "value": "2026-09-01"}, {"A"}),
    ("last_visit.any", {"op": "after", "value": "2026-11-26"}, {"B"}),
    ("last_visit.store", {"scope": "s1", "op": "between", "value": ["2026-11-20", "2026-11-30"]}, {"A"}),
    # zero satisfies: people with no rows at all are in
    ("order_count.any.days", {"days": 30, "op": "<", "value": 1}, {"C"}),
    ("visits.any.days", {"days": 30, "op": "=", "value": 0}, {"C"}),
    # a wider window
    ("visits_wifi.any.days", {"days": 120, "op": ">=", "value": 1}, {"A", "B"}),
    ("bought.category.days", {"scope": "彩妆", "days": 60}, {"A"}),
]
CASES = ([(f"{name}.days", {**fields, **DAYS}, want) for name, fields, want in WINDOWED]
         + [(f"{name}.between", {**fields, **NOV}, want) for name, fields, want in WINDOWED] + PLAIN)


def _ids(db: Database, node: dict) -> set[str]:
    condition = segments.Condition.parse(node)
    found = {r["id"] for r in segments.page(db, condition, limit=100, offset=0, as_of=AS_OF)}
    assert segments.count(db, condition, as_of=AS_OF) == len(found)
    return found


def test_every_dimension_has_a_hand_computed_case() -> None:
    assert len(dimensions.CATALOGUE) >= 100
    assert {name for name, _, _ in CASES} >= set(dimensions.CATALOGUE)


def test_every_dimension_against_its_hand_computed_answer(brand: Database) -> None:
    wrong = []
    for name, fields, want in CASES:
        got = _ids(brand, {"dim": {"name": name, **fields}})
        if got != want:
            wrong.append((name, fields, sorted(got), sorted(want)))
    assert wrong == []


def test_dimensions_combine_with_the_language(brand: Database) -> None:
    five = {"and": [{"dim": {"name": "gender", "op": "in", "value": ["female", "male"]}},
                    {"dim": {"name": "age", "op": ">=", "value": 18}},
                    {"dim": {"name": "bought.any.days", "days": 365}},
                    {"not": {"dim": {"name": "refunded.any.days", "days": 365}}},
                    {"dim": {"name": "visits.any.days", "days": 90, "op": ">=", "value": 1}}]}
    assert _ids(brand, five) == {"A"}
    assert _ids(brand, {"or": [{"dim": {"name": "city_tier", "op": "in", "value": ["2"]}},
                               {"lifecycle": ["active"]}]}) == {"A", "B"}


@pytest.mark.parametrize("node, message", [
    ({"name": "nope"}, "unknown dimension"),
    ({"name": "bought.category.days", "days": 30}, "give scope"),
    ({"name": "bought.any.days"}, "give days"),
    ({"name": "bought.any.between", "from": "2026-02-01", "to": "2026-01-01"}, "from <= to"),
    ({"name": "ltv", "op": "in", "value": [1]}, "op must be one of"),
    ({"name": "ltv", "op": ">=", "value": "1 OR 1=1"}, "must be a number"),
    ({"name": "gender", "op": "in", "value": ["x'; DROP TABLE members; --"]}, "is not one of"),
    ({"name": "ltv", "op": ">=", "value": 1, "days": 3}, "takes no window"),
    ({"name": "gender", "op": "in", "value": ["female"], "scope": "x"}, "takes no scope"),
    ({"name": "signed_up", "op": "after", "value": "yesterday"}, "must be a date"),
])
def test_a_wrong_dimension_node_is_an_invalid_condition(node: dict, message: str) -> None:
    with pytest.raises(segments.InvalidCondition, match=message):
        segments.Condition.parse({"dim": node})


def test_values_are_bound_never_sql(brand: Database) -> None:
    hostile = "护肤' OR '1'='1"
    assert _ids(brand, {"dim": {"name": "bought.category.days", "scope": hostile, "days": 30}}) == set()
    assert _ids(brand, {"dim": {"name": "tier", "op": "in", "value": [hostile]}}) == set()
    assert brand.scalar("SELECT COUNT(*) FROM members") == 4


def test_portrait_against_the_base(brand: Database) -> None:
    condition = segments.Condition.parse({"dim": {"name": "visits.any.days", "days": 30, "op": ">=", "value": 1}})
    portrait = segments.portrait(brand, condition, as_of=AS_OF)
    assert (portrait["segment"], portrait["base"]) == (2, 3)
    assert set(portrait["facets"]) == {"city_tier", "age_band", "gender", "channel", "tier", "lifecycle"}
    gender = {v["value"]: v for v in portrait["facets"]["gender"]}
    assert gender["female"] == {"value": "female", "segment": 1, "base": 1, "segment_share": 0.5,
                                "base_share": 0.333333, "index": 150.0}
    assert gender["unknown"]["segment"] == 0 and gender["unknown"]["base"] == 1
    ages = {v["value"]: (v["segment"], v["base"]) for v in portrait["facets"]["age_band"]}
    assert ages == {"30-34": (1, 1), "25-29": (1, 1), "unknown": (0, 1)}
    tiers = {v["value"]: (v["segment"], v["base"]) for v in portrait["facets"]["city_tier"]}
    assert tiers == {"1": (1, 1), "2": (1, 1), "unknown": (0, 1)}
    channels = {v["value"]: (v["segment"], v["base"]) for v in portrait["facets"]["channel"]}
    assert channels == {"pos": (1, 1), "tmall": (1, 1), "unknown": (0, 1)}
    stages = {v["value"]: (v["segment"], v["base"]) for v in portrait["facets"]["lifecycle"]}
    assert stages == {"active": (1, 1), "dormant": (1, 1), "unknown": (0, 1)}
    assert portrait["base_as_of"] is None  # no tag batch yet: the base was counted now


def test_portrait_compares_with_the_base_the_tag_batch_kept(brand: Database) -> None:
    """After the nightly batch the portrait groups only the segment's persons and reads the base's
    counts it kept: the same answer as counting the base now, until persons change; then the kept base
    is what the batch saw (its time says so) until the next batch."""
    condition = segments.Condition.parse({"dim": {"name": "visits.any.days", "days": 30, "op": ">=", "value": 1}})
    tags.refresh(brand, as_of=AS_OF)
    kept = segments.portrait(brand, condition, as_of=AS_OF)
    assert kept["base_as_of"] == AS_OF
    assert brand.scalar("SELECT COUNT(*) FROM portrait_base WHERE facet = 'gender'") == 3  # female, male, unknown
    brand.execute("DELETE FROM portrait_base")
    assert segments.portrait(brand, condition, as_of=AS_OF) == {**kept, "base_as_of": None}
    tags.refresh(brand, as_of=AS_OF)

    brand.execute("UPDATE members SET gender = 'male' WHERE id = 'C'")  # known from the next survivorship on
    stale = segments.portrait(brand, None, as_of=AS_OF)
    assert {v["value"]: v["base"] for v in stale["facets"]["gender"]} == {"female": 1, "male": 1, "unknown": 1}
    tags.refresh(brand, as_of=AS_OF + timedelta(hours=1))  # the next night's batch
    fresh = segments.portrait(brand, None, as_of=AS_OF)
    assert fresh["base_as_of"] == AS_OF + timedelta(hours=1)
    assert {v["value"]: v["base"] for v in fresh["facets"]["gender"]} == {"female": 1, "male": 2}


def test_attribute_dimensions_read_the_surviving_values_not_the_head_record(db: Database) -> None:
    """Defect 1's shape: the person's head is an older Tmall buyer (no gender, the default tier); the
    counter record merged into it says female, 钻石会员, born in December, home s1, with face consent
    proven by a code. Segments and the portrait see the surviving values. A second person whose
    merged-in sign-up consented without proof does not count as consenting; a third is plain."""
    with db.transaction() as tx:
        tx.execute("INSERT INTO stores (id, brand, name, city, city_tier, created) VALUES "
                   "('s1', 'b', 's1', '上海', '1', '2025-01-01T00:00:00+00:00')")
        for row in (
            ("Q", "tmall", "Q", None, "普通会员", 0, None, "2026-06-01T00:00:00+00:00", None, None, None, None, None),
            ("Qm", "member", "Qm", "female", "钻石会员", 1, "s1", "2026-11-01T00:00:00+00:00", "Q", "1990-12-03", 800,
             "v-1", "2019-03-08"),  # signed up at a counter in 2019, imported from the CRM this month
            ("S", "tmall", "S", None, "普通会员", 0, None, "2026-05-01T00:00:00+00:00", None, None, None, None, None),
            ("Sm", "member", "Sm", "male", "金卡会员", 1, None, "2026-11-02T00:00:00+00:00", "S", None, None, None,
             None),
            ("R", "member", "R", "male", "普通会员", 0, None, "2026-11-03T00:00:00+00:00", None, "2000-01-01", None,
             None, None),
        ):
            tx.execute("INSERT INTO members (id, source, source_key, gender, tier, face_consent, home_store, created, "
                       "merged_into, birthday, points, consent_proven, signed_up) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    tags.refresh(db, ["Q", "S", "R"], as_of=AS_OF)  # the incremental refresh an import or merge runs
    assert db.scalar("SELECT gender FROM members WHERE id = 'Q'") is None  # the head record says nothing
    for name, fields, want in (
        ("gender", {"op": "in", "value": ["female"]}, {"Q"}),
        ("gender", {"op": "in", "value": ["male"]}, {"S", "R"}),
        ("tier", {"op": "in", "value": ["钻石会员"]}, {"Q"}),
        ("tier", {"op": "in", "value": ["普通会员"]}, {"R"}),
        ("birthday_month", {"op": "=", "value": 12}, {"Q"}),
        ("age_band", {"op": "in", "value": ["35-39"]}, {"Q"}),
        ("points", {"op": ">=", "value": 500}, {"Q"}),
        ("home_store", {"op": "in", "value": ["s1"]}, {"Q"}),
        ("city", {"op": "in", "value": ["上海"]}, {"Q"}),
        ("consent_face", {"value": True}, {"Q"}),
        ("signed_up", {"op": "before", "value": "2020-01-01"}, {"Q"}),  # the sign-up date, not the Tmall record's
        ("signed_up", {"op": "after", "value": "2026-01-01"}, {"S", "R"}),  # no sign-up date: the head's creation
    ):
        assert _ids(db, {"dim": {"name": name, **fields}}) == want, name
    assert _ids(db, {"consent": {"face": True}}) == {"Q"}
    portrait = segments.portrait(db, None, as_of=AS_OF)["facets"]
    assert {v["value"]: v["base"] for v in portrait["tier"]} == {"钻石会员": 1, "金卡会员": 1, "普通会员": 1}
    assert {v["value"]: v["base"] for v in portrait["gender"]} == {"female": 1, "male": 2}

    # a split takes the counter record's values away again: the next refresh restates both persons
    db.execute("UPDATE members SET merged_into = NULL WHERE id = 'Qm'")
    tags.refresh(db, ["Q", "Qm"], as_of=AS_OF)
    assert _ids(db, {"dim": {"name": "tier", "op": "in", "value": ["钻石会员"]}}) == {"Qm"}
    assert _ids(db, {"dim": {"name": "gender", "op": "in", "value": ["female"]}}) == {"Qm"}
