"""Everything the cloud process is configured with, in one validated place.

The CLI, the tests and the demo all build a ``Settings``; nothing below reads the environment
except the API key, which must not appear on a command line (process lists are world-readable).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.facepack import DEFAULT_PACK

API_KEY_ENV = "INSTORE_API_KEY"


def _api_key_from_env() -> str | None:
    return os.environ.get(API_KEY_ENV) or None


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    db: str = Field(description="a SQLite file (created on first start) or a postgresql:// URL")
    broker_url: str | None = Field(default=None, description="mqtt://host:port; None = API only")
    pack_id: str = Field(default=DEFAULT_PACK, description="the pack enrolment photos are embedded with")
    share_group: str | None = Field(
        default=None, description="MQTT shared-subscription group, so several cloud workers split the load"
    )
    card_ttl_s: int = Field(default=120, ge=5, le=3600, description="how long a guide card stays valid")
    client_id: str = Field(default_factory=lambda: f"cloud-ingest-{uuid4().hex[:12]}")
    api_key: str | None = Field(default_factory=_api_key_from_env, repr=False)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)

    @field_validator("db", mode="before")
    @classmethod
    def _path_or_url(cls, value: Any) -> str:
        return str(value) if isinstance(value, Path) else value
