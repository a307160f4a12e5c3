"""The metric formulas on hand-computed counts."""

from __future__ import annotations

import pytest

from cloud.health.formulas import Counts, DayExtras, daily_values, hourly_values
from cloud.health.metrics import METRICS


def test_hourly_values_from_counts() -> None:
    c = Counts(arrivals=4, members_recognised=1, claimed=3, greeted=2, served=2, sold=1, greet_delays_s=[30, 90, 40],
               wifi_footfall=10, orders=2, sales=500.0, member_sales=200.0, units=5)
    v = hourly_values(c)
    assert v["footfall"] == 10  # Wi-Fi saw more than the door camera
    assert v["recognised_share"] == pytest.approx(0.25)
    assert v["claimed_share"] == pytest.approx(0.75)
    assert v["greeted_share"] == pytest.approx(0.5)
    assert v["served_share"] == pytest.approx(0.5)
    assert v["converted_share"] == pytest.approx(0.5)
    assert v["median_time_to_greet_s"] == 40
    assert v["avg_ticket"] == 250
    assert v["units_per_ticket"] == 2.5
    assert v["member_sales_share"] == pytest.approx(0.4)
    assert v["conversion"] == pytest.approx(0.2)


def test_zero_denominators_leave_the_ratio_out() -> None:
    v = hourly_values(Counts(orders=0, arrivals=0))
    assert v["footfall"] == 0 and v["sales"] == 0
    for ratio in ("recognised_share", "greeted_share", "converted_share", "avg_ticket", "conversion",
                  "median_time_to_greet_s", "member_sales_share"):
        assert ratio not in v


def test_door_count_is_the_floor_without_wifi() -> None:
    assert hourly_values(Counts(arrivals=7))["footfall"] == 7


def test_day_adds_hours_and_keeps_hourly_footfall() -> None:
    day = Counts()
    day.add(Counts(arrivals=3, wifi_footfall=5, greet_delays_s=[30, 70], orders=2, sales=400.0))
    day.add(Counts(arrivals=1, greet_delays_s=[50], orders=1, sales=200.0))  # no Wi-Fi box that hour
    x = DayExtras(new_members=2, member_buyers=4, repeat_buyers=3, dormant_reactivated=1, churn_base=5, churned=1,
                  skus_stocked=4, stock_outs=1, units_available=20, units_sold_stock=5, markdown_loss=30.0,
                  assistants_active=2, daily_target=1000.0)
    v = daily_values(day, x)
    assert v["footfall"] == 6  # 5 + 1, not max(5, 4)
    assert v["median_time_to_greet_s"] == 50
    assert v["conversion"] == pytest.approx(0.5)
    assert v["repurchase_rate"] == pytest.approx(0.75)
    assert v["churn_rate"] == pytest.approx(0.2)
    assert v["stock_out_rate"] == pytest.approx(0.25)
    assert v["sell_through"] == pytest.approx(0.25)
    assert v["markdown_waste_share"] == pytest.approx(0.05)
    assert v["sales_per_assistant"] == 300
    assert v["target_attainment"] == pytest.approx(0.6)


def test_no_stock_data_means_no_stock_metrics() -> None:
    v = daily_values(Counts(orders=1, sales=10.0), DayExtras())
    assert not {"stock_outs", "sell_through", "markdown_waste", "target_attainment", "sales_per_assistant"} & set(v)


def test_every_metric_written_is_registered() -> None:
    day = Counts(arrivals=1, members_recognised=1, claimed=1, greeted=1, served=1, sold=1, greet_delays_s=[1],
                 orders=1, sales=1.0, member_sales=1.0, units=1)
    x = DayExtras(member_buyers=1, churn_base=1, skus_stocked=1, units_available=1, assistants_active=1, assistants_rostered=1,
                  daily_target=1.0)
    assert set(daily_values(day, x)) == {m.name for m in METRICS}
