"""Members: sign up, list, read, the 360 profile, face enrolment, consent and erasure.

Enrolment is the only way a face enters the gallery, so it is where consent is enforced: a
member without face consent is refused before the photo is even decoded. Withdrawing consent
deletes the person's faces and tells every edge box to forget them, like an erasure does.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cloud.api.deps import Admin, Counter, PagingDep, Reader, RuntimeDep, api_error, person_for, scoped_store
from cloud.api.schemas import (
    CodeIn,
    Consent,
    ConsentChange,
    ErasureOut,
    Error,
    FaceEnrolled,
    Input,
    MemberCreate,
    MemberCreated,
    MemberOut,
    MemberRow,
    Page,
    VerificationOut,
    Verified,
)
from cloud.cdp import binding, erasure, lifecycle, members, profile, tags, verification
from cloud.cdp.segments import Condition, count, page
from cloud.channels import sms
from cloud.faces import enrolled
from cloud.loyalty import tiers

router = APIRouter(prefix="/members", tags=["members"])

Lifecycle = Literal[lifecycle.LIFECYCLE_STAGES]  # type: ignore[valid-type]
_ENROL_STATUS = {"unknown_member": status.HTTP_404_NOT_FOUND, "no_consent": status.HTTP_409_CONFLICT}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MemberCreated)
def create_member(body: MemberCreate, runtime: RuntimeDep, principal: Counter) -> MemberCreated:
    """Sign up. A phone that already belongs to someone does not attach the sign-up to them: it is
    its own unverified person, and a one-time code goes to the phone (``verification``). A sign-up
    with face consent also gets a code when an SMS gateway is configured: entered, the consent is
    proven and counts for the person after any later merge (``cloud.cdp.verification``)."""
    member = members.add_member(runtime.db,
        name=body.name, phone=body.phone, gender=body.gender, tier=body.tier, tags=body.tags,
        categories=body.preferences, face_consent=body.consent.face, store=scoped_store(principal),
        actor=principal.name,
    )
    # the person's stats from the start (a stated 金卡会员 is no prospect: ``tags``), not at the night's batch
    tags.refresh(runtime.db, [member.id])
    if not member.verified:
        return MemberCreated(id=member.id, verified=False, verification=_send_code(runtime, principal, member.id))
    if body.consent.face and runtime.settings.sms_url:
        return MemberCreated(id=member.id, verification=_send_code(runtime, principal, member.id))
    return MemberCreated(id=member.id)


def _send_code(runtime: RuntimeDep, principal: Counter, member_id: str) -> VerificationOut:
    settings = runtime.settings
    pending = verification.start(runtime.db, member_id, sms=sms.from_settings(settings),
                                 template=settings.sms_otp_template, actor=principal.name, store=scoped_store(principal))
    return VerificationOut(id=pending.id, kind=pending.kind, sent=pending.sent, expires=pending.expires)


@router.post("/{member_id}/verification", status_code=status.HTTP_201_CREATED, response_model=VerificationOut,
             responses={404: {"model": Error}, 403: {"model": Error}, 409: {"model": Error}, 429: {"model": Error}})
def resend_code(member_id: str, runtime: RuntimeDep, principal: Counter) -> VerificationOut:
    """A fresh one-time code to the phone of an unverified sign-up, or of a record whose face consent
    is not proven yet (the previous code stops working)."""
    person_for(runtime, principal, member_id)
    return _send_code(runtime, principal, member_id)


@router.post("/{member_id}/verification/{verification_id}", response_model=Verified,
             responses={404: {"model": Error}, 403: {"model": Error}, 409: {"model": Error}, 422: {"model": Error}})
def verify_code(member_id: str, verification_id: str, body: CodeIn, runtime: RuntimeDep,
                principal: Counter) -> Verified:
    """The code the phone received: the sign-up joins the person who owns the phone, and its face
    consent, if given, is proven."""
    person_for(runtime, principal, member_id)
    person = verification.confirm(runtime.db, member_id, verification_id, body.code, actor=principal.name)
    tags.refresh(runtime.db, [person])  # the person's stats and tags now include the sign-up's
    return Verified(id=person)


class BindingIn(Input):
    model_config = ConfigDict(extra="forbid")

    kind: binding.Bindable = Field(description="tmall_buyer (买家会员名), unionid (WeChat) or member_card (POS card)")
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = Field(
        description="as the channel's own login gives it (WeChat OAuth, Tmall's membership authorisation, the POS)")


class BindingCode(CodeIn):
    kind: binding.Bindable


class BoundOut(BaseModel):
    person_id: str
    kind: str
    value: str
    records: list[str] = Field(description="the person's records now, the channel's among them")


@router.post("/{member_id}/bindings", status_code=status.HTTP_201_CREATED, response_model=VerificationOut,
             responses={404: {"model": Error}, 403: {"model": Error}, 409: {"model": Error}, 429: {"model": Error},
                        503: {"model": Error}})
def bind_start(member_id: str, body: BindingIn, runtime: RuntimeDep, principal: Counter) -> VerificationOut:
    """One member card across channels: a code to the person's phone proves the binding is theirs."""
    person_for(runtime, principal, member_id)
    settings = runtime.settings
    pending = binding.start(runtime.db, member_id, body.kind, body.value, sms=sms.from_settings(settings),
                            template=settings.sms_otp_template, actor=principal.name, store=scoped_store(principal))
    return VerificationOut(id=pending.id, kind=pending.kind, sent=pending.sent, expires=pending.expires)


@router.post("/{member_id}/bindings/{verification_id}", response_model=BoundOut,
             responses={404: {"model": Error}, 403: {"model": Error}, 409: {"model": Error}, 422: {"model": Error}})
def bind_confirm(member_id: str, verification_id: str, body: BindingCode, runtime: RuntimeDep,
                 principal: Counter) -> BoundOut:
    """The code from the phone: the channel's records join the person, with their points and spend."""
    person_for(runtime, principal, member_id)
    bound = binding.confirm(runtime.db, member_id, body.kind, verification_id, body.code, actor=principal.name)
    tags.refresh(runtime.db, [bound.person_id])
    tiers.recompute(runtime.db, bound.person_id)  # 12 months of spend now count every bound channel's orders
    return BoundOut(**asdict(bound))


@router.get("", response_model=Page[MemberRow])
def list_members(runtime: RuntimeDep, principal: Reader, paging: PagingDep,
                 lifecycle: Annotated[Lifecycle | None, Query()] = None) -> Page[MemberRow]:
    """Persons (not records), optionally of one lifecycle stage; a store manager sees their store's."""
    condition = Condition.of({"lifecycle": [lifecycle]}) if lifecycle else None
    store = scoped_store(principal)
    rows = page(runtime.db, condition, limit=paging.limit, offset=paging.offset, store=store)
    return Page(items=[MemberRow(**r) for r in rows], limit=paging.limit, offset=paging.offset,
                total=count(runtime.db, condition, store=store))


@router.get("/{member_id}", response_model=MemberOut, responses={404: {"model": Error}, 403: {"model": Error}})
def get_member(member_id: str, runtime: RuntimeDep, principal: Reader) -> MemberOut:
    person_for(runtime, principal, member_id)
    member = members.member(runtime.db, member_id)
    assert member is not None
    return MemberOut(
        id=member.id, name=member.name, phone=member.phone or "", gender=member.gender, tier=member.tier,
        tags=member.tags, preferences=member.categories,
        consent=Consent(face=member.face_consent), faces=enrolled.face_count(runtime.db, member.id),
        created=member.created,
    )


@router.get("/{member_id}/profile", responses={404: {"model": Error}, 403: {"model": Error}})
def get_profile(member_id: str, runtime: RuntimeDep, principal: Reader,
                explain: Annotated[bool, Query(description="each attribute's lineage: rule, record, source")] = False,
                ) -> dict:
    """The 360 view: identities, consent, stores, channels, orders, visits, computed stats and tags;
    name, gender, birthday, tier, points, tags, home store, phone and address by survivorship."""
    return profile.profile(runtime.db, person_for(runtime, principal, member_id), explain=explain)


@router.post(
    "/{member_id}/faces", status_code=status.HTTP_201_CREATED, response_model=FaceEnrolled,
    responses={
        404: {"model": Error}, 409: {"model": Error, "description": "no face consent"},
        413: {"model": Error, "description": "the file, or the pixels its header declares, over the limit"},
        422: {"model": Error, "description": "not a usable one-face photo"},
        429: {"model": Error, "description": "every photo decoder busy"},
    },
)
def enrol_face(
    member_id: str,
    image: Annotated[UploadFile, File(description="a photo with exactly one clear face")],
    runtime: RuntimeDep,
    principal: Counter,
) -> FaceEnrolled:
    if principal.role == "store_manager":
        person_for(runtime, principal, member_id)
    limit = runtime.settings.max_upload_bytes
    photo = image.file.read(limit + 1)
    if len(photo) > limit:
        raise api_error(status.HTTP_413_CONTENT_TOO_LARGE, "too_large", f"the photo exceeds {limit} bytes")
    enrolled = runtime.enroller.enrol(member_id, photo, max_pixels=runtime.settings.max_image_pixels)
    return FaceEnrolled(face_id=enrolled.face_id, det_score=enrolled.det_score, face_px=enrolled.face_px)


@router.put("/{member_id}/consent", response_model=Consent, responses={404: {"model": Error}})
def set_consent(member_id: str, body: ConsentChange, runtime: RuntimeDep, principal: Counter) -> Consent:
    person = person_for(runtime, principal, member_id)
    if members.set_face_consent(runtime.db, person, body.face, store=scoped_store(principal),
                                actor=principal.name) or not body.face:
        erasure.queue_consent_withdrawal(runtime.db, person)
        runtime.after_face_removal()
    return Consent(face=body.face)


@router.delete("/{member_id}", response_model=ErasureOut, responses={404: {"model": Error}})
def erase_member(member_id: str, runtime: RuntimeDep, principal: Admin) -> ErasureOut:
    """Erase the person: faces, identifiers and personal fields; orders stay as anonymous totals."""
    erased = runtime.erase(member_id, actor=principal.name)
    return ErasureOut(**asdict(erased))
