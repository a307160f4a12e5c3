"""The canonical member and order every channel adapter produces."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Channel = Literal["tmall", "jd", "wechat", "pos", "youzan", "douyin", "members"]
CHANNELS: tuple[str, ...] = Channel.__args__  # type: ignore[attr-defined]
#: channels whose order numbers each store's till gives its own receipts, so two stores print the
#: same number on different sales; the platforms' (Tmall, JD, WeChat, Youzan, Douyin) are platform-wide
PER_STORE_CHANNELS: frozenset[str] = frozenset({"pos"})


def order_id(channel: str, order_no: str, store: str | None = None, *, refund: bool = False) -> str:
    """The one identity of an order, what ``orders.id`` and every table naming an order holds.

    An in-store channel's number is only unique within its store (``pos:<store>:<receipt no>``); a
    platform's is unique on the platform (``tmall:<order no>``). A refund that carries its order's
    number (one row holding both) is ``<id>:refund``. Importers, the order stream, the till and the
    bulk loaders all build ids here, so a re-posted order is the same id and two stores' receipts
    are two."""
    if channel in PER_STORE_CHANNELS:
        if not store:
            raise ValueError(f"a {channel} order is numbered per store: order {order_no} names no store")
        base = f"{channel}:{store}:{order_no}"
    else:
        base = f"{channel}:{order_no}"
    return base + (":refund" if refund else "")


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

    @model_validator(mode="after")
    def _numbered_where(self) -> Order:
        order_id(self.channel, self.order_no, self.store)  # a till's receipt without its store has no identity
        return self

    @property
    def id(self) -> str:
        return order_id(self.channel, self.order_no, self.store, refund=self.refund)

    @property
    def refund_of(self) -> str | None:
        """The order a refund returns, as its 原单号 names it: for a till, a receipt of the same store."""
        if not self.refund:
            return None
        return order_id(self.channel, self.refund_ref or self.order_no, self.store)
