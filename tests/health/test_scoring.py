"""Scores against own history and peers, peer groups and the weighted model, on hand-computed cases."""

from __future__ import annotations

from datetime import date

import pytest

from cloud.health.metrics import BY_NAME
from cloud.health.model import DEFAULT_WEIGHTS, WeightsError, combine, validate
from cloud.health.peers import PeerGroup, peer_groups
from cloud.health.scoring import metric_score, relative_score, score_day

GREETED, GREET_TIME, NEW = BY_NAME["greeted_share"], BY_NAME["median_time_to_greet_s"], BY_NAME["new_members"]


def test_relative_score() -> None:
    assert relative_score(0.5, 0.5, GREETED) == 50  # level with the baseline
    assert relative_score(0.6, 0.5, GREETED) == pytest.approx(70)  # +20 % of a 50 % tolerance
    assert relative_score(1.0, 0.5, GREETED) == 100  # clamped
    assert relative_score(0.0, 0.5, GREETED) == 0
    assert relative_score(30, 40, GREET_TIME) == pytest.approx(75)  # 25 % faster greets are better
    assert relative_score(1, 0, NEW) == 100  # min_scale 1: from 0 to 1 new member is +100 %


def test_metric_score_averages_what_it_has() -> None:
    assert metric_score(0.6, 0.5, 0.6, GREETED) == pytest.approx(60)  # (70 + 50) / 2
    assert metric_score(0.6, None, 0.6, GREETED) == pytest.approx(50)
    assert metric_score(0.6, None, None, GREETED) is None


def test_peer_groups_fall_back_to_the_city_tier() -> None:
    groups = peer_groups({"A": ("tier1", "mall"), "B": ("tier1", "mall"), "C": ("tier1", "mall"),
                          "D": ("tier1", "street"), "E": ("tier2", "mall"), "F": (None, None)})
    assert groups["A"] == PeerGroup("tier1/mall", ("B", "C"))
    assert groups["D"] == PeerGroup("tier1", ("A", "B", "C"))  # alone in its format
    assert groups["E"] == PeerGroup("tier2", ())
    assert groups["F"].stores == ()


def test_score_day_same_weekday_history_and_peer_median() -> None:
    day = date(2026, 3, 10)
    values = {("A", "2026-03-10", "greeted_share"): 0.6, ("A", "2026-03-03", "greeted_share"): 0.4,
              ("A", "2026-02-24", "greeted_share"): 0.6, ("A", "2026-03-09", "greeted_share"): 0.0,  # not a Tuesday
              ("B", "2026-03-10", "greeted_share"): 0.4, ("C", "2026-03-10", "greeted_share"): 0.8,
              ("A", "2026-03-10", "median_time_to_greet_s"): 30.0, ("A", "2026-03-03", "median_time_to_greet_s"): 40.0,
              ("A", "2026-02-24", "median_time_to_greet_s"): 40.0}
    groups = {"A": PeerGroup("tier1/mall", ("B", "C")), "B": PeerGroup("tier1/mall", ("A", "C")),
              "C": PeerGroup("tier1/mall", ("A", "B"))}
    rows = {(r[0], r[2]): r for r in score_day(values, day, groups)}
    store, d, metric, value, own, peer, score = rows[("A", "greeted_share")]
    assert (value, own, peer) == (0.6, pytest.approx(0.5), pytest.approx(0.6))
    assert score == pytest.approx(60)
    assert rows[("A", "median_time_to_greet_s")][4:] == (40.0, None, 75.0)  # no peer has the metric
    # B: no history, peers A and C -> median 0.7; 0.4 is 3/7 below it: 50 + 50 * (-3/7) / 0.5
    assert rows[("B", "greeted_share")][5:] == (pytest.approx(0.7), pytest.approx(50 - 300 / 7, abs=0.01))


def test_combine_weights_renormalise_over_what_exists() -> None:
    weights = validate({})
    health = combine({"greeted_share": 60, "median_time_to_greet_s": 75}, weights)
    assert health.sub_scores["experience"] == pytest.approx((60 * 0.3 + 75 * 0.2) / 0.5)  # 66
    assert health.sub_scores["team"] is None
    assert health.overall == pytest.approx(66)
    health = combine({"greeted_share": 60, "median_time_to_greet_s": 75, "claimed_share": 40}, weights)
    assert health.overall == pytest.approx((66 + 40) / 2)


def test_custom_weights() -> None:
    weights = validate({"overall": {"experience": 3, "team": 1, "customer": 0, "product": 0}})
    health = combine({"greeted_share": 80, "claimed_share": 40}, weights)
    assert health.overall == pytest.approx((80 * 3 + 40) / 4)
    assert weights["experience"] == DEFAULT_WEIGHTS["experience"]  # groups not given keep their defaults


@pytest.mark.parametrize("bad, reason", [
    ({"vibes": {"x": 1}}, "unknown weight group"),
    ({"team": {"greeted_share": 1}}, "not part of team"),
    ({"overall": {"team": -1}}, ">= 0"),
    ({"product": {"sell_through": 0}}, "sum to 0"),
])
def test_bad_weights_are_refused_with_the_reason(bad: dict, reason: str) -> None:
    with pytest.raises(WeightsError, match=reason):
        validate(bad)


def test_sell_through_is_best_at_its_normal_empty_shelves_score_zero() -> None:
    sell = BY_NAME["sell_through"]
    assert sell.direction == "band" and sell.expects == "stock"
    assert relative_score(0.35, 0.35, sell) == 50  # the store's normal
    assert relative_score(0.996, 0.35, sell) == 0  # shelves sold empty are bad, not "higher is better"
    assert relative_score(0.0, 0.35, sell) == 0  # nothing sold: unsold stock
    assert relative_score(0.42, 0.35, sell) == pytest.approx(30)  # 20 % off its normal of a 50 % tolerance


def test_every_scored_metric_declares_its_direction_and_what_it_expects() -> None:
    from cloud.health.metrics import SCORED
    for m in SCORED:
        assert m.direction in ("higher", "lower", "band")
    assert {m.name for m in SCORED if m.expects == "arrivals"} >= {"greeted_share", "served_share",
                                                                   "median_time_to_greet_s", "claimed_share"}


def _week(store: str, day: date, metric: str, value: float, weeks: int = 4) -> dict:
    from datetime import timedelta
    return {(store, (day - timedelta(weeks=k)).isoformat(), metric): value for k in range(1, weeks + 1)}


def test_a_dark_door_camera_on_an_open_day_scores_zero_instead_of_no_data() -> None:
    day = date(2026, 3, 10)
    values = {**_week("A", day, "arrivals", 120), **_week("A", day, "greeted_share", 0.6),
              **_week("A", day, "orders", 30), **_week("A", day, "avg_ticket", 300),
              ("A", "2026-03-10", "orders"): 28.0, ("A", "2026-03-10", "avg_ticket"): 310.0}  # the till worked
    groups = {"A": PeerGroup("none", ())}
    rows = {r[2]: r for r in score_day(values, day, groups)}
    assert rows["greeted_share"][3:] == (0.0, pytest.approx(0.6), None, 0.0)  # an incident, not missing data
    assert rows["avg_ticket"][6] > 50
    # closed (nothing at all that day): nothing expected, nothing scored
    closed = {k: v for k, v in values.items() if k[1] != "2026-03-10"}
    assert score_day(closed, day, groups) == []
    # a quiet store whose camera rarely sees 20 people is not judged by this rule
    quiet = {**values, **_week("A", day, "arrivals", 8)}
    assert "greeted_share" not in {r[2] for r in score_day(quiet, day, groups)}


def test_pos_down_zeroes_the_till_metrics() -> None:
    day = date(2026, 3, 10)
    values = {**_week("A", day, "arrivals", 120), **_week("A", day, "orders", 30), **_week("A", day, "avg_ticket", 300),
              ("A", "2026-03-10", "arrivals"): 115.0}
    rows = {r[2]: r for r in score_day(values, day, {"A": PeerGroup("none", ())})}
    assert rows["avg_ticket"][6] == 0.0


def test_today_is_not_scored_until_it_is_over() -> None:
    day = date(2026, 3, 10)
    values = {**_week("A", day, "greeted_share", 0.6), ("A", "2026-03-10", "greeted_share"): 0.1}
    groups = {"A": PeerGroup("none", ())}
    assert score_day(values, day, groups, {"A": "2026-03-10"}) == []
    assert len(score_day(values, day, groups, {"A": "2026-03-11"})) == 1


def test_a_till_down_for_the_evening_takes_the_evenings_share_from_the_ticket_metrics() -> None:
    from datetime import timedelta
    day = date(2026, 3, 10)
    values = {**_week("A", day, "arrivals", 120), **_week("A", day, "orders", 60), **_week("A", day, "avg_ticket", 300),
              ("A", "2026-03-10", "arrivals"): 118.0, ("A", "2026-03-10", "orders"): 40.0,
              ("A", "2026-03-10", "avg_ticket"): 300.0, **_week("A", day, "greeted_share", 0.6),
              ("A", "2026-03-10", "greeted_share"): 0.6}
    # 10:00-22:00, five tickets an hour; this day the till recorded nothing from 18:00
    hours = {}
    for k in range(5):
        d = (day - timedelta(weeks=k)).isoformat()
        for h in range(10, 22):
            hours[("A", f"{d}T{h}:00", "orders")] = 0.0 if k == 0 and h >= 18 else 5.0
        hours[("A", d, "arrivals")] = 1.0  # the day has hourly rows
    groups = {"A": PeerGroup("none", ())}
    plain = {r[2]: r[6] for r in score_day(values, day, groups)}
    weighed = {r[2]: r[6] for r in score_day(values, day, groups, hours=hours)}
    assert plain["avg_ticket"] == 50.0  # the tickets it has look normal...
    assert weighed["avg_ticket"] == pytest.approx(50.0 * (1 - 4 / 12), abs=0.01)  # ...but 4 of 12 hours were an incident
    assert weighed["greeted_share"] == plain["greeted_share"] == 50.0  # the door's metrics are not touched


def test_a_guide_screen_frozen_for_the_evening_weighs_on_the_greeting_metrics_not_the_till() -> None:
    from datetime import timedelta
    day = date(2026, 3, 10)
    values = {**_week("A", day, "arrivals", 240), **_week("A", day, "greeted_share", 0.6),
              **_week("A", day, "avg_ticket", 300), **_week("A", day, "orders", 30),
              ("A", "2026-03-10", "arrivals"): 240.0, ("A", "2026-03-10", "greeted_share"): 0.6,
              ("A", "2026-03-10", "orders"): 30.0, ("A", "2026-03-10", "avg_ticket"): 300.0}
    hours = {}
    for k in range(5):  # 20 arrivals an hour, 80 % claimed; this day no claim from 18:00
        d = (day - timedelta(weeks=k)).isoformat()
        for h in range(10, 22):
            hours[("A", f"{d}T{h}:00", "arrivals")] = 20.0
            hours[("A", f"{d}T{h}:00", "claimed_share")] = 0.0 if k == 0 and h >= 18 else 0.8
        hours[("A", d, "arrivals")] = 1.0
    weighed = {r[2]: r[6] for r in score_day(values, day, {"A": PeerGroup("none", ())}, hours=hours)}
    assert weighed["greeted_share"] == pytest.approx(50.0 * (1 - 4 / 12), abs=0.01)
    assert weighed["avg_ticket"] == 50.0
