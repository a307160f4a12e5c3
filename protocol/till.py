"""What a store's till (POS) publishes on ``.../{device}/evt/order``: one order as it was rung up.

The till is a device of the store like an edge box (its certificate confines it to its own topics);
the cloud lands the order through the same cleaning and quarantine as a channel's posted batch
(``POST /v1/orders``) and attributes it to the member, the visit and the assistant. Idempotent on
the order number: a till that re-sends after a lost PUBACK lands the order once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from protocol.messages import Id, Message, ShortText

OrderNo = Annotated[str, Field(min_length=1, max_length=64)]


class TillLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Annotated[str, Field(min_length=1, max_length=64)]
    qty: int = Field(ge=1, le=1000)
    price: float = Field(ge=0)
    category: ShortText | None = None


class TillMember(BaseModel):
    """How the till identified the buyer: a member card swiped, a phone typed, the member's QR code
    (it carries the card number) scanned, or a member coupon redeemed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card: ShortText | None = None
    phone: ShortText | None = None
    qr: ShortText | None = None
    coupon: ShortText | None = None


class TillOrder(Message):
    type: Literal["till_order"] = "till_order"
    brand: Id
    store: Id
    device: Id
    order_no: OrderNo
    kind: Literal["sale", "refund"] = "sale"
    refund_of: OrderNo | None = Field(default=None, description="a refund's original order number")
    ts: AwareDatetime
    paid: float = Field(ge=0, description="what the buyer paid (a refund: what was returned), CNY")
    lines: tuple[TillLine, ...] = Field(min_length=1, max_length=500)
    member: TillMember | None = None
    assistant: ShortText | None = Field(default=None, description="the salesperson the till recorded, if any")

    def as_stream_row(self) -> dict:
        """The order in the shape ``POST /v1/orders`` takes."""
        row = self.model_dump(mode="json", exclude={"v", "type", "brand", "device", "kind"}, exclude_none=True)
        row["type"] = self.kind
        return row
