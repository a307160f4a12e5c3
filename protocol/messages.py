"""Message models: what travels between edge, cloud and kiosk.

Every message carries the schema version ``v`` and a ``type`` tag; ``AnyMessage`` is the
discriminated union the codec decodes. Models forbid unknown fields so that a producer's typo is
caught at the first consumer instead of being silently dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal
from uuid import uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from protocol import SCHEMA_VERSION
from protocol.embedding import Embedding

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
EventId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ShortText = Annotated[str, Field(max_length=200)]


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid4().hex


class Message(BaseModel):
    """Ids and timestamps have no defaults: a decoded message must carry its own, or
    de-duplication and latency measurement would silently use the receiver's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = SCHEMA_VERSION

    #: Optional fields added after v1 that are left out of the JSON when None: a consumer built
    #: before them forbids unknown fields, and still decodes every message that does not use them.
    _omitted_when_none: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _without_new_empty_fields(self, handler: SerializerFunctionWrapHandler) -> dict:
        data = handler(self)
        if isinstance(data, dict):
            for name in self._omitted_when_none:
                if data.get(name, ...) is None:
                    del data[name]
        return data


class FaceQuality(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    det_score: float = Field(ge=0.0, le=1.0, description="detector confidence")
    face_px: int = Field(ge=1, le=100_000, description="inter-ocular-scaled face size in pixels")
    bbox: tuple[int, int, int, int] = Field(description="x1, y1, x2, y2 in the source frame")


#: Milliseconds after ``StageTimes.capture``; negative only by clock skew between machines, and an
#: outbox backlog after a long uplink cut may make it days.
StageMs = Annotated[float, Field(ge=-3_600_000, le=30 * 86_400_000)]


class StageTimes(BaseModel):
    """Where one arrival's time went between the door and the guide screen (issue 19).

    ``capture`` is the capture time (UTC, the edge's clock) of the frame whose faces completed the
    arrival, i.e. the frame after which the box decided to announce it; every other field is
    milliseconds after ``capture``, written by the process that did that step from its own clock
    (clocks are NTP-synced; a cross-machine leg includes their skew). A stage not measured, or not
    reached yet, is None. The edge fills ``detected_ms`` to ``queued_ms`` in the ``Arrival``; the
    cloud copies them into the ``GuideCard`` and adds ``ingested_ms``, ``matched_ms`` and
    ``card_ms``; the screen measures ``drawn`` itself (its ``/metrics``), as nothing comes after it.
    Offsets rather than timestamps keep the field small (~150 bytes) and make each leg a
    subtraction; the edge's publish time (outbox row acknowledged by the broker) cannot be in the
    payload, which is on disk before it is sent: the edge's ``/metrics`` has it, and
    ``ingested_ms - queued_ms`` is the outbox + MQTT + broker leg seen from the cloud.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    capture: AwareDatetime
    detected_ms: StageMs | None = Field(default=None, description="edge: the frame's faces detected")
    embedded_ms: StageMs | None = Field(default=None, description="edge: the frame's faces gated, aligned and embedded")
    queued_ms: StageMs | None = Field(default=None, description="edge: the arrival handed to the outbox")
    ingested_ms: StageMs | None = Field(default=None, description="cloud: the arrival received and decoded")
    matched_ms: StageMs | None = Field(default=None, description="cloud: member or visitor decided")
    card_ms: StageMs | None = Field(default=None, description="cloud: the card built, about to be published")

    def at(self, moment: datetime) -> float:
        """Milliseconds from ``capture`` to ``moment``: the value for a stage reached at ``moment``."""
        return round((moment - self.capture).total_seconds() * 1000, 3)


class _Traced(Message):
    """A message with optional ``timings``: left out of the JSON when None, so that a producer that
    does not trace sends exactly what it sent before the field existed (and older consumers, whose
    models forbid unknown fields, still decode it)."""

    timings: StageTimes | None = None
    _omitted_when_none: ClassVar[tuple[str, ...]] = ("timings",)


class Arrival(_Traced):
    """One face seen by an edge box: the cloud decides whether it is a member."""

    type: Literal["arrival"] = "arrival"
    event_id: EventId = Field(description="idempotency key, made once at the edge (new_id)")
    ts: AwareDatetime = Field(description="capture time of the frame the face came from")
    brand: Id
    store: Id
    device: Id
    camera: Id
    track_id: Id
    embedding: Embedding
    quality: FaceQuality
    model_pack: Id


class LastPurchase(BaseModel):
    """The member's most recent paid order: when, and the items the assistant can mention."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: AwareDatetime
    items: list[ShortText] = Field(default_factory=list, max_length=5, description="product names, dearest first")
    amount: float = Field(ge=0, description="yuan paid")


class MemberSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    member_id: Id
    name: ShortText
    title: ShortText = Field(description="how the assistant addresses the member, e.g. 王女士")
    tier: ShortText
    tags: list[ShortText] = Field(default_factory=list, max_length=50,
                                  description="the rule tags HQ marks for display (by priority), then the member's own")
    visits: int = Field(default=0, ge=0, description="earlier visits to this brand's stores")
    # Added after v1 shipped: optional, so cards from an older cloud still decode.
    lifetime_value: float | None = Field(default=None, ge=0, description="yuan paid over all orders")
    last_visit: AwareDatetime | None = Field(default=None, description="the previous visit to any of the brand's stores")
    last_purchase: LastPurchase | None = None
    preferences: list[ShortText] = Field(default_factory=list, max_length=5, description="top categories by spend")
    enrolled_photo: Annotated[str, Field(max_length=16_384)] | None = Field(
        default=None, description="base64 JPEG of the member's enrolled face (112x112 aligned, a few KB); member cards only"
    )
    # Added for issue 15: optional, so cards from an older cloud still decode.
    value_tier: ShortText | None = Field(default=None, description="RFM value tier in words (高价值会员)")
    lifecycle: ShortText | None = Field(default=None, description="lifecycle stage in words (活跃顾客)")
    points: int | None = Field(default=None, ge=0, description="points balance, once known")
    birthday_month: int | None = Field(default=None, ge=1, le=12, description="birthday month, once known")


class Recommendation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Id
    name: ShortText
    price: float = Field(ge=0)
    reason: ShortText


class Candidate(BaseModel):
    """An uncertain match (issue 18): who the face might be, for the assistant to confirm or reject.
    Never a profile: only how to address them, the question to ask, and the enrolled photo to compare
    with the live crop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    member_id: Id
    title: ShortText = Field(description="how the assistant would address them, e.g. 王女士")
    prompt: ShortText = Field(description="what the card asks, e.g. 可能是 王女士？请确认")
    enrolled_photo: Annotated[str, Field(max_length=16_384)] | None = Field(
        default=None, description="base64 JPEG of the enrolled face, shown beside the live crop")


class Evidence(BaseModel):
    """How sure the cloud is of the person on a card once the face and the member's registered phone
    are fused (issue 18, ``cloud.arrivals.fusion``): the posterior probability and why, in words."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fused: float = Field(ge=0.0, le=1.0, description="posterior probability that the card's person is here")
    phone: Literal["present", "absent"] | None = Field(
        default=None, description="the member's registered phone in the store; None: no registered phone")
    reasons: list[ShortText] = Field(default_factory=list, max_length=6,
                                     description="e.g. 人脸相似度 0.472（门槛 0.491）, 登记手机在店（似然比 4.2 …）")


class GuideCard(_Traced):
    """What a guide screen shows for one arrival. ``member`` is None for a visitor: counted, never
    profiled, never shown with a face or a name."""

    type: Literal["guide_card"] = "guide_card"
    card_id: EventId
    visit_id: EventId
    arrival_event_id: EventId
    brand: Id
    store: Id
    ts: AwareDatetime = Field(description="when the cloud made the card")
    arrival_ts: AwareDatetime = Field(description="capture time at the door")
    member: MemberSummary | None
    confidence: float = Field(ge=-1.0, le=1.0, description="cosine similarity of the match")
    recommendations: list[Recommendation] = Field(default_factory=list, max_length=20)
    script: Annotated[str, Field(max_length=2000)] = ""
    expires_at: AwareDatetime = Field(description="do not show after this; also MQTT expiry")
    # Added for issue 18, left out of the JSON when None: older screens still decode every card, and
    # read an uncertain one (member None) as a visitor, which is the safe side.
    candidate: Candidate | None = Field(
        default=None, description="an uncertain match to confirm (member is None then); see Candidate")
    evidence: Evidence | None = Field(
        default=None, description="face and Wi-Fi fused: the posterior and its reasons (member and uncertain cards)")
    _omitted_when_none: ClassVar[tuple[str, ...]] = ("timings", "candidate", "evidence")


class GuideTask(Message):
    """A task for the store's guides from a campaign or journey (issue 20): "王女士 is due to
    repurchase 面霜: offer the sample". Shown on the guide screens until done or expired; carries
    the member's id and display name, never a face or a phone."""

    type: Literal["guide_task"] = "guide_task"
    task_id: EventId
    brand: Id
    store: Id
    member_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    title: Annotated[str, Field(max_length=100)]
    text: Annotated[str, Field(min_length=1, max_length=300)]
    source: Annotated[str, Field(max_length=100)] = Field(description="campaign:<send key>: what asked for it")
    ts: AwareDatetime
    expires_at: AwareDatetime = Field(description="do not show after this; also MQTT expiry")


class GuideTaskDone(Message):
    """A guide tapped 完成 on a task (issue 20). The screen sends it on its own feedback topic; the
    cloud records who and when (the first tap counts) and passes it on to the store's task topic,
    so every screen of the store takes the task off."""

    type: Literal["guide_task_done"] = "guide_task_done"
    task_id: EventId
    brand: Id
    store: Id
    screen: Id = Field(description="the screen it was tapped on")
    assistant: ShortText | None = Field(default=None, description="who tapped it, when the screen knows")
    ts: AwareDatetime


StaffAction = Literal["sign_in", "sign_out"]


class StaffSign(Message):
    """An assistant signs in (上岗) or out (离岗) on a guide screen (issue 17): the roster
    (``shifts``) is checked against these, so an assistant who never came in is absent at their
    shift's start plus a grace, not after the customers they did not serve. Sent by the screen on
    its own ``staff`` topic, one per tap, stored once (``sign_id``)."""

    type: Literal["staff_sign"] = "staff_sign"
    sign_id: EventId = Field(description="idempotency key, made once by the screen (new_id)")
    brand: Id
    store: Id
    screen: Id = Field(description="the screen it was tapped on")
    assistant: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="the assistant as the screen knows them (its configured assistants, as card feedback names them): "
                    "the staff file's id or name; the cloud reads a name as the id of the store's one assistant with it")
    action: StaffAction
    ts: AwareDatetime = Field(description="when it was tapped (the screen's clock)")


class FloorAssistant(BaseModel):
    """One assistant on the store's floor (in ``StaffFloor``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assistant: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="the staff file's id (a sign under a name resolves to its id); what the screen sent when the "
                    "staff file does not list it")
    name: ShortText | None = Field(description="the staff file's name, when it lists the assistant")
    since: AwareDatetime = Field(description="their latest sign-in")
    screen: Id = Field(description="the screen they signed in on")


class StaffFloor(Message):
    """Who is on a store's floor as the cloud knows it (issue 17): sent after every sign it stores, retained
    on the store's ``guide/all/floor`` topic, so every screen of the store, and one that starts later,
    shows the same floor whichever screen each assistant signed in on. The floor is the store's local
    day's: at ``until`` it is empty again (a sign-in forgotten overnight puts nobody on tomorrow's)."""

    type: Literal["staff_floor"] = "staff_floor"
    brand: Id
    store: Id
    assistants: Annotated[list[FloorAssistant], Field(max_length=200)]
    sign_id: EventId | None = Field(description="the sign whose storing sent this floor, which it therefore shows: "
                                                "the screen that sent it holds its own mark of the tap until then")
    ts: AwareDatetime = Field(description="when the cloud read the floor")
    until: AwareDatetime = Field(description="the end of the store's local day: the floor is empty from then on; "
                                             "also the MQTT expiry")


class DeviceState(Message):
    """Retained presence of a device; the same model, state=offline, is its Last Will."""

    type: Literal["device_state"] = "device_state"
    brand: Id
    store: Id
    device: Id
    role: Literal["edge", "kiosk", "esl_gateway", "cloud"]
    state: Literal["online", "offline"]
    ts: AwareDatetime
    model_pack: Id | None = None
    software: ShortText = "instore/0.1.0"


FeedbackAction = Literal["claimed", "greeted", "served", "sold", "not_this_person", "dismissed", "confirmed", "rejected",
                         "invited"]
#: What a join invitation's QR code carries after the page's address: 128 random bits, URL-safe.
InvitationToken = Annotated[str, Field(min_length=22, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class Feedback(Message):
    """An assistant's action on a card, sent by the guide screen."""

    type: Literal["feedback"] = "feedback"
    feedback_id: EventId
    card_id: EventId
    visit_id: EventId
    brand: Id
    store: Id
    screen: Id
    action: FeedbackAction
    assistant: ShortText | None = None
    amount: float | None = Field(default=None, ge=0, description="sale amount, action=sold only")
    receipt: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="the till's receipt (order) number, action=sold only: the till confirms the sale")
    ts: AwareDatetime
    # Added for issue 21 (入会), left out of the JSON when None so older clouds still take every other action.
    invitation: InvitationToken | None = Field(
        default=None, description="action=invited only: the token the screen's QR code carries to the join page")
    _omitted_when_none: ClassVar[tuple[str, ...]] = ("invitation",)


AnyMessage = Annotated[Arrival | GuideCard | DeviceState | Feedback | StaffSign, Field(discriminator="type")]
