"""Bodies of the alerts API (GET /v1/alerts, POST /v1/alerts/{id}/ack); the alert itself is
``cloud.health.alerts.Alert``, the row as stored."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud.api.schemas import Input

StatusFilter = Literal["open", "acked", "cleared", "all"]


class AckIn(Input):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(max_length=500)] | None = Field(
        default=None, description="what was found or done, for the next person who looks")


class NoteIn(Input):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(min_length=1, max_length=500)]


class NoteOut(BaseModel):
    person: str = Field(description="who wrote it: the API key's person, role and key id")
    ts: str
    note: str


class OwnerIn(Input):
    """Who is told about a store's, a region's or the whole brand's ('*') alerts, at which escalation level."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["store", "region", "brand"]
    scope_id: Annotated[str, Field(min_length=1, max_length=64)]
    level: Annotated[int, Field(ge=0, le=9)] = 0
    person: Annotated[str, Field(min_length=1, max_length=100)]
    channel: Literal["webhook", "wecom_app", "wecom_robot", "email", "sms"]
    address: Annotated[str, Field(min_length=1, max_length=500, description="URL, WeCom user id(s) or robot key, "
                                  "email address, or mobile number")]
    min_severity: Literal["warning", "critical"] = "warning"
    mute: Annotated[str, Field(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")] | None = Field(
        default=None, description="local HH:MM-HH:MM during which this owner is not told (held until it ends)")


class OwnerOut(BaseModel):
    id: int
    scope: str
    scope_id: str
    level: int
    person: str
    channel: str
    address: str
    min_severity: str
    mute: str | None
    created: str


class DeliveryOut(BaseModel):
    owner_id: int
    person: str | None
    address: str | None
    level: int
    channel: str
    status: str = Field(description="pending, held (mute window), sent, failed (retrying), gave_up, dropped, duplicate")
    attempts: int
    sent_at: str | None
    error: str | None
