"""The HTTP API's request and response bodies.

Requests forbid unknown fields, so a client's typo (``"consents"``) is a 422 instead of a member
silently enrolled without the consent they gave. Phones are normalised to the 11-digit mainland
mobile number because the phone is a OneID key: ``+8613800138000`` and ``13800138000`` are one
person.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

DEFAULT_TIER = "普通会员"
_PHONE = re.compile(r"^(?:\+86)?(1[3-9]\d{9})$")
_NAME_PUNCTUATION = set(" ·.'-")

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
Gender = Literal["female", "male"]


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    face: bool = Field(description="may the member's face be enrolled and recognised in stores")


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    phone: Annotated[str, StringConstraints(strip_whitespace=True)] = Field(
        description="mainland mobile number, 11 digits, optionally prefixed +86"
    )
    gender: Gender | None = None
    tier: Label = DEFAULT_TIER
    tags: list[Label] = Field(default_factory=list, max_length=50)
    preferences: list[Label] = Field(
        default_factory=list, max_length=20, description="preferred product categories, e.g. 护肤, 彩妆"
    )
    consent: Consent

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


class MemberCreated(BaseModel):
    id: str


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
    camera: str
    arrival_event_id: str
    card_id: str


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


class Health(BaseModel):
    status: Literal["ok"]
    pack: str
    faces: int
    ingest: Literal["off", "connected", "disconnected"]


class ErrorDetail(BaseModel):
    code: str
    message: str


class Error(BaseModel):
    detail: ErrorDetail
