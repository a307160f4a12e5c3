"""Request and response bodies of the pack-rollout and device-command routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud.api.schemas import Input
from cloud.fleet.rollout.evaluate import Tolerances
from protocol.facepack.signing import SignedManifest
from protocol.messages import Id


class RolloutIn(Input):
    model_config = ConfigDict(extra="forbid")

    brand: Id
    pack_id: Id
    canary_stores: list[Id] = Field(min_length=1, max_length=50, description="stores whose edge boxes get the pack first")
    signed_manifest: SignedManifest | None = Field(
        default=None, description="the pack's pack.signed.json; when given, boxes must hold exactly this signed build"
    )
    baseline_hours: float = Field(default=168, gt=0, le=24 * 90, description="the canary stores' before window")
    observe_hours: float = Field(default=24, gt=0, le=24 * 30, description="how long the canary runs before it is judged")
    tolerances: Tolerances = Tolerances()


class ReasonIn(Input):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class RolloutDeviceOut(BaseModel):
    store: str
    device: str
    phase: Literal["canary", "promoted", "rollback"]
    previous_pack: str | None
    command_id: str
    command_state: Literal["pending", "sent", "done", "refused", "expired"]
    ack_detail: str | None


class GalleryCarryOverOut(BaseModel):
    pack: str
    embedding_space: str
    members: int = Field(description="enrolled people considered")
    reembedded: int = Field(description="given a face in the pack's space from their enrolment thumbnail")
    already: int = Field(description="had a face in that space (the same space: every member)")
    skipped: dict[Literal["no_consent", "no_thumbnail", "no_face_found"], list[str]] = Field(
        description="people not carried over, by reason: they will be visitors to switched boxes")


class RolloutOut(BaseModel):
    id: str
    brand: str
    pack_id: str
    manifest_sha256: str | None
    canary_stores: list[str]
    state: Literal["planned", "canary", "promoted", "rolled_back"]
    created: datetime
    created_by: str
    started: datetime | None = Field(description="when the first canary box switched")
    baseline_s: int
    observe_s: int
    tolerances: Tolerances
    decided: datetime | None
    decision: str | None
    reason: str | None
    evaluation: dict[str, Any] | None = Field(description="the latest verdict, its checks and the windows' counts")
    devices: list[RolloutDeviceOut] | None = None
    gallery: GalleryCarryOverOut | None = Field(
        default=None, description="on creation: the members re-embedded for the pack, and who could not be")


class CommandOut(BaseModel):
    id: str
    brand: str
    store: str
    device: str
    name: str
    state: Literal["pending", "sent", "done", "refused", "expired"]
    created: datetime
    attempts: int
    sent_at: datetime | None = Field(description="the latest attempt")
    next_attempt: datetime | None
    expires: datetime | None
    acked_at: datetime | None
    ack_ok: bool | None
    ack_detail: str | None
