"""What an edge box says about itself and what it accepts from the cloud.

Telemetry (every 30 s, not retained) and the configuration pair ``cfg/desired`` (the cloud's wish,
retained) / ``cfg/reported`` (what the box runs, retained) live here, together with the tunable
part of the box's configuration, because the cloud writes it and the box validates it: both must
agree on one schema. ``FaceCrop`` travels on a store-local topic only and never reaches the cloud.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from protocol.messages import EventId, Id, Message, ShortText

Seconds = Annotated[float, Field(ge=0)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraSpec(_Settings):
    """One camera of the box: a file or folder for replay, an rtsp:// or http:// URL, or a USB index."""

    id: Id
    source: Annotated[str, Field(min_length=1, max_length=1000)]
    fps: float | None = Field(default=None, gt=0, le=120, description="frame-rate cap; None: as fast as frames come")
    enabled: bool = True
    # Added with issue 19 (optional).
    zone: tuple[float, float, float, float] | None = Field(
        default=None,
        description="the door zone: (left, top, right, bottom) as fractions of the frame; faces are looked for "
                    "only there (detection costs in proportion to the area), at the scale the whole frame gets; "
                    "None: the whole frame",
    )

    @field_validator("zone")
    @classmethod
    def _zone_inside_the_frame(cls, zone: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if zone is not None:
            left, top, right, bottom = zone
            if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
                raise ValueError("zone must be (left, top, right, bottom) with 0 <= left < right <= 1 and 0 <= top < bottom <= 1")
        return zone


class QualityGates(_Settings):
    """A face is embedded only if it passes every gate; each failure is counted by its reason."""

    min_face_px: int | None = Field(default=None, ge=8, description="shorter box side; None: the pack's own")
    min_det_score: float | None = Field(default=None, ge=0, le=1, description="None: the pack's own")
    min_sharpness: float = Field(default=20.0, ge=0, description="variance of the Laplacian of the aligned 112 px face")
    max_yaw_deg: float = Field(default=40.0, gt=0, le=90, description="left/right head turn from the 5 landmarks")
    max_pitch_deg: float = Field(default=35.0, gt=0, le=90, description="up/down head tilt from the 5 landmarks")
    # Added with issue 19 (optional, off by default).
    detect_for_min_face: bool = Field(
        default=False,
        description="YuNet packs: run the detector on the frame scaled down as far as still finds a face of "
                    "min_face_px (a door camera's faces are large: min_face_px 48 detects at 3/8 of the size); "
                    "smaller faces are then not seen at all instead of counted as too_small",
    )


class TrackingSettings(_Settings):
    min_iou: float = Field(default=0.3, gt=0, le=1, description="box overlap to continue a track")
    min_similarity: float | None = Field(
        default=None, ge=-1, le=1,
        description="an embedded face below this cosine to its track's aggregate starts a new track; None: the "
                    "pack's track_min_similarity (calibrated per recogniser, bench/track_similarity.py)",
    )
    max_missed_frames: int = Field(default=8, ge=0, description="frames without the face before the track ends")
    faces_for_arrival: int = Field(default=2, ge=1, le=20, description="good faces a track needs before its arrival")
    max_faces_per_track: int = Field(default=5, ge=1, le=50, description="embeddings kept for the aggregate")
    verify_every: int = Field(default=10, ge=1, description="after the arrival, re-embed every n-th frame to catch a swap")
    # Added with issue 19 (optional, off by default): the second face costs a frame interval (40 ms at
    # 25 fps) and, on frames a few ms apart, moves the aggregate's cosine to the member by ~0.005.
    confident_quality: float | None = Field(
        default=None, ge=0, le=1,
        description="a track's first face with at least this quality score (edge.quality) makes the arrival "
                    "alone; weaker first faces still wait for faces_for_arrival; None: always wait",
    )

    @model_validator(mode="after")
    def _enough_room(self) -> TrackingSettings:
        if self.max_faces_per_track < self.faces_for_arrival:
            raise ValueError("max_faces_per_track must be at least faces_for_arrival")
        return self


class VisitSettings(_Settings):
    revisit_window_s: Seconds = Field(default=600, description="the same face again within this is the same visit")
    min_similarity: float | None = Field(
        default=None, ge=-1, le=1, description="cosine for 'same person' across tracks; None: the pack's match threshold"
    )
    visitor_ttl_s: Seconds = Field(default=86_400, description="no face vector is kept longer than this")


class LocalCropSettings(_Settings):
    """Live face crops for the store's own guide screen; off unless a store turns them on."""

    enabled: bool = False
    size_px: int = Field(default=112, ge=64, le=400)


class RemoteSettings(_Settings):
    """The part of a box's configuration the cloud may change without a restart."""

    cameras: list[CameraSpec] = Field(min_length=1, max_length=8)
    gates: QualityGates = QualityGates()
    tracking: TrackingSettings = TrackingSettings()
    visits: VisitSettings = VisitSettings()
    local_crop: LocalCropSettings = LocalCropSettings()

    @model_validator(mode="after")
    def _unique_cameras(self) -> RemoteSettings:
        ids = [c.id for c in self.cameras]
        if len(ids) != len(set(ids)):
            raise ValueError(f"camera ids must be unique, got {ids}")
        return self


class DeviceMessage(Message):
    """A message about one box: whose it is travels inside, so a consumer can check it against the topic."""

    brand: Id
    store: Id
    device: Id


class ConfigDesired(DeviceMessage):
    """Retained on ``cfg/desired``: the whole tunable configuration the cloud wants the box to run."""

    type: Literal["config_desired"] = "config_desired"
    version: int = Field(ge=1, description="increases with every change; the box reports the version it runs")
    ts: AwareDatetime
    settings: RemoteSettings


class ConfigReported(DeviceMessage):
    """Retained on ``cfg/reported``: what the box runs, and why a desired version was refused."""

    type: Literal["config_reported"] = "config_reported"
    version: int = Field(ge=0, description="0: the box's own file or flags")
    ts: AwareDatetime
    settings: RemoteSettings
    refused_version: int | None = None
    error: ShortText | None = None
    model_pack: Id | None = Field(default=None, description="the face model pack the box runs now")


CameraState = Literal["running", "reconnecting", "ended", "stopped"]


class CameraTelemetry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: Id
    state: CameraState
    fps: float = Field(ge=0, description="frames processed per second since the last report")
    detect_ms: float = Field(ge=0, description="mean detection time per frame since the last report")
    frames: int = Field(ge=0)
    dropped_frames: int = Field(ge=0, description="frames skipped because the box was busy (latest-frame rule)")
    reconnects: int = Field(ge=0)
    last_error: ShortText | None = None


class Telemetry(DeviceMessage):
    """Health of one box, every ``telemetry.interval_s``; counters are totals since start."""

    type: Literal["telemetry"] = "telemetry"
    ts: AwareDatetime
    uptime_s: float = Field(ge=0)
    model_pack: Id
    cameras: list[CameraTelemetry]
    faces: int = Field(ge=0)
    tracks: int = Field(ge=0)
    arrivals: int = Field(ge=0)
    same_visit: int = Field(ge=0, description="tracks recognised as a visit already announced")
    rejected: dict[str, int] = Field(description="faces not embedded, by gate")
    commands_refused: dict[str, int] = Field(
        default_factory=dict, description="cfg/desired and cmd/* messages the box refused, by reason: "
        "invalid_payload, topic_mismatch (addressed to another device), config_refused, pack_refused, "
        "local_crop_refused (face crops asked for while the box's broker is not the store's own)",
    )
    outbox_depth: int = Field(ge=0)
    outbox_dropped: int = Field(ge=0)
    outbox_refused: dict[str, int] = Field(
        default_factory=dict, description="messages the broker did not accept (PUBACK reason >= 0x80), by reason, "
        "since start; each row stayed in the outbox and is sent again after a back-off"
    )
    outbox_backoff_s: float = Field(default=0, ge=0, description="the current back-off after refusals; 0: delivering")
    cpu_percent: float = Field(ge=0)
    rss_mb: float = Field(ge=0)
    cert_days_left: float | None = Field(
        default=None, description="days until the device certificate expires, negative once expired; "
        "None for a box not started from an install bundle"
    )


class FaceEnrolment(DeviceMessage):
    """A guide screen's answer to an ``EnrolCommand``: the live crop it kept of the invited arrival,
    sent on its ``evt/face`` only once the person consented (the command is that consent's proof)."""

    type: Literal["face_enrolment"] = "face_enrolment"
    command_id: EventId
    arrival_event_id: EventId
    member_id: EventId
    ts: AwareDatetime
    jpeg: str = Field(max_length=48_000, description="base64 JPEG of the aligned face, as the edge sent it")


class FaceCrop(DeviceMessage):
    """A live face crop for the store's guide screen, beside the enrolled photo; store-local only."""

    type: Literal["face_crop"] = "face_crop"
    camera: Id
    arrival_event_id: EventId
    ts: AwareDatetime
    jpeg: str = Field(max_length=48_000, description="base64 JPEG")
