"""Response and request models of the store health API (/v1/health, store dashboards, brand live).

The shapes are the contract with the dashboards (/work/briefs/health-contract.md, docs/HEALTH.md):
a score is 0..100 or null when the store had no scored metric that day; a metric value is null
when it is not defined (a ratio over zero, no stock data).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class StoreHealthRow(BaseModel):
    store: str
    name: str
    city: str | None
    region: str | None
    city_tier: str | None
    format: str | None
    overall: float | None
    experience: float | None
    customer: float | None
    team: float | None
    product: float | None
    operations: float | None
    rank: int | None
    overall_vs_own: float | None = Field(
        description="overall minus the store's mean overall on the same weekday of the 4 weeks before")
    overall_vs_peers: float | None = Field(description="overall minus the peer group's median that day")
    open_alerts: int
    sales: float
    footfall: int


class SoFarFigures(BaseModel):
    arrivals: float
    footfall: float
    orders: float
    sales: float
    members_recognised: float
    conversion: float | None


class SoFarBaseline(BaseModel):
    arrivals: float | None
    footfall: float | None
    orders: float | None
    sales: float | None
    members_recognised: float | None
    conversion: float | None


class TodaySoFar(BaseModel):
    """Today's closed hours only, against the same hours of the same weekday (never a whole day)."""

    day: str
    until: str = Field(description="local HH:00: today's hours before it are summed, and the same hours of the others")
    label: str
    today: SoFarFigures
    last_week: SoFarFigures
    baseline: SoFarBaseline = Field(description="mean of the same hours on the same weekday of the 4 weeks before")


class HealthRanking(BaseModel):
    day: str | None = Field(description="the ranked day: by default the last complete day")
    complete: bool = True
    stores: list[StoreHealthRow]
    today_so_far: dict[str, TodaySoFar] = Field(default_factory=dict, description="store -> today so far")


class MetricScore(BaseModel):
    metric: str
    value: float | None
    unit: str
    own_baseline: float | None = Field(description="mean of the same weekday over the 4 weeks before")
    peer_median: float | None
    score: float | None
    weight: float
    direction: str = Field("higher", description="higher, lower, or band (the store's own normal is best)")
    expects: str | None = Field(None, description="the source that must report while open: arrivals, orders, "
                                "footfall, stock")
    incident: str | None = Field(None, description="set when the source was dark while the store was open: "
                                 "the metric scores 0 instead of dropping out")


class IncidentOut(BaseModel):
    """One alert's part of the store-day's opening hours: what made ``incident_hours_share``."""

    alert_id: str
    kind: str
    metric: str
    device: str
    severity: str
    start: datetime
    end: datetime
    minutes: float


class SubScore(BaseModel):
    name: str
    score: float | None
    weight: float
    metrics: list[MetricScore]


class HealthHistoryDay(BaseModel):
    day: str
    overall: float | None
    experience: float | None
    customer: float | None
    team: float | None
    product: float | None
    operations: float | None


class PeerGroupOut(BaseModel):
    key: str
    stores: list[str]
    overall_median: float | None


class StoreHealth(BaseModel):
    store: str
    name: str
    day: str | None
    overall: float | None
    rank: int | None
    of: int
    sub_scores: list[SubScore]
    history: list[HealthHistoryDay]
    peer_group: PeerGroupOut
    incidents: list[IncidentOut] = Field(default_factory=list, description="the device and source alerts "
                                         "covering the day's opening hours (the operations sub-score)")
    complete: bool = True
    today_so_far: TodaySoFar | None = None


class HealthWeights(BaseModel):
    """group -> name -> weight; groups: overall (the five sub-scores) and each sub-score (its metrics).
    A PUT may give some groups only; the others keep their current defaults."""

    model_config = {"extra": "forbid"}
    overall: dict[str, float] | None = None
    experience: dict[str, float] | None = None
    customer: dict[str, float] | None = None
    team: dict[str, float] | None = None
    product: dict[str, float] | None = None
    operations: dict[str, float] | None = None


class HourRow(BaseModel):
    hour: int
    footfall: float
    arrivals: float
    sales: float
    last_week_sales: float
    last_week_footfall: float


class AssistantRow(BaseModel):
    assistant: str
    name: str
    claimed: int
    greeted: int
    served: int
    sold: int = Field(description="till orders attributed to the assistant (cloud.arrivals.till)")
    conversion: float | None
    sales: float = Field(description="net paid of those till orders, refunds included")
    median_time_to_greet_s: float | None
    confirmed_orders: int = 0
    claimed_sales: float = Field(default=0.0, description="amounts typed on 成交 taps: an unconfirmed claim")
    claimed_sold: int = Field(default=0, description="成交 taps (visits), confirmed by the till or not")
    median_time_to_sale_s: float | None = Field(default=None, description="arrival to the till's sale")


class HotProduct(BaseModel):
    sku: str
    name: str
    units: int
    sales: float
    member_price: float | None = Field(description="the catalogue's member price, if the product has one")


class LiveCounter(BaseModel):
    arrivals_today: int
    members_today: int
    visitors_today: int


class StoreDashboard(BaseModel):
    store: str
    name: str
    day: str = Field(description="the day shown: by default the store's last complete day")
    complete: bool = Field(True, description="false for the store's today: figures are 'today so far'")
    until: str | None = Field(None, description="today only: local HH:00; today and last_week both sum the hours "
                              "before it (those the last rollup closed)")
    today: dict[str, float]
    last_week: dict[str, float]
    hourly: list[HourRow]
    assistants: list[AssistantRow]
    hot_products: list[HotProduct]
    live: LiveCounter


class SignedIn(BaseModel):
    assistant: str = Field(description="the assistant's id, as the staff file, the roster and the screen know it")
    name: str | None = Field(description="from the staff file; null when it does not list them")
    since: datetime = Field(description="their latest sign-in (上岗), UTC")
    screen: str = Field(description="the guide screen they signed in on")


class StaffOnFloor(BaseModel):
    """Who is signed in on the store's guide screens now (issue 17): each assistant whose latest sign of the
    store's local day is a sign-in."""

    store: str
    at: datetime
    signed_in: list[SignedIn]


class ChannelSales(BaseModel):
    channel: str
    sales: float


class HourSales(BaseModel):
    hour: int
    sales: float


class MemberDeal(BaseModel):
    sku: str
    name: str
    price: float
    member_price: float


class StoreSales(BaseModel):
    store: str
    name: str
    sales: float
    target: float | None
    arrivals: int = Field(description="visits recorded at the door today")
    traffic_target: int | None = Field(description="the day's imported traffic target (store_day_targets)")
    conversion_target: float | None = Field(description="the day's imported conversion target, 0-1")


class BrandLive(BaseModel):
    day: str
    sales: float
    target: float
    orders: int
    member_sales_share: float | None
    by_channel: list[ChannelSales]
    by_hour: list[HourSales]
    hot_products: list[HotProduct]
    member_deals: list[MemberDeal]
    stores: list[StoreSales]
    arrivals: int
    traffic_target: int | None = Field(description="the stores' traffic targets for the day, summed; None without any")
