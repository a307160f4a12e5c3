"""Response models of the guide-card previews: what an arriving member's card would say."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cloud.guide.recommend.reasons import Kind, Lang


class PreviewItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str
    name: str
    category: str
    price: float
    kind: Kind = Field(description="why it was picked: repurchase, together, new, favourite, preferred, popular")
    reason: str = Field(description="the one line the assistant can say")


class MemberPreview(BaseModel):
    """What the card of ``member_id`` arriving at ``store`` would show, in ``lang``."""

    model_config = ConfigDict(extra="forbid")

    member_id: str
    store: str
    lang: Lang


class RecommendationsPreview(MemberPreview):
    items: list[PreviewItem]


class ScriptPreview(MemberPreview):
    text: str
    template_id: str = Field(description="the template used: HQ's id, or builtin-<situation>-<lang>")
    variant: str = Field(description="A or B when HQ runs an A/B test on this situation")
