"""Bodies of the loyalty API (/v1/loyalty): points balances, history, redemption, adjustments, codes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud.api.schemas import Input

Points = Annotated[int, Field(ge=1, le=10_000_000)]
RequestId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$",
                                 description="the caller's own id of this request (a till's transaction id): "
                                 "a retry with the same id posts once")]
Channel = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]


class RedeemIn(Input):
    model_config = ConfigDict(extra="forbid")

    points: Points
    request_id: RequestId
    store: Annotated[str, Field(max_length=64)] | None = None
    channel: Channel = "pos"


class AdjustIn(Input):
    model_config = ConfigDict(extra="forbid")

    points: Annotated[int, Field(ge=-10_000_000, le=10_000_000)]
    request_id: RequestId
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class CodeIn(Input):
    model_config = ConfigDict(extra="forbid")

    points: Points


class CodeRedeemIn(Input):
    model_config = ConfigDict(extra="forbid")

    store: Annotated[str, Field(max_length=64)] | None = None
    channel: Channel = "pos"


class MovementOut(BaseModel):
    id: str
    kind: str
    source: str
    source_id: str
    person: str
    points: int = Field(description="the change to the member's balance (negative when spent)")
    balance: int = Field(description="the member's balance after it")
    replayed: bool = Field(description="true when this request id had already been posted: nothing changed")
    store: str | None = None
    channel: str | None = None
    ts: str
    detail: dict | None = None


class HistoryRow(BaseModel):
    id: str
    kind: str
    source: str
    source_id: str
    points: int
    store: str | None
    channel: str | None
    ts: str
    detail: dict


class PointsOut(BaseModel):
    member_id: str
    person: str
    balance: int
    expiring: int = Field(description="points expiring within the notice period")
    expires_on: str | None = Field(description="the day the first of those expire")
    tier: str | None
    multiplier: float = Field(description="the tier's points multiplier")
    discount: float = Field(description="the tier's member price factor (0.95 = 5% off)")


class CodeOut(BaseModel):
    code: str = Field(description="12 digits for the member's phone to show as a QR or text; single use")
    points: int
    expires: str


class LedgerCheck(BaseModel):
    negative_balances: int
    unbalanced_movements: int
    ledger_mismatch: int
    lots_mismatch: int
    entries_sum: int


class TemplateIn(Input):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    kind: Literal["amount_off", "percent_off", "gift"]
    value: Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)] = 0.0
    gift_sku: Annotated[str, Field(max_length=64)] | None = None
    min_spend: Annotated[float, Field(ge=0, le=10_000_000, allow_inf_nan=False)] = 0.0
    valid_days: Annotated[int, Field(ge=1, le=3660)] = 30
    stores: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=1000)] = []
    channels: Annotated[list[Channel], Field(max_length=50)] = []


class IssueIn(Input):
    model_config = ConfigDict(extra="forbid")

    template_id: Annotated[str, Field(max_length=64)]
    member_id: Annotated[str, Field(max_length=64)]
    issued_by: Annotated[str, Field(max_length=100, pattern=r"^(campaign|journey|screen|api):[A-Za-z0-9_.:-]+$")] | None = (
        Field(default=None, description="what issued it (campaign:<id>, journey:<id>, screen:<store>); "
              "default api:<key name>, or screen:<store> for a store manager's key"))
    for_order: Annotated[str, Field(max_length=128)] | None = None


class CouponRedeemIn(Input):
    model_config = ConfigDict(extra="forbid")

    store: Annotated[str, Field(max_length=64)] | None = None
    channel: Channel = "pos"
    amount: Annotated[float, Field(ge=0, le=10_000_000, allow_inf_nan=False)]
    member_id: Annotated[str, Field(max_length=64)] | None = None
    order_id: Annotated[str, Field(max_length=128)] | None = None
