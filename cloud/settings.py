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

from cloud.errors import Conflict
from protocol.facepack import DEFAULT_PACK

API_KEY_ENV = "INSTORE_API_KEY"
WIFI_SECRET_ENV = "INSTORE_WIFI_SECRET"


class WifiSecretMissing(Conflict):
    """No brand Wi-Fi secret configured: device registration cannot compute a key."""

    code = "wifi_secret_missing"


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
    session_expiry_s: int | None = Field(
        default=None, ge=1, description="keep the ingest's broker session this long (needs a stable client_id)"
    )
    api_key: str | None = Field(default_factory=_api_key_from_env, repr=False)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    wifi_secret_file: Path | None = Field(
        default=None, description="file holding the brand's Wi-Fi secret (the edge's); else $INSTORE_WIFI_SECRET"
    )
    wifi_join_window_s: int = Field(
        default=600, ge=0, le=24 * 3600, description="face and Wi-Fi signals this close are one visit"
    )
    require_known_devices: bool | None = Field(
        default=None, description="drop events of devices not in the registry; None: on once devices were imported"
    )
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="API calls per minute per key (or client address); 0 turns limiting off"
    )
    cors_origins: tuple[str, ...] = Field(
        default=(), description="web origins allowed to call the API from a browser; none by default"
    )
    command_retry_s: float = Field(
        default=10.0, gt=0, le=3600, description="first re-send of an unacknowledged edge command; then doubling"
    )
    command_retry_max_s: float = Field(default=600.0, gt=0, description="the longest wait between two re-sends")
    rollout_check_s: float = Field(default=60.0, gt=0, description="how often running pack rollouts are evaluated")
    markdown_every_s: float = Field(
        default=3600.0, gt=0, le=86400, description="how often perishables are re-priced (a change is made at most once per pricing period)"
    )
    markdown_max_changes_per_day: int = Field(
        default=2, ge=0, le=12, description="price changes per perishable per store-local day; also the pricing periods of a day"
    )
    markdown_elasticity: float = Field(default=2.0, ge=0, le=10, description="the planner's demand elasticity estimate")

    def wifi_secret(self) -> bytes:
        """The brand secret, read when needed so it never sits in a repr or a log line."""
        if self.wifi_secret_file is not None:
            try:
                return self.wifi_secret_file.read_bytes().strip()
            except OSError as exc:
                raise WifiSecretMissing(f"cannot read the Wi-Fi secret file: {exc.strerror}") from None
        secret = os.environ.get(WIFI_SECRET_ENV, "").encode()
        if not secret:
            raise WifiSecretMissing(f"no Wi-Fi secret: set ${WIFI_SECRET_ENV} or a secret file")
        return secret

    @field_validator("db", mode="before")
    @classmethod
    def _path_or_url(cls, value: Any) -> str:
        return str(value) if isinstance(value, Path) else value
