"""Bodies of the alerts API (GET /v1/alerts, POST /v1/alerts/{id}/ack); the alert itself is
``cloud.health.alerts.Alert``, the row as stored."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from cloud.api.schemas import Input

StatusFilter = Literal["open", "acked", "all"]


class AckIn(Input):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(max_length=500)] | None = Field(
        default=None, description="what was found or done, for the next person who looks")
