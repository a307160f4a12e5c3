"""Recommendations: repurchase due, co-occurrence, the store filter, and the card's entry point."""

from __future__ import annotations

import math

from cloud.db import Database
from cloud.guide.recommend import service
from cloud.guide.recommend.history import person_lines
from cloud.guide.recommend.model import build_model
from cloud.guide.recommend.rank import recommend

from .history import NOW, member, order, product

T = int(NOW.timestamp())


def test_repurchase_due_reason_from_the_members_own_cycle(db: Database) -> None:
    product(db, "SERUM-1", "玻尿酸精华", "护肤", 329)
    product(db, "LIP-1", "丝绒口红", "彩妆", 269)
    person = member(db, "13800000001")
    for days in (108, 73, 38):  # every 35 days, last one 38 days ago: due
        order(db, person, days, [("SERUM-1", "护肤", 329)])
    for days in (40, 5):  # cycle 35 days, last 5 days ago: not due
        order(db, person, days, [("LIP-1", "彩妆", 269)])
    picks = recommend(build_model(db, now=T), person_lines(db, person), store="st-1", now=T)
    assert picks[0].sku == "SERUM-1" and picks[0].kind == "repurchase"
    assert picks[0].reason() == "38天前购买了玻尿酸精华，您通常每35天回购一次"
    assert picks[0].reason("en") == "bought 玻尿酸精华 38 days ago; you usually buy every 35 days"
    assert not any(p.kind == "repurchase" and p.category == "彩妆" for p in picks)
    assert "LIP-1" not in {p.sku for p in picks}  # bought 5 days ago and not due: not offered again


def test_a_habit_long_gone_is_not_called_due(db: Database) -> None:
    product(db, "SERUM-1", "玻尿酸精华", "护肤", 329)
    person = member(db, "13800000002")
    for days in (200, 190, 180):  # a 10-day cycle, last 180 days ago: 18 cycles, not "due"
        order(db, person, days, [("SERUM-1", "护肤", 329)])
    picks = recommend(build_model(db, now=T, window_days=365), person_lines(db, person), store="st-1", now=T)
    assert all(p.kind != "repurchase" for p in picks)


def test_co_occurrence_on_a_tiny_basket_set(db: Database) -> None:
    for _ in range(3):
        order(db, None, 10, [("A", "护肤", 100), ("B", "护肤", 120)])
    order(db, None, 10, [("A", "护肤", 100), ("C", "彩妆", 90)])
    order(db, None, 10, [("A", "护肤", 100), ("C", "彩妆", 90)])
    order(db, None, 10, [("B", "护肤", 120), ("D", "彩妆", 50)])  # support 1: below min_support
    model = build_model(db, now=T)
    assert model.items["A"].sales == 5 and model.items["B"].sales == 4
    (b, ab), (c, ac) = model.neighbours["A"]
    assert (b, c) == ("B", "C")
    assert math.isclose(ab, 3 / math.sqrt(5 * 4)) and math.isclose(ac, 2 / math.sqrt(5 * 2))
    assert "D" not in {s for s, _ in model.neighbours.get("B", [])}

    person = member(db, "13800000003")
    order(db, person, 2, [("A", "护肤", 100)])
    picks = recommend(build_model(db, now=T), person_lines(db, person), store="st-1", now=T)
    together = [p for p in picks if p.kind == "together"]
    assert [p.sku for p in together] == ["B", "C"]
    assert together[0].reason() == "购买A的顾客常一起购买"
    assert "A" not in {p.sku for p in picks}


def test_only_items_in_the_stores_catalogue(db: Database) -> None:
    product(db, "LISTED-1", "经典面霜", "护肤", 300)
    for _ in range(5):  # the brand's best seller, but only ever sold at st-2
        order(db, None, 3, [("ONLY-ST2", "护肤", 200)], shop="st-2")
    person = member(db, "13800000004")
    order(db, person, 60, [("OTHER", "护肤", 150)], shop="st-1")
    model = build_model(db, now=T)
    lines = person_lines(db, person)
    at_st1 = {p.sku for p in recommend(model, lines, store="st-1", now=T)}
    at_st2 = {p.sku for p in recommend(model, lines, store="st-2", now=T)}
    assert "ONLY-ST2" not in at_st1 and "LISTED-1" in at_st1
    assert {"ONLY-ST2", "LISTED-1"} <= at_st2


def test_new_arrivals_in_preferred_category_and_price_band(db: Database) -> None:
    product(db, "NEW-MID", "新款精华", "护肤", 300, is_new=True)
    product(db, "NEW-LUX", "奢华面霜", "护肤", 2000, is_new=True)
    product(db, "NEW-LIP", "新款唇釉", "彩妆", 280, is_new=True)
    person = member(db, "13800000005")
    order(db, person, 20, [("OLD", "护肤", 260)])
    picks = recommend(build_model(db, now=T), person_lines(db, person), store="st-1", now=T)
    new = [p for p in picks if p.kind == "new"]
    assert [p.sku for p in new] == ["NEW-MID"]
    assert new[0].reason() == "护肤新品，在您常选的价位"


def test_for_card_gives_protocol_recommendations_and_a_refresh_picks_up_new_sales(db: Database) -> None:
    product(db, "SERUM-1", "玻尿酸精华", "护肤", 329)
    person = member(db, "13800000006")
    for days in (70, 35):
        order(db, person, days, [("SERUM-1", "护肤", 329)])
    service.refresh(db, now=T)
    recs = service.for_card(db, person, "st-1", NOW)
    assert recs[0].sku == "SERUM-1" and recs[0].reason == "35天前购买了玻尿酸精华，您通常每35天回购一次"
    assert len(recs) <= 3
    order(db, None, 1, [("FRESH", "彩妆", 99)])
    assert "FRESH" not in service.model_for(db).items
    service.refresh(db, now=T)
    assert "FRESH" in service.model_for(db).items


def test_a_person_without_history_gets_best_sellers(db: Database) -> None:
    product(db, "SERUM-1", "玻尿酸精华", "护肤", 329)
    order(db, None, 3, [("SERUM-1", "护肤", 329)])
    person = member(db, "13800000007")
    picks = recommend(build_model(db, now=T), person_lines(db, person), store="st-1", now=T)
    assert picks[0].sku == "SERUM-1" and picks[0].reason() == "本店热销"
