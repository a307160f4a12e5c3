"""The canonical member and order every channel adapter produces."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Channel = Literal["tmall", "jd", "wechat", "pos", "youzan", "douyin", "members"]
CHANNELS: tuple[str, ...] = Channel.__args__  # type: ignore[attr-defined]


class Buyer(BaseModel):
    """Who placed the order in the channel's own terms: its account key and every identifier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, description="the channel's account id: Tmall nick, JD pin, unionid, card")
    identifiers: tuple[tuple[str, str], ...] = ()
    name: str | None = None
    gender: Literal["female", "male"] | None = None
    store: str | None = None
    face_consent: bool = False
    # member facts a CRM / member list carries (None: the file says nothing), chosen among a person's
    # records by survivorship (``cloud.cdp.survivorship``)
    tier: str | None = Field(None, max_length=40)
    tags: tuple[str, ...] = ()
    birthday: date | None = None
    points: int | None = None
    signed_up: date | None = Field(None, description="sign-up (开卡) date; ``store`` is the sign-up store")
    address: str | None = Field(None, max_length=300)


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(min_length=1)
    category: str = Field(min_length=1)
    qty: int = Field(ge=1)
    price: float = Field(ge=0)


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    order_no: str = Field(min_length=1)
    channel: Channel
    store: str | None
    buyer: Buyer | None = Field(description="None for an anonymous walk-in sale")
    lines: tuple[Line, ...]
    paid: float = Field(description="what the buyer paid, CNY; negative for a refund")
    ts: AwareDatetime
    refund: bool = False
    #: a refund's original order number as the file gives it (POS 原单号), when it has its own number
    refund_ref: str | None = None

    @property
    def id(self) -> str:
        return f"{self.channel}:{self.order_no}" + (":refund" if self.refund else "")

    @property
    def refund_of(self) -> str | None:
        if not self.refund:
            return None
        return f"{self.channel}:{self.refund_ref or self.order_no}"
