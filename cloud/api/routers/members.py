"""Members: create, read, and enrol a face photo.

Enrolment is the only way a face enters the gallery, so it is where consent is enforced: a
member without face consent is refused before the photo is even decoded.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile, status

from cloud.api.deps import RuntimeDep, api_error
from cloud.api.schemas import Consent, Error, FaceEnrolled, MemberCreate, MemberCreated, MemberOut
from cloud.enrol import EnrolError
from cloud.store import PhoneTaken

router = APIRouter(prefix="/members", tags=["members"])

_ENROL_STATUS = {"unknown_member": status.HTTP_404_NOT_FOUND, "no_consent": status.HTTP_409_CONFLICT}


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=MemberCreated,
    responses={409: {"model": Error, "description": "the phone belongs to another member"}},
)
def create_member(body: MemberCreate, runtime: RuntimeDep) -> MemberCreated:
    try:
        member = runtime.store.add_member(
            name=body.name, phone=body.phone, gender=body.gender, tier=body.tier, tags=body.tags,
            categories=body.preferences, face_consent=body.consent.face,
        )
    except PhoneTaken as exc:
        raise api_error(status.HTTP_409_CONFLICT, "phone_taken", str(exc)) from None
    return MemberCreated(id=member.id)


@router.get("/{member_id}", response_model=MemberOut, responses={404: {"model": Error}})
def get_member(member_id: str, runtime: RuntimeDep) -> MemberOut:
    member = runtime.store.member(member_id)
    if member is None:
        raise api_error(status.HTTP_404_NOT_FOUND, "unknown_member", f"no member {member_id}")
    return MemberOut(
        id=member.id, name=member.name, phone=member.phone, gender=member.gender, tier=member.tier,
        tags=member.tags, preferences=member.categories,
        consent=Consent(face=member.face_consent), faces=runtime.store.face_count(member.id),
        created=member.created,
    )


@router.post(
    "/{member_id}/faces", status_code=status.HTTP_201_CREATED, response_model=FaceEnrolled,
    responses={
        404: {"model": Error}, 409: {"model": Error, "description": "no face consent"},
        413: {"model": Error}, 422: {"model": Error, "description": "not a usable one-face photo"},
    },
)
def enrol_face(
    member_id: str,
    image: Annotated[UploadFile, File(description="a photo with exactly one clear face")],
    runtime: RuntimeDep,
) -> FaceEnrolled:
    limit = runtime.settings.max_upload_bytes
    photo = image.file.read(limit + 1)
    if len(photo) > limit:
        raise api_error(status.HTTP_413_CONTENT_TOO_LARGE, "too_large", f"the photo exceeds {limit} bytes")
    try:
        enrolled = runtime.enroller.enrol(member_id, photo)
    except EnrolError as exc:
        code = _ENROL_STATUS.get(exc.code, status.HTTP_422_UNPROCESSABLE_CONTENT)
        raise api_error(code, exc.code, exc.message) from None
    return FaceEnrolled(face_id=enrolled.face_id, det_score=enrolled.det_score, face_px=enrolled.face_px)
