"""Commands the cloud sends to edge boxes, on ``topics.device_command(brand, store, device, name)``.

``erase``: forget a person everywhere. The cloud sends one to every edge box of the brand when a
member is erased (or withdraws face consent), so that any embedding a box cached for them goes
too. The box forgets the cached faces of the arrivals named in the command and acknowledges with a
``CommandAck`` on ``topics.device_command_ack``.

``pack``: switch the box's face model pack at run time (a staged rollout, or its rollback). The
box verifies the pack exactly as at start-up (the brand's signature over the manifest, every
file's sha256; with ``manifest_sha256``, also that its signed manifest is the one the rollout
named), loads it, swaps it in between frames and acknowledges; a refused pack is acknowledged
with ``ok`` false and the reason, and the old pack keeps running.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from protocol.messages import EventId, Id, Message, ShortText

ERASE = "erase"
PACK = "pack"
ENROL = "enrol"


class DeviceCommand(Message):
    """What every command and its ack carry: the idempotency key and the one box it is for."""

    command_id: EventId = Field(description="idempotency key; the ack names it")
    brand: Id
    store: Id
    device: Id


class EraseCommand(DeviceCommand):
    type: Literal["erase"] = "erase"
    member_ids: list[EventId] = Field(
        min_length=1, max_length=1000,
        description="the person's id and every record id ever merged into it: any of them may be cached",
    )
    arrival_event_ids: list[EventId] = Field(
        max_length=10_000,
        description="this device's arrivals attributed to the person in the last 24 h: the box keys its "
        "recent-visit cache (face vectors) by these, never by member id",
    )
    reason: Literal["erasure", "consent_withdrawn"]
    ts: AwareDatetime


class PackCommand(DeviceCommand):
    type: Literal["pack"] = "pack"
    pack_id: Id
    manifest_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$",
        description="sha256 of the signed manifest's canonical bytes the rollout pins; None: any manifest "
        "the brand signed for this pack",
    )
    rollout_id: EventId | None = None
    ts: AwareDatetime


class EnrolCommand(DeviceCommand):
    type: Literal["enrol"] = "enrol"
    invitation_id: EventId = Field(description="the join invitation the visitor accepted")
    arrival_event_id: EventId = Field(description="whose live crop: the arrival the invited card was made for")
    member_id: EventId = Field(description="the person who joined and consented to face recognition")
    ts: AwareDatetime


class CommandAck(DeviceCommand):
    """A box's answer to a command, on ``topics.device_command_ack``."""

    type: Literal["command_ack"] = "command_ack"
    name: Id
    ok: bool
    detail: ShortText
    ts: AwareDatetime
