"""The store health metrics: name, unit, grain, formula, source, and which sub-score they feed.

One registry, read by the rollup (what to write), the scoring (which direction is good, how
much change is a lot), the API (units) and docs/HEALTH.md (the same words). A metric with
``sub_score=None`` is shown on the dashboards but not scored: a raw count such as footfall
says more about a store's size than its health; the ratios built from it are scored instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Grain = Literal["hour", "day"]
#: which way is good: ``higher``/``lower``, or ``band``: the store's own normal is best and a move
#: either way is bad (sell-through near 1 means empty shelves, near 0 unsold stock)
Direction = Literal["higher", "lower", "band"]
#: what the metric needs to exist during opening hours: the door camera's ``arrivals``, the POS's
#: ``orders``, the Wi-Fi/door ``footfall``, the stock system's ``stock``, or nothing (``None``).
#: A metric whose source should have reported and did not is an incident (score 0), not "no data".
Expects = Literal["arrivals", "orders", "footfall", "stock"] | None
#: ``operations``: the store's own incidents (``cloud.health.incident_hours``), so an outage the product
#: alerted on lowers the day whatever the other metrics say
SubScore = Literal["experience", "customer", "team", "product", "operations"]
SUB_SCORES: tuple[SubScore, ...] = ("experience", "customer", "team", "product", "operations")


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    grains: tuple[Grain, ...]
    formula: str
    source: str
    sub_score: SubScore | None = None
    direction: Direction = "higher"
    #: the smallest baseline a relative change is measured against, so that a count moving from
    #: 0.2 to 1 new members a day is "a lot better", not "five times infinitely better"
    min_scale: float = 0.01
    expects: Expects = None

    @property
    def higher_is_better(self) -> bool:
        return self.direction != "lower"


HOURLY_AND_DAILY: tuple[Grain, ...] = ("hour", "day")
DAILY: tuple[Grain, ...] = ("day",)

METRICS: tuple[Metric, ...] = (
    Metric("footfall", "people", HOURLY_AND_DAILY,
           "people who entered: sum of the Wi-Fi boxes' visits_started; arrivals where the store has no box",
           "footfall, visits"),
    Metric("arrivals", "visits", HOURLY_AND_DAILY, "visits opened at the door (face tracks and Wi-Fi presence)",
           "visits"),
    Metric("members_recognised", "visits", HOURLY_AND_DAILY, "arrivals recognised as a member", "visits"),
    Metric("recognised_share", "ratio", HOURLY_AND_DAILY, "members_recognised / arrivals", "visits",
           "customer", expects="arrivals"),
    Metric("claimed_share", "ratio", HOURLY_AND_DAILY,
           "arrivals whose card an assistant claimed / arrivals", "feedback, visits", "team", expects="arrivals"),
    Metric("greeted_share", "ratio", HOURLY_AND_DAILY,
           "arrivals greeted (a greeted, served or sold action) / arrivals", "feedback, visits", "experience",
           expects="arrivals"),
    Metric("median_time_to_greet_s", "s", HOURLY_AND_DAILY,
           "median over greeted arrivals of (first greeted/served/sold action - arrival)", "feedback, visits",
           "experience", direction="lower", min_scale=10.0, expects="arrivals"),
    Metric("served_share", "ratio", HOURLY_AND_DAILY, "arrivals served (served or sold) / arrivals",
           "feedback, visits", "experience", expects="arrivals"),
    Metric("converted_share", "ratio", HOURLY_AND_DAILY, "arrivals sold / arrivals served", "feedback, visits",
           "team", expects="arrivals"),
    Metric("sales", "CNY", HOURLY_AND_DAILY, "sum of paid over the store's orders (refunds are negative)", "orders"),
    Metric("orders", "orders", HOURLY_AND_DAILY, "the store's paid orders (tickets)", "orders"),
    Metric("avg_ticket", "CNY", HOURLY_AND_DAILY, "sales / orders", "orders", "product", min_scale=1.0,
           expects="orders"),
    Metric("units_per_ticket", "units", HOURLY_AND_DAILY, "units on the store's order lines / orders",
           "order_lines, orders", "product", min_scale=0.1, expects="orders"),
    Metric("member_sales_share", "ratio", HOURLY_AND_DAILY, "sales of orders with a member / sales", "orders",
           "customer", expects="orders"),
    Metric("conversion", "ratio", HOURLY_AND_DAILY, "orders / footfall", "orders, footfall, visits", "experience",
           expects="footfall"),
    Metric("new_members", "members", DAILY, "member cards created with this home store that day", "members",
           "customer", min_scale=1.0),
    Metric("repurchase_rate", "ratio", DAILY,
           "the day's member buyers with an earlier order (any channel, 365 days) / the day's member buyers",
           "orders", "customer"),
    Metric("dormant_reactivated", "members", DAILY,
           "the day's member buyers whose previous order (any channel) was more than 180 days earlier", "orders",
           "customer", min_scale=1.0),
    Metric("churn_rate", "ratio", DAILY,
           "member buyers of this store 180 days earlier with no order since (any channel) / those buyers",
           "orders", "customer", direction="lower"),
    Metric("stock_outs", "SKUs", DAILY, "SKUs of the store closing the day at zero stock", "stock_days"),
    Metric("stock_out_rate", "ratio", DAILY, "stock_outs / SKUs the store stocked that day", "stock_days",
           "product", direction="lower", expects="stock"),
    Metric("sell_through", "ratio", DAILY, "units sold / (opening stock + units received)", "stock_days",
           "product", direction="band", expects="stock"),
    Metric("markdown_waste", "CNY", DAILY, "value lost to markdowns and write-offs", "stock_days"),
    Metric("markdown_waste_share", "ratio", DAILY, "markdown_waste / sales", "stock_days, orders", "product",
           direction="lower", min_scale=0.005),
    Metric("assistants_active", "people", DAILY, "assistants with at least one card action that day", "feedback"),
    Metric("assistants_rostered", "people", DAILY, "assistants on the day's roster", "shifts"),
    Metric("sales_per_assistant", "CNY", DAILY,
           "sales / assistants_rostered (assistants_active where the store sends no roster that day)",
           "orders, shifts, feedback", "team",
           min_scale=100.0, expects="orders"),
    Metric("target_attainment", "ratio", DAILY,
           "sales / (the month's sales target / days in the month)", "orders, store_targets", "team",
           expects="orders"),
    # expects nothing: the alerts are the product's own, so an open store-day always has a value (0: no incident)
    Metric("incident_hours_share", "ratio", DAILY,
           "opening hours covered by the store's device and source alerts (critical whole, warning half) / "
           "opening hours", "alerts", "operations", direction="lower", min_scale=0.25),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}
#: the metrics made of the product's own alerts: the anomaly scan leaves them alone (it would alert on alerts)
FROM_ALERTS: frozenset[str] = frozenset(m.name for m in METRICS if m.source == "alerts")
SCORED: tuple[Metric, ...] = tuple(m for m in METRICS if m.sub_score is not None)


def metrics_of(sub_score: SubScore) -> tuple[Metric, ...]:
    return tuple(m for m in SCORED if m.sub_score == sub_score)
