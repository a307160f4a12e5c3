"""Store health alerts: what HQ (and the store's own dashboard) hears when a store leaves its normal.

The cloud's anomaly scan raises one alert per store, metric and period (an hour or a local day) and
publishes it once, QoS 1, on ``instore/v1/{brand}/{store}/health/alert``; HQ subscribes to
``instore/v1/{brand}/+/health/alert``. The message carries the numbers behind the verdict (the
value, the store's own baseline for that weekday and hour, its MAD and the robust z) so a consumer
can show why without asking the API; ``alert_id`` is the key for acknowledging it over HTTP.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from protocol.messages import EventId, Id, Message

MetricName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]


class HealthAlert(Message):
    """One metric of one store, in one period, far from the store's own weekday-hour normal."""

    type: Literal["health_alert"] = "health_alert"
    alert_id: EventId
    brand: Id
    store: Id
    ts: AwareDatetime = Field(description="when the cloud raised the alert")
    metric: MetricName
    grain: Literal["hour", "day"]
    period_start: AwareDatetime = Field(description="start of the hour or day, in the store's time zone")
    value: float
    baseline: float = Field(description="median of the comparable earlier periods")
    mad: float = Field(ge=0, description="median absolute deviation of those periods")
    z: float = Field(description="robust z: (value - baseline) / floored 1.4826 * MAD")
    direction: Literal["high", "low"]
    severity: Literal["warning", "critical"]
