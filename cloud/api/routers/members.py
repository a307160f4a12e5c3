"""Members: sign up, list, read, the 360 profile, face enrolment, consent and erasure.

Enrolment is the only way a face enters the gallery, so it is where consent is enforced: a
member without face consent is refused before the photo is even decoded. Withdrawing consent
deletes the person's faces and tells every edge box to forget them, like an erasure does.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, UploadFile, status

from cloud.api.deps import Admin, Counter, PagingDep, Reader, RuntimeDep, api_error, person_for, scoped_store
from cloud.api.schemas import (
    Consent,
    ConsentChange,
    ErasureOut,
    Error,
    FaceEnrolled,
    MemberCreate,
    MemberCreated,
    MemberOut,
    MemberRow,
    Page,
)
from cloud.cdp import erasure, lifecycle, members, profile, tags
from cloud.cdp.segments import Condition, count, page
from cloud.faces import enrolled

router = APIRouter(prefix="/members", tags=["members"])

Lifecycle = Literal[lifecycle.LIFECYCLE_STAGES]  # type: ignore[valid-type]
_ENROL_STATUS = {"unknown_member": status.HTTP_404_NOT_FOUND, "no_consent": status.HTTP_409_CONFLICT}


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=MemberCreated,
    responses={409: {"model": Error, "description": "the phone belongs to another member"}},
)
def create_member(body: MemberCreate, runtime: RuntimeDep, principal: Counter) -> MemberCreated:
    member = members.add_member(runtime.db, 
        name=body.name, phone=body.phone, gender=body.gender, tier=body.tier, tags=body.tags,
        categories=body.preferences, face_consent=body.consent.face, store=scoped_store(principal),
    )
    if body.tags:
        tags.refresh(runtime.db, [member.id])
    return MemberCreated(id=member.id)


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
def get_profile(member_id: str, runtime: RuntimeDep, principal: Reader) -> dict:
    """The 360 view: identities, consent, stores, channels, orders, visits, computed stats and tags."""
    return profile.profile(runtime.db, person_for(runtime, principal, member_id))


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
    if members.set_face_consent(runtime.db, person, body.face) or not body.face:
        erasure.queue_consent_withdrawal(runtime.db, person)
        runtime.after_face_removal()
    return Consent(face=body.face)


@router.delete("/{member_id}", response_model=ErasureOut, responses={404: {"model": Error}})
def erase_member(member_id: str, runtime: RuntimeDep, principal: Admin) -> ErasureOut:
    """Erase the person: faces, identifiers and personal fields; orders stay as anonymous totals."""
    erased = runtime.erase(member_id, actor=principal.name)
    return ErasureOut(**asdict(erased))
