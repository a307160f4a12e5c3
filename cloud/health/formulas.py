"""Raw counts of one store-period, and the metric values they define (pure: no database).

The rollup fills one ``Counts`` per store-hour from the raw rows and adds the hours of a day
together; ``hourly_values`` and ``daily_values`` turn counts into the metrics of
``cloud.health.metrics``. A ratio whose denominator is zero has no value (it is left out, never
written as 0): "nobody came" is not "nobody was greeted".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median


@dataclass
class Counts:
    arrivals: int = 0
    members_recognised: int = 0
    claimed: int = 0
    greeted: int = 0
    served: int = 0
    sold: int = 0
    greet_delays_s: list[float] = field(default_factory=list)
    wifi_footfall: int | None = None  # None: no Wi-Fi box reported for this period
    orders: int = 0
    sales: float = 0.0
    member_sales: float = 0.0
    units: int = 0

    def add(self, other: Counts) -> None:
        """Add an hour's counts into this day's."""
        for name in ("arrivals", "members_recognised", "claimed", "greeted", "served", "sold", "orders", "units"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.sales += other.sales
        self.member_sales += other.member_sales
        self.greet_delays_s.extend(other.greet_delays_s)
        # a day's footfall is the sum of its hours' (each hour the larger of Wi-Fi and door counts)
        self.wifi_footfall = (self.wifi_footfall or 0) + other.footfall

    @property
    def footfall(self) -> int:
        """Wi-Fi counts everyone with a phone; the door camera is the floor where no box reports."""
        return max(self.wifi_footfall or 0, self.arrivals)


@dataclass
class DayExtras:
    """What only a whole day defines: member lifecycle, stock, staff, targets."""

    new_members: int = 0
    member_buyers: int = 0
    repeat_buyers: int = 0
    dormant_reactivated: int = 0
    churn_base: int = 0
    churned: int = 0
    skus_stocked: int = 0
    stock_outs: int = 0
    units_available: int = 0
    units_sold_stock: int = 0
    markdown_loss: float = 0.0
    assistants_active: int = 0
    assistants_rostered: int = 0  # on the day's roster (``shifts``, master data)
    daily_target: float | None = None
    incident_share: float = 0.0  # of the opening hours, covered by incident alerts (``cloud.health.incident_hours``)


def _ratio(values: dict[str, float], name: str, num: float, den: float) -> None:
    if den > 0:
        values[name] = num / den


def hourly_values(c: Counts) -> dict[str, float]:
    """The metrics defined for a store-hour (and, from a day's summed counts, their daily values)."""
    values: dict[str, float] = {
        "footfall": c.footfall, "arrivals": c.arrivals, "members_recognised": c.members_recognised,
        "sales": round(c.sales, 2), "orders": c.orders,
    }
    _ratio(values, "recognised_share", c.members_recognised, c.arrivals)
    _ratio(values, "claimed_share", c.claimed, c.arrivals)
    _ratio(values, "greeted_share", c.greeted, c.arrivals)
    _ratio(values, "served_share", c.served, c.arrivals)
    _ratio(values, "converted_share", c.sold, c.served)
    _ratio(values, "avg_ticket", c.sales, c.orders)
    _ratio(values, "units_per_ticket", c.units, c.orders)
    _ratio(values, "member_sales_share", c.member_sales, c.sales)
    _ratio(values, "conversion", c.orders, c.footfall)
    if c.greet_delays_s:
        values["median_time_to_greet_s"] = float(median(c.greet_delays_s))
    return values


def daily_values(c: Counts, x: DayExtras) -> dict[str, float]:
    values = hourly_values(c)
    values["new_members"] = x.new_members
    values["dormant_reactivated"] = x.dormant_reactivated
    _ratio(values, "repurchase_rate", x.repeat_buyers, x.member_buyers)
    _ratio(values, "churn_rate", x.churned, x.churn_base)
    if x.skus_stocked:
        values["stock_outs"] = x.stock_outs
        values["markdown_waste"] = round(x.markdown_loss, 2)
        _ratio(values, "stock_out_rate", x.stock_outs, x.skus_stocked)
        _ratio(values, "sell_through", x.units_sold_stock, x.units_available)
        _ratio(values, "markdown_waste_share", x.markdown_loss, c.sales)
    if x.assistants_active:
        values["assistants_active"] = x.assistants_active
    if x.assistants_rostered:
        values["assistants_rostered"] = x.assistants_rostered
    # per assistant the store put on the floor: the roster where the store sends one, so an assistant who
    # stayed away still counts (dividing by those who showed would make an absence look productive)
    staffed = x.assistants_rostered or x.assistants_active
    if staffed:
        values["sales_per_assistant"] = round(c.sales / staffed, 2)
    values["incident_hours_share"] = round(x.incident_share, 4)
    if x.daily_target:
        values["target_attainment"] = c.sales / x.daily_target
    return values
