"""The HTTP API's request and response bodies.

Requests forbid unknown fields, so a client's typo (``"consents"``) is a 422 instead of a member
silently enrolled without the consent they gave. Phones are normalised to the 11-digit mainland
mobile number because the phone is a OneID key: ``+8613800138000`` and ``13800138000`` are one
person.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

T = TypeVar("T")
DEFAULT_TIER = "普通会员"
_PHONE = re.compile(r"^(?:\+86)?(1[3-9]\d{9})$")
_NAME_PUNCTUATION = set(" ·.'-")

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
Gender = Literal["female", "male"]


#: Control characters no request text may hold: NUL (PostgreSQL refuses it in text, which made a
#: 500 and an unfinished import) and the other C0 controls and DEL; tab and line breaks stay.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def refuse_control_characters(value: Any, where: str = "body") -> None:
    """Raise ValueError when a string anywhere in ``value`` (keys too) holds a control character."""
    if isinstance(value, str):
        if CONTROL_CHARACTERS.search(value):
            raise ValueError(f"{where}: control characters (NUL and the like) are not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_control_characters(key, where)
            refuse_control_characters(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            refuse_control_characters(item, where)


class Input(BaseModel):
    """A request body: refused (422) when any text in it holds a control character, on every backend."""

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data: Any) -> Any:
        refuse_control_characters(data)
        return data


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    face: bool = Field(description="may the member's face be enrolled and recognised in stores")


class NameAndPhone(Input):
    """Who signs up: at a counter (``MemberCreate``) or on their own phone (the join page)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    phone: Annotated[str, StringConstraints(strip_whitespace=True)] = Field(
        description="mainland mobile number, 11 digits, optionally prefixed +86"
    )

    @field_validator("name")
    @classmethod
    def _letters(cls, name: str) -> str:
        if not any(ch.isalpha() for ch in name) or not all(ch.isalpha() or ch in _NAME_PUNCTUATION for ch in name):
            raise ValueError("a name is letters (any script) with optional spaces, '·', '.', \"'\" or '-'")
        return name

    @field_validator("phone")
    @classmethod
    def _mobile(cls, phone: str) -> str:
        found = _PHONE.match(phone)
        if found is None:
            raise ValueError("a phone is an 11-digit mainland mobile number starting with 1, optionally +86")
        return found.group(1)


class MemberCreate(NameAndPhone):
    gender: Gender | None = None
    tier: Label = DEFAULT_TIER
    tags: list[Label] = Field(default_factory=list, max_length=50)
    preferences: list[Label] = Field(
        default_factory=list, max_length=20, description="preferred product categories, e.g. 护肤, 彩妆"
    )
    consent: Consent


class VerificationOut(BaseModel):
    id: str
    kind: str = Field(
        description="phone: the sign-up joins the phone's person once the code is entered; consent: the "
                    "sign-up's face consent is proven, and counts for the person after any later merge; "
                    "bind:<kind> (tmall_nick, unionid, member_card...): the identifier joins the person's card")
    sent: bool = Field(description="a one-time code went to the phone; False: no SMS gateway, HQ's merge only")
    expires: str


class MemberCreated(BaseModel):
    id: str
    verified: bool = Field(default=True, description="False: the phone belongs to someone else already; this "
                           "sign-up is its own person until the code sent to the phone is entered or HQ merges")
    verification: VerificationOut | None = Field(
        default=None, description="the one-time code sent: to join the phone's person (unverified) or to "
                                  "prove face consent (a consenting sign-up, when an SMS gateway is configured)")


class CodeIn(Input):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{6}$")]


class Verified(BaseModel):
    id: str = Field(description="the person the sign-up now belongs to")


class MemberOut(BaseModel):
    id: str
    name: str
    phone: str
    gender: Gender | None
    tier: str
    tags: list[str]
    preferences: list[str]
    consent: Consent
    faces: int = Field(description="enrolled face photos; the embeddings never leave the cloud")
    created: datetime


class FaceEnrolled(BaseModel):
    face_id: str
    det_score: float
    face_px: int


class VisitOut(BaseModel):
    visit_id: str
    member_id: str | None
    confidence: float
    ts: datetime = Field(description="capture time at the door")
    device: str
    camera: str = Field(description="'wifi' when a presence event opened the visit")
    arrival_event_id: str = Field(description="the event that opened the visit (an arrival or a presence enter)")
    card_id: str | None = Field(description="None for a Wi-Fi-only visit: it gets no guide card")
    signals: Literal["face", "wifi", "face+wifi"]
    left_ts: datetime | None = Field(description="when the registered phone left (Wi-Fi leave)")
    dwell_s: float | None
    arrivals: list[str] = Field(
        default_factory=list, description="every arrival stored against this visit, from any box (one visit per person "
        "and store within the re-visit window), in capture order")
    phone: Literal["present", "absent"] | None = Field(
        default=None, description="the candidate's registered phone when the face was decided; None: no phone")
    fused_confidence: float | None = Field(
        default=None, description="face and Wi-Fi fused (cloud.arrivals.fusion): posterior probability")
    fusion: str | None = Field(default=None, description="the fusion's reasons, '；'-separated")


class IngestStats(BaseModel):
    enabled: bool = Field(description="False when the cloud runs without a broker")
    connected: bool
    backlog: int = Field(description="messages received but not processed yet")
    received: int
    rejected: dict[str, int] = Field(description="by reason")
    duplicates: int
    matched: int
    visitors: int
    cards: int
    errors: int
    retries: int = Field(default=0, description="messages routed again after a transient database error")
    presence: int = Field(description="presence events of registered phones stored")
    wifi_joined: int = Field(description="face arrivals and presence enters that joined the other signal's visit")
    footfall_minutes: int
    feedback: int
    device_reports: int = Field(description="retained states and telemetry read")
    till_orders: int = Field(default=0, description="till orders (evt/order) landed")
    uncertain: int = Field(default=0, description="visitor cards that asked 可能是 王女士？请确认")
    confirmed_cards: int = Field(default=0, description="member cards sent after an assistant's 是")
    wifi_promoted: int = Field(default=0, description="uncertain faces the member's phone in the store raised")
    tasks_done: int = Field(default=0, description="guides' 完成 on campaign and journey tasks, passed on to the screens")
    staff_signs: int = Field(default=0, description="assistants' sign-ins and sign-outs (上岗/离岗) on the guide screens")
    batches: int = Field(default=0, description="transactions that stored several arrivals waiting together")
    batch_fallbacks: int = Field(default=0, description="batches rolled back and routed again one by one")


class Health(BaseModel):
    """Only ``status`` without a valid key; the rest for key holders."""

    status: Literal["ok"]
    pack: str | None = None
    faces: int | None = None
    ingest: Literal["off", "connected", "disconnected"] | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str


class Error(BaseModel):
    detail: ErrorDetail


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    total: int | None = Field(default=None, description="all matching rows, where cheap to count")


class ConsentChange(Input):
    model_config = ConfigDict(extra="forbid")

    face: bool


class ErasureOut(BaseModel):
    person_id: str
    records: int
    faces: int
    identifiers: int
    orders_anonymised: int = Field(description="orders kept for totals, no longer linked to anyone")
    commands: int = Field(description="erase commands queued for edge boxes and guide screens")
    erasure_id: str = Field(default="", description="the receipt: GET /v1/erasures/{erasure_id}")


class MemberRow(BaseModel):
    id: str
    name: str | None
    lifecycle: str | None = None
    value_tier: str | None = None
    ltv: float | None = None
    orders: int | None = None


class MergeRequest(Input):
    model_config = ConfigDict(extra="forbid")

    a: str
    b: str
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class SplitRequest(Input):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class ResolutionOut(BaseModel):
    records: int
    links: int
    rejected: int
    changed_persons: int
    seconds: float


class RuleIn(Input):
    model_config = ConfigDict(extra="forbid")

    hard: bool
    priority: int = Field(ge=0, le=999)
    max_per_person: int = Field(ge=0, le=1000)
    max_share: int = Field(ge=2, le=100_000, description="more records sharing one value link nobody")
    enabled: bool = True


class RuleOut(RuleIn):
    kind: str
    max_share: int = Field(ge=0, description="0 for the soft rules (face, mac), which never link")


class BlockIn(Input):
    model_config = ConfigDict(extra="forbid")

    kind: Annotated[str, StringConstraints(min_length=1, max_length=30)] = Field(description="'*' = any kind")
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(description="a regular expression")
    reason: Label


class SegmentIn(Input):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    condition: dict


class SegmentQuery(Input):
    model_config = ConfigDict(extra="forbid")

    condition: dict
    as_of: datetime | None = Field(default=None, description="evaluate windows as of this time (default now)")


class SegmentOut(BaseModel):
    id: str
    name: str
    condition: dict
    created: datetime
    created_by: str


class CountOut(BaseModel):
    count: int
    groups: dict[str, int] | None = Field(default=None, description="A/B group sizes, when a salt is given")


class TagRuleIn(Input):
    model_config = ConfigDict(extra="forbid")

    name: Label
    value: Label = "true"
    condition: dict
    display: bool = Field(default=False, description="the guide card shows this tag")
    priority: int = Field(default=0, ge=-1000, le=1000, description="higher first on the card")


class TagCount(BaseModel):
    tag: str
    value: str
    source: str
    persons: int


class StoreIn(Input):
    model_config = ConfigDict(extra="forbid")

    id: str
    brand: str
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    city: str | None = None


class StoreOut(StoreIn):
    created: datetime


class KeyIn(Input):
    model_config = ConfigDict(extra="forbid")

    name: Label
    role: Literal["hq_admin", "hq_analyst", "store_manager", "device"]
    store: str | None = None


class KeyCreated(BaseModel):
    id: str
    key: str = Field(description="shown once; only its hash is stored")


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    store: str | None
    created: datetime
    revoked_at: datetime | None


class Whoami(BaseModel):
    role: str
    store: str | None
    person: str | None = Field(default=None, description="whom the key was issued to")


class GuestLoginIn(Input):
    """The guest Wi-Fi page's first step: the address the access point gave the page, and the phone."""

    model_config = ConfigDict(extra="forbid")

    mac: str = Field(max_length=32, description="the client's address on the store's network, from the portal's redirect")
    phone: str = Field(min_length=5, max_length=20, description="the member's phone number; a code is texted to it")


class GuestLoginStarted(BaseModel):
    login_id: str
    expires: str


class GuestCodeIn(Input):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=4, max_length=8)
    consent: bool = Field(description="the member agrees that the store recognises this phone on its Wi-Fi")


class GuestBound(BaseModel):
    device_key: str
    created: bool


class DeviceIn(Input):
    """A member's phone: its MAC is keyed with the brand secret at once and never stored."""

    model_config = ConfigDict(extra="forbid")

    mac: str = Field(max_length=32, description="the phone's Wi-Fi MAC as shown in its settings (not a private one)")


class DeviceRegistered(BaseModel):
    device_key: str = Field(description="HMAC-SHA256 of the MAC under the brand secret; what edge boxes send")
    created: bool = Field(description="False when this member had registered the device already")


class FootfallBucket(BaseModel):
    start: datetime
    minutes: int = Field(description="minutes with data in the bucket")
    people: float = Field(description="people present: per minute, or the mean over the hour's minutes")
    people_max: int
    passing: int
    visits: int = Field(description="in-store visits that began in the bucket")
    distinct_macs: int = Field(description="naive count, summed over minutes, to watch the estimator")


class DeviceOut(BaseModel):
    brand: str
    store: str
    device: str
    role: str
    serial: str | None = Field(description="certificate serial; None for a device not in the registry")
    model_pack: str | None
    registry_state: Literal["active", "revoked"] | None
    revoked_at: datetime | None
    not_after: datetime | None
    last_seen: datetime | None
    state: Literal["online", "offline"] | None


class RegistryImported(BaseModel):
    brand: str
    devices: int
    revoked: int


class FeedbackOut(BaseModel):
    feedback_id: str
    screen: str
    card_id: str
    visit_id: str
    member_id: str | None
    confidence: float | None = Field(description="the visit's confidence when the card was acted on")
    action: str
    assistant: str | None
    amount: float | None
    ts: datetime
