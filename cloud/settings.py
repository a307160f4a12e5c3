"""Everything a cloud process is configured with, in one validated place.

One ``Settings`` per process. Each field is read from, highest first:

1. what the caller passes (``instore cloud serve --db ...``: the CLI's options are these fields,
   their help texts these descriptions, and an option not given leaves the field to the sources below);
2. the environment, ``INSTORE_`` + the field's name in capitals (``INSTORE_DB``,
   ``INSTORE_BROKER_URL``, ``INSTORE_CORS_ORIGINS='["https://hq.example"]'``); the two secrets
   keep their names, ``INSTORE_API_KEY`` and ``INSTORE_WIFI_SECRET``;
3. a TOML file of the same field names (``instore cloud serve --config cloud.toml``, else
   ``$INSTORE_CONFIG``); a name that is not a field is refused, so a typo never goes unnoticed;
4. the defaults below.

Secrets (the bootstrap API key, the brand's Wi-Fi secret) are ``SecretStr``: never in a repr, a log
line or an error message, and never on a command line (process lists are world-readable). Paths
are made absolute when read, so a relative setting keeps meaning the same file after a chdir.

The cloud's MQTT client id (``client_id``) is the identity of its broker session: give every cloud
process its own stable one (``--client-id``, ``INSTORE_CLIENT_ID``) and the broker keeps its
subscriptions and undelivered events while it restarts (``session_expiry_s``, an hour by default
then). The process opens exactly one MQTT connection, under exactly that id; no device may connect
under it (the broker binds device client ids to their certificates, docs/SECURITY.md), or it
could take the session over.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import uuid4

from pydantic import AfterValidator, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cloud.errors import Conflict, Invalid
from protocol import topics
from protocol.facepack import PackError, get_pack
from protocol.transport import BrokerUrl

ENV_PREFIX = "INSTORE_"
API_KEY_ENV = "INSTORE_API_KEY"
WIFI_SECRET_ENV = "INSTORE_WIFI_SECRET"
CONFIG_ENV = "INSTORE_CONFIG"
#: Query parameters of an mqtts:// broker URL that name files (protocol.transport.BrokerUrl).
TLS_FILE_PARAMS = ("ca", "cert", "key")
#: The addresses an open development API may listen on.
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
#: How long the broker keeps a stable client id's session while the process is away, unless set.
DEFAULT_SESSION_EXPIRY_S = 3600

AbsolutePath = Annotated[Path, AfterValidator(lambda path: path.expanduser().resolve())]


class WifiSecretMissing(Conflict):
    """No brand Wi-Fi secret configured: device registration cannot compute a key."""

    code = "wifi_secret_missing"


class SettingsError(Invalid):
    """The process's settings cannot be used: a value out of range, a missing database, a bad file."""

    code = "invalid_settings"


_config_file: ContextVar[Path | None] = ContextVar("instore_cloud_config", default=None)


def config_file() -> Path | None:
    """The TOML file being read: ``Settings.load``'s argument, else ``$INSTORE_CONFIG``, else none."""
    chosen = _config_file.get()
    if chosen is None and os.environ.get(CONFIG_ENV):
        chosen = Path(os.environ[CONFIG_ENV])
    return None if chosen is None else chosen.expanduser().resolve()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix=ENV_PREFIX, env_ignore_empty=True,
        validate_by_name=True, validate_by_alias=True,
    )

    db: str = Field(description="a SQLite file (created on first start) or a postgresql:// URL")
    broker_url: str | None = Field(
        default=None, description="mqtt://host:port[?protocol=3.1.1] or mqtts://...; none: the API only, no ingest"
    )
    api_host: str = Field(default="127.0.0.1", description="the address the HTTP API listens on")
    api_port: int = Field(default=8000, ge=1, le=65535, description="the port the HTTP API listens on")
    pack_id: str = Field(
        default_factory=lambda: get_pack().id,
        description="the face model pack enrolment photos are embedded with (default: $INSTORE_MODEL_PACK or "
        "the default pack)",
    )
    commercial_only: bool = Field(
        default=False,
        description="the brand is a paying one: a model pack not cleared for commercial use (code, weights and "
        "training data) is refused for enrolment and for rollouts (protocol.facepack.require_commercial)",
    )
    share_group: str | None = Field(
        default=None, description="MQTT shared-subscription group, so several cloud workers split the load"
    )
    card_ttl_s: int = Field(default=120, ge=5, le=3600, description="seconds a guide card stays valid")
    client_id: str = Field(
        default_factory=lambda: f"cloud-ingest-{uuid4().hex[:12]}",
        description="a stable, unique MQTT client id for this cloud process: the broker keeps its session "
        "(subscriptions, events not yet processed) across restarts of either; default: a random one, "
        "with a session that ends with the connection",
    )
    session_expiry_s: int | None = Field(
        default=None, ge=1, description=f"seconds the broker keeps a client_id's session while the process is "
        f"away (default {DEFAULT_SESSION_EXPIRY_S} with a client_id; needs one)",
    )
    api_key: SecretStr | None = Field(
        default=None, description=f"the bootstrap hq_admin API key (${API_KEY_ENV}; never on a command line)"
    )
    metrics_token: SecretStr | None = Field(
        default=None, min_length=32, description="the bearer token a Prometheus scraper sends for GET /metrics "
        "($INSTORE_METRICS_TOKEN, at least 32 characters; never on a command line); none: /metrics is refused "
        "(except in dev_open_mode)"
    )
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1, description="the largest request body the API reads")
    wifi_secret_file: AbsolutePath | None = Field(
        default=None, description=f"file holding the brand's Wi-Fi secret (the edge's); else ${WIFI_SECRET_ENV}"
    )
    wifi_secret_value: SecretStr | None = Field(
        default=None, validation_alias=WIFI_SECRET_ENV,
        description=f"the brand's Wi-Fi secret itself (${WIFI_SECRET_ENV}); wifi_secret_file wins when both are set",
    )
    wifi_join_window_s: int = Field(
        default=600, ge=0, le=24 * 3600, description="face and Wi-Fi signals this close are one visit"
    )
    require_known_devices: bool | None = Field(
        default=None, description="drop events of devices not in the registry; default: on once a device "
        "registry was imported"
    )
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="API calls per minute per key (or client address); 0 turns limiting off"
    )
    dev_open_mode: bool = Field(
        default=False, description="development only: while no API key has ever existed, the API is open to "
        "anyone as hq_admin (a loud warning at start); refused unless api_host is a loopback address"
    )
    auth_failures_per_minute: int = Field(
        default=30, ge=1, description="failed authentications per minute per client address before 429"
    )
    max_image_pixels: int = Field(
        default=40_000_000, ge=1, description="the largest enrolment photo (width x height, read from its "
        "header before decoding)"
    )
    sms_url: str | None = Field(
        default=None, description="an SMS gateway speaking Aliyun's SendSms (one-time codes for sign-ups); "
        "none: phones that already belong to someone cannot be verified by SMS"
    )
    sms_sign_name: str = Field(default="instore", description="the SMS signature (SignName)")
    sms_otp_template: str = Field(default="SMS_OTP", description="the one-time-code template (TemplateCode)")
    cors_origins: tuple[str, ...] = Field(
        default=(), description="web origins allowed to call the API from a browser; none by default"
    )
    health_every_s: float = Field(
        default=300.0, gt=0, le=86400, description="how often the closed hours are rolled up and scanned for anomalies"
    )
    command_retry_s: float = Field(
        default=10.0, gt=0, le=3600, description="first re-send of an unacknowledged edge command; then doubling"
    )
    command_retry_max_s: float = Field(default=600.0, gt=0, description="the longest wait between two re-sends")
    rollout_check_s: float = Field(default=60.0, gt=0, description="how often running pack rollouts are evaluated")
    markdown_every_s: float = Field(
        default=3600.0, gt=0, le=86400,
        description="how often perishables are re-priced (a change is made at most once per pricing period)",
    )
    markdown_max_changes_per_day: int = Field(
        default=2, ge=0, le=12,
        description="price changes per perishable per store-local day; also the pricing periods of a day",
    )
    markdown_elasticity: float = Field(default=2.0, ge=0, le=10, description="the planner's demand elasticity estimate")
    label_sync_every_s: float = Field(
        default=10.0, gt=0, le=3600,
        description="how often every bound shelf label is checked against its product's price, member price and markdown",
    )
    device_health_every_s: float = Field(
        default=60.0, gt=0, le=3600, description="how often devices are checked for offline or silent (alert within 5 min)"
    )
    source_health_every_s: float = Field(
        default=300.0, gt=0, le=3600,
        description="how often the POS, door, Wi-Fi and guide-screen rows are checked for a source dark or collapsing "
        "(alert within the hour)",
    )
    device_stale_s: float = Field(
        default=120.0, gt=0, description="an edge box with no telemetry for this long is offline (it reports every 30 s)"
    )
    notify_every_s: float = Field(default=30.0, gt=0, le=3600, description="how often alerts are routed and sent")
    alert_escalate_after_s: float = Field(
        default=900.0, ge=0, description="an unacknowledged critical alert goes to the next owner level after this"
    )
    alert_dedup_s: float = Field(
        default=1800.0, ge=0, description="the same store, metric and device told to the same owner within this: once"
    )
    dashboard_url: str = Field(default="http://127.0.0.1:8000", description="the base of links in alert messages")
    webhook_secret: str | None = Field(default=None, description="HMAC-SHA256 key that signs alert webhooks")
    wecom_api: str = Field(default="https://qyapi.weixin.qq.com", description="WeCom API base (app messages, robots)")
    wecom_corp_id: str | None = Field(default=None, description="WeCom corp id (app messages)")
    wecom_secret: str | None = Field(default=None, description="WeCom app secret (app messages)")
    wecom_agent_id: int | None = Field(default=None, description="WeCom app agent id (app messages)")
    wecom_robot: bool = Field(default=True, description="alert owners may use WeCom group robots (a key each)")
    smtp_host: str | None = Field(default=None, description="SMTP relay for alert email")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = Field(default="instore-alerts@localhost", description="From: of alert email")
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    sms_alert_template: str = Field(default="SMS_ALERT", description="the alert template (TemplateCode)")
    wechat_api: str = Field(default="https://api.weixin.qq.com", description="WeChat API base (subscribe messages)")
    wechat_appid: str | None = Field(default=None, description="the mini program's appid (campaign subscribe messages)")
    wechat_secret: str | None = Field(default=None, description="the mini program's app secret")
    wechat_state: str = Field(default="formal", pattern="^(formal|trial|developer)$",
                              description="miniprogram_state of subscribe messages")
    order_channel_secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description="per channel (pos, tmall, jd, youzan, douyin, wechat) the HMAC-SHA256 "
        "secret its POST /v1/orders batches are signed with (INSTORE_ORDER_CHANNEL_SECRETS='{\"pos\": \"...\"}'); "
        "a channel without one cannot post orders"
    )
    order_replay_window_s: int = Field(
        default=300, ge=10, le=3600, description="how far a signed order batch's timestamp may be from the clock"
    )

    @classmethod
    def load(cls, config: str | Path | None = None, **given: Any) -> Settings:
        """The process's settings: ``given`` (None values left out: an option not given), then the
        environment, then the TOML file ``config`` (else ``$INSTORE_CONFIG``), then the defaults.

        Raises SettingsError with one readable line: what is wrong with which setting."""
        token = _config_file.set(Path(config) if config is not None else None)
        try:
            file = config_file()
            if file is not None and not file.is_file():
                raise SettingsError(f"config file {file} does not exist")
            return cls(**{name: value for name, value in given.items() if value is not None})
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"config file {config_file()} is not TOML: {exc}") from None
        finally:
            _config_file.reset(token)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        file = config_file()
        if file is None:
            return init_settings, env_settings
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=file)

    def wifi_secret(self) -> bytes:
        """The brand secret: the file's content (read now, so a rotated file needs no restart), else the value."""
        if self.wifi_secret_file is not None:
            try:
                return self.wifi_secret_file.read_bytes().strip()
            except OSError as exc:
                raise WifiSecretMissing(f"cannot read the Wi-Fi secret file: {exc.strerror}") from None
        secret = self.wifi_secret_value.get_secret_value().encode() if self.wifi_secret_value else b""
        if not secret:
            raise WifiSecretMissing(f"no Wi-Fi secret: set ${WIFI_SECRET_ENV} or a secret file")
        return secret

    @model_validator(mode="before")
    @classmethod
    def _stable_client_keeps_its_session(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("client_id") and data.get("session_expiry_s") is None:
            return {**data, "session_expiry_s": DEFAULT_SESSION_EXPIRY_S}
        if isinstance(data, dict) and data.get("session_expiry_s") is not None and not data.get("client_id"):
            raise ValueError("session_expiry_s needs a stable client_id: a random one would leave a session "
                             "on the broker at every restart")
        return data

    @field_validator("db", mode="before")
    @classmethod
    def _path_or_url(cls, value: Any) -> Any:
        """A file path made absolute; a URL (postgresql://...) as given."""
        if isinstance(value, str) and "://" in value:
            return value
        if isinstance(value, (str, Path)) and str(value):
            return str(Path(value).expanduser().resolve())
        return value

    @model_validator(mode="after")
    def _open_only_on_loopback(self) -> Settings:
        if self.dev_open_mode and self.api_host not in LOOPBACK_HOSTS:
            raise ValueError(f"dev_open_mode serves an open API: only on a loopback api_host, not {self.api_host}")
        return self

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        """Checked (BrokerUrlError is a ValueError: a validation error); its TLS files made absolute."""
        if value is None:
            return None
        BrokerUrl.parse(value)
        parts = urlsplit(value)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if not any(name in TLS_FILE_PARAMS for name, _ in query):
            return value
        query = [(name, str(Path(given).expanduser().resolve()) if name in TLS_FILE_PARAMS else given)
                 for name, given in query]
        return urlunsplit(parts._replace(query=urlencode(query, safe="/")))

    @field_validator("pack_id")
    @classmethod
    def _known_pack(cls, value: str) -> str:
        try:
            return get_pack(value).id
        except PackError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("share_group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return None if value is None else topics.check_id("group", value)

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        return topics.check_id("client", value)


def _explain(exc: ValidationError) -> str:
    """A validation error in one line: ``field: what is wrong``; never the value (it may be a secret)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "missing":
            message = f"not set (give it, set {ENV_PREFIX}{name.upper()}, or put it in the config file)"
        elif error["type"] == "extra_forbidden":
            message = "not a setting"
        else:
            message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{name}: {message}")
    return "; ".join(problems)

