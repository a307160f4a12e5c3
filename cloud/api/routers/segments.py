"""Segments (圈人): ad-hoc counts and previews, saved segments, paged members, CSV export, A/B."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse

from cloud.api.deps import Admin, PagingDep, Reader, RuntimeDep, api_error, scoped_store
from cloud.api.schemas import CountOut, Error, MemberRow, Page, SegmentIn, SegmentOut, SegmentQuery
from cloud.cdp import segments

router = APIRouter(prefix="/segments", tags=["segments"])

Salt = Annotated[str | None, Query(max_length=64, description="A/B salt: the same salt gives the same groups")]
Split = Annotated[str, Query(pattern=r"^\d{1,3}(,\d{1,3}){1,7}$", description="group shares in %, e.g. 50,50")]


def _shares(split: str) -> list[int]:
    shares = [int(s) for s in split.split(",")]
    if sum(shares) != 100:
        raise api_error(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_split", "group shares must add up to 100")
    return shares


@router.post("/count", response_model=CountOut, responses={422: {"model": Error}})
def count_adhoc(body: SegmentQuery, runtime: RuntimeDep, principal: Reader) -> CountOut:
    """The instant count of a condition, without saving it."""
    condition = segments.Condition.parse(body.condition)
    return CountOut(count=segments.count(runtime.db, condition, as_of=body.as_of, store=scoped_store(principal)))


@router.post("/preview", response_model=Page[MemberRow], responses={422: {"model": Error}})
def preview(body: SegmentQuery, runtime: RuntimeDep, principal: Reader, paging: PagingDep) -> Page[MemberRow]:
    condition = segments.Condition.parse(body.condition)
    rows = segments.page(runtime.db, condition, limit=paging.limit, offset=paging.offset, as_of=body.as_of,
                         store=scoped_store(principal))
    return Page(items=[MemberRow(**r) for r in rows], limit=paging.limit, offset=paging.offset)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SegmentOut, responses={422: {"model": Error}})
def create(body: SegmentIn, runtime: RuntimeDep, principal: Admin) -> SegmentOut:
    condition = segments.Condition.parse(body.condition)
    return SegmentOut(**segments.save(runtime.db, body.name, condition, actor=principal.name))


@router.get("", response_model=Page[SegmentOut])
def list_segments(runtime: RuntimeDep, principal: Reader, paging: PagingDep) -> Page[SegmentOut]:
    rows, total = segments.listing(runtime.db, limit=paging.limit, offset=paging.offset)
    return Page(items=[SegmentOut(**r) for r in rows], limit=paging.limit, offset=paging.offset, total=total)


@router.get("/{segment_id}/count", response_model=CountOut, responses={404: {"model": Error}})
def count_saved(segment_id: str, runtime: RuntimeDep, principal: Reader, salt: Salt = None, split: Split = "50,50",
                as_of: datetime | None = None) -> CountOut:
    _, condition = segments.saved(runtime.db, segment_id)
    store = scoped_store(principal)
    total = segments.count(runtime.db, condition, as_of=as_of, store=store)
    groups = None
    if salt:
        groups = segments.split_counts(runtime.db, condition, salt=salt, split=_shares(split), as_of=as_of,
                                       store=store)
    return CountOut(count=total, groups=groups)


@router.get("/{segment_id}/members", response_model=Page[MemberRow], responses={404: {"model": Error}})
def members(segment_id: str, runtime: RuntimeDep, principal: Reader, paging: PagingDep,
            as_of: datetime | None = None) -> Page[MemberRow]:
    _, condition = segments.saved(runtime.db, segment_id)
    rows = segments.page(runtime.db, condition, limit=paging.limit, offset=paging.offset, as_of=as_of,
                         store=scoped_store(principal))
    return Page(items=[MemberRow(**r) for r in rows], limit=paging.limit, offset=paging.offset)


@router.get("/{segment_id}/export.csv", response_class=StreamingResponse, responses={404: {"model": Error}})
def export(segment_id: str, runtime: RuntimeDep, principal: Reader, salt: Salt = None, split: Split = "50,50",
           as_of: datetime | None = None) -> StreamingResponse:
    """Every member of the segment as CSV, with an A/B ``variant`` column when a salt is given."""
    row, condition = segments.saved(runtime.db, segment_id)
    chunks = segments.export_csv(runtime.db, condition, as_of=as_of, store=scoped_store(principal), salt=salt,
                                 split=_shares(split))
    return StreamingResponse(chunks, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="segment-{row["id"]}.csv"'})
