"""Electronic shelf labels: the tag types a store can hang, and the command that changes one label.

The cloud decides what a label shows (price, member price, promotion, QR) and when it flashes
(the member the label's product is recommended for has just walked in); the store's ESL gateway
turns a ``LabelCommand`` into a bitmap of the tag's exact size and palette and hands it to the
access point. Both sides share this module so that a tag type means the same pixels everywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from protocol.messages import EventId, Id, Message, ShortText

Color = Literal["white", "black", "red"]
TagTypeId = Literal["epd29_bwr", "epd154_bw", "epd42_bwr"]


class TagType(BaseModel):
    """One e-paper panel: its pixel size and the inks it has (white is the paper)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: TagTypeId
    diagonal_in: float
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    colors: tuple[Color, ...]

    @property
    def has_red(self) -> bool:
        return "red" in self.colors


TAG_TYPES: dict[str, TagType] = {
    t.id: t
    for t in (
        TagType(id="epd29_bwr", diagonal_in=2.9, width=296, height=128, colors=("white", "black", "red")),
        TagType(id="epd154_bw", diagonal_in=1.54, width=152, height=152, colors=("white", "black")),
        TagType(id="epd42_bwr", diagonal_in=4.2, width=400, height=300, colors=("white", "black", "red")),
    )
}


class LabelProduct(BaseModel):
    """What a label shows. Prices are in yuan; the member price only when it is lower."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Id
    name: Annotated[str, Field(min_length=1, max_length=40)]
    price: float = Field(gt=0, lt=1_000_000)
    member_price: float | None = Field(default=None, gt=0, lt=1_000_000)
    badge: Annotated[str, Field(min_length=1, max_length=8)] | None = Field(
        default=None, description="promotion badge, e.g. 限时特惠 or 临期 7 折"
    )
    qr: Annotated[str, Field(min_length=1, max_length=300)] | None = Field(
        default=None, description="QR payload, e.g. the product's mini-program page"
    )

    @model_validator(mode="after")
    def _member_price_is_a_discount(self) -> LabelProduct:
        if self.member_price is not None and self.member_price >= self.price:
            raise ValueError(f"member_price {self.member_price} must be below price {self.price}")
        return self


class FlashPattern(BaseModel):
    """How a label's LED blinks: ``flashes`` blinks ``interval_ms`` apart, the group ``repeats`` times."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    color: Literal["red", "green", "blue", "yellow", "cyan", "magenta", "white"] = "green"
    flashes: int = Field(default=3, ge=1, le=15)
    interval_ms: int = Field(default=300, ge=100, le=1500, multiple_of=100)
    repeats: int = Field(default=10, ge=1, le=255)
    brightness: int = Field(default=16, ge=1, le=16)


#: "Recommended for the member who just walked in": bright green, noticeable for about half a minute.
ARRIVAL_FLASH = FlashPattern(color="green", flashes=3, interval_ms=200, repeats=20)


class LabelCommand(Message):
    """Redraw a label (``product``), flash it (``flash``) or both; void ``ttl_s`` after ``ts``."""

    type: Literal["label_command"] = "label_command"
    command_id: EventId
    ts: AwareDatetime
    brand: Id
    store: Id
    label: Id
    product: LabelProduct | None = None
    flash: FlashPattern | None = None
    reason: ShortText = Field(default="", description="why, for the gateway log: price, markdown, arrival")
    ttl_s: int = Field(ge=1, le=7 * 86400, description="also the MQTT message expiry")

    @model_validator(mode="after")
    def _does_something(self) -> LabelCommand:
        if self.product is None and self.flash is None:
            raise ValueError("a label command needs a product to show, a flash pattern, or both")
        return self

    @model_validator(mode="after")
    def _expiry_exists(self) -> LabelCommand:
        """A ``ts`` in the year 9999 plus the TTL overflowed in the gateway's expiry check (fuzz finding)."""
        try:
            self.ts + timedelta(seconds=self.ttl_s)
        except OverflowError:
            raise ValueError("ts + ttl_s is past the last representable time (year 9999)") from None
        return self

    @property
    def expires_at(self) -> datetime:
        return self.ts + timedelta(seconds=self.ttl_s)

