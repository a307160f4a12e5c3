"""API shapes of the perishables markdown routes (``cloud/api/routers/markdown.py``)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from cloud.api.schemas import Input


class PerishableIn(Input):
    model_config = ConfigDict(extra="forbid")

    expires_on: date = Field(description="the last day the store's stock of this product may be sold")
    floor_price: float = Field(gt=0, lt=1_000_000, description="never priced below this (yuan)")


class SchedulePoint(BaseModel):
    day: int = Field(description="0 = today")
    period: int
    price: float
    expected_stock: float


class PriceChangeOut(BaseModel):
    sku: str
    ts: str
    period: int
    old_price: float
    new_price: float
    stock: int
    labels: int


class MarkdownItem(BaseModel):
    sku: str
    name: str
    status: str = Field(description="planned, no_stock_data, sold_out, expired or unknown_product")
    expires_on: date
    days_to_expiry: int | None
    list_price: float | None
    floor_price: float
    current_price: float | None = Field(description="the price on the labels now")
    price_now: float | None = Field(description="the policy's price for this pricing period")
    stock: int | None
    sales_rate: float | None = Field(description="units a day, mean over the last 7 stock days")
    changes_today: int
    max_changes_per_day: int
    schedule: list[SchedulePoint] = Field(description="the likely prices for the next two days' periods")


class MarkdownPlan(BaseModel):
    store: str
    day: str = Field(description="the store-local day")
    period: int = Field(description="the current pricing period of the day (0-based)")
    items: list[MarkdownItem]
    changes_today: list[PriceChangeOut]
