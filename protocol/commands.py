"""Commands the cloud sends to edge boxes, on ``topics.device_command(brand, store, device, name)``.

``erase``: forget a person everywhere. The cloud sends one to every edge box of the brand when a
member is erased (or withdraws face consent), so that any embedding a box cached for them goes
too. Boxes acknowledge on ``topics.device_command_ack`` (the edge issue's part).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from protocol.messages import EventId, Id, Message

ERASE = "erase"


class EraseCommand(Message):
    type: Literal["erase"] = "erase"
    command_id: EventId = Field(description="idempotency key; the ack names it")
    brand: Id
    store: Id
    device: Id
    member_ids: list[EventId] = Field(
        min_length=1, max_length=1000,
        description="the person's id and every record id ever merged into it: any of them may be cached",
    )
    reason: Literal["erasure", "consent_withdrawn"]
    ts: AwareDatetime
