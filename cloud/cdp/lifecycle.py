"""The words computed tags and segments share: lifecycle stages, value tiers, and the windows
(HQ's settings) that decide a person's stage and price band.

``cloud.cdp.tags`` computes them; ``cloud.cdp.segments`` filters on them; neither imports the
other for them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from cloud.db import Database, Tx
from cloud.db.config_cache import cached, changed

#: ``unknown``: bought before (a stated tier says so, ``survivorship.bought_before``) but no order is in the CDP
LIFECYCLE_STAGES = ("prospect", "new", "active", "repurchase_due", "dormant", "churned", "unknown")
VALUE_TIERS = ("high", "medium", "low")


class Windows(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new_days: int = Field(default=30, ge=1)
    active_days: int = Field(default=90, ge=1)
    dormant_days: int = Field(default=180, ge=1)
    churn_days: int = Field(default=365, ge=1)
    # a two-item list rather than a tuple: OpenAPI tools (schemathesis among them) mis-read prefixItems
    # finite: JSON bodies may carry NaN/Infinity, which would be stored and break every later read
    price_bands: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default=[150.0, 400.0], min_length=2, max_length=2)


def windows(db: Database | Tx) -> Windows:
    raw = db.scalar("SELECT value FROM settings WHERE key = 'lifecycle_windows'")
    return Windows.model_validate_json(raw) if raw else Windows()


def current_windows(db: Database) -> Windows:
    """The windows as a card reads them: through ``cloud.db.config_cache`` (a change reaches every
    process within seconds), not a statement per member arrival."""
    return cached(db, windows)


def set_windows(db: Database, value: Windows) -> None:
    db.execute("INSERT INTO settings (key, value) VALUES ('lifecycle_windows', ?) "
               "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (value.model_dump_json(),))
    changed(db, windows)
