"""Joining in the store (入会) from the customer's own phone: what the join page (``/dash/join.html``)
calls. No API key (the customer has none): the QR code's token names the invitation, the one-time
code to the phone proves who joins, and ``cloud.arrivals.joining`` limits codes per invitation."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cloud.api.deps import RuntimeDep
from cloud.api.schemas import Error, Input, NameAndPhone, VerificationOut
from cloud.arrivals import joining
from cloud.channels import sms

public = APIRouter(prefix="/join", tags=["join"])

Token = Annotated[str, Path(min_length=22, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Channel = Literal["sms", "wechat", "wecom", "email"]


class JoinState(BaseModel):
    status: Literal["open", "joined", "expired"]
    store: str
    expires: str
    channels: list[Channel] = Field(description="the marketing channels the page asks about, each on its own")
    face: Literal["pending", "enrolled", "refused"] | None = Field(
        default=None, description="after joining with face consent: the screen's live crop, enrolled or why not")
    member_card: str | None = Field(default=None, description="after joining: the number the member QR code carries")


class JoinCode(NameAndPhone):
    membership: Literal[True] = Field(description="the customer ticked 成为会员: without it nothing is stored")


class JoinConfirm(Input):
    model_config = ConfigDict(extra="forbid")

    verification_id: str = Field(min_length=8, max_length=64)
    code: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{6}$")]
    face: bool = Field(description="人脸识别: may the live photo of this visit be enrolled and recognised in stores")
    marketing: dict[Channel, bool] = Field(default_factory=dict, description="each channel's answer; unanswered is no")


def _state(runtime: RuntimeDep, invitation: joining.Invitation) -> JoinState:
    card = joining.member_card(runtime.db, invitation.person_id) if invitation.person_id else None
    return JoinState(status=invitation.status, store=invitation.store, expires=invitation.expires,
                     channels=["sms", "wechat", "wecom", "email"],
                     face=joining.face_outcome(runtime.db, invitation), member_card=card)


@public.get("/{token}", response_model=JoinState, responses={404: {"model": Error}})
def invitation(token: Token, runtime: RuntimeDep) -> JoinState:
    """What the page shows first: whether this QR code is still good, and the questions it asks."""
    return _state(runtime, joining.view(runtime.db, token))


@public.post("/{token}/code", status_code=status.HTTP_201_CREATED, response_model=VerificationOut,
             responses={404: {"model": Error}, 409: {"model": Error}, 429: {"model": Error}, 503: {"model": Error}})
def send_code(token: Token, body: JoinCode, runtime: RuntimeDep) -> VerificationOut:
    """成为会员 with a name and phone: a one-time code goes to the phone."""
    settings = runtime.settings
    pending = joining.send_code(runtime.db, token, name=body.name, phone=body.phone, sms=sms.from_settings(settings),
                                template=settings.sms_otp_template)
    return VerificationOut(id=pending.id, kind=pending.kind, sent=pending.sent, expires=pending.expires)


@public.post("/{token}/confirm", response_model=JoinState,
             responses={404: {"model": Error}, 409: {"model": Error}, 422: {"model": Error}})
def confirm(token: Token, body: JoinConfirm, runtime: RuntimeDep) -> JoinState:
    """The code from the SMS and the consents: the visitor is a member, and the screen's card theirs."""
    joined = runtime.join(token, body.verification_id, body.code, face=body.face,
                          marketing={str(k): v for k, v in body.marketing.items()})
    return _state(runtime, joined.invitation)


@public.get("/{token}/member-qr.png", response_class=Response, responses={404: {"model": Error}, 409: {"model": Error}},
)
def member_qr(token: Token, runtime: RuntimeDep) -> Response:
    """The new member's QR code (their card number): shown at the door or the till instead of a face."""
    png = joining.member_qr_png(joining.joined_card(runtime.db, token))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})
