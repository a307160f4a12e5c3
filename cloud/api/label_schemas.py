"""Request and response models of the shelf-label registry routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cloud.api.schemas import Input
from protocol.esl import TAG_TYPES, Color, TagTypeId
from protocol.messages import Id


class LabelIn(Input):
    model_config = ConfigDict(extra="forbid")

    sku: Id = Field(description="the product the label hangs under")
    tag_type: TagTypeId = Field(description="epd29_bwr (2.9\" 296x128), epd154_bw (1.54\" 152x152), epd42_bwr (4.2\" 400x300)")


class LabelOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label_id: str
    store: str
    sku: str
    tag_type: TagTypeId
    width: int = Field(description="pixels")
    height: int
    colors: tuple[Color, ...]

    @classmethod
    def of(cls, label_id: str, store: str, sku: str, tag_type: str) -> LabelOut:
        tag = TAG_TYPES[tag_type]
        return cls(label_id=label_id, store=store, sku=sku, tag_type=tag.id, width=tag.width, height=tag.height,
                   colors=tag.colors)


class LabelRegistered(LabelOut):
    outcome: str = Field(description="created, rebound (moved to another product or tag type) or unchanged")
