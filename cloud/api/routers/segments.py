"""Segments (圈人): ad-hoc counts and previews, saved segments, paged members, CSV export, A/B."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse

from cloud.api.deps import Admin, PagingDep, Reader, RuntimeDep, api_error, scoped_store
from cloud.api.schemas import CountOut, Error, MemberRow, Page, SegmentIn, SegmentOut, SegmentQuery
from cloud.cdp import segments
from cloud.clock import iso, utcnow
from protocol.messages import new_id

router = APIRouter(prefix="/segments", tags=["segments"])

Salt = Annotated[str | None, Query(max_length=64, description="A/B salt: the same salt gives the same groups")]
Split = Annotated[str, Query(pattern=r"^\d{1,3}(,\d{1,3}){1,7}$", description="group shares in %, e.g. 50,50")]


def _shares(split: str) -> list[int]:
    shares = [int(s) for s in split.split(",")]
    if sum(shares) != 100:
        raise api_error(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_split", "group shares must add up to 100")
    return shares


def _saved(runtime, segment_id: str) -> tuple[dict, segments.Condition]:  # noqa: ANN001
    row = runtime.db.one("SELECT * FROM segments WHERE id = ?", (segment_id,))
    if row is None:
        raise api_error(status.HTTP_404_NOT_FOUND, "unknown_segment", f"no segment {segment_id}")
    return row, segments.Condition.model_validate_json(row["condition"])


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
    segment = SegmentOut(id=new_id(), name=body.name, condition=condition.dump(), created=utcnow(),
                         created_by=principal.name)
    runtime.db.execute(
        "INSERT INTO segments (id, name, condition, created, created_by) VALUES (?, ?, ?, ?, ?)",
        (segment.id, segment.name, json.dumps(segment.condition, ensure_ascii=False), iso(segment.created),
         segment.created_by))
    return segment


@router.get("", response_model=Page[SegmentOut])
def list_segments(runtime: RuntimeDep, principal: Reader, paging: PagingDep) -> Page[SegmentOut]:
    rows = runtime.db.query("SELECT * FROM segments ORDER BY created DESC, id LIMIT ? OFFSET ?",
                                  (paging.limit, paging.offset))
    return Page(items=[SegmentOut(**{**r, "condition": json.loads(r["condition"])}) for r in rows],
                limit=paging.limit, offset=paging.offset,
                total=runtime.db.scalar("SELECT COUNT(*) FROM segments"))


@router.get("/{segment_id}/count", response_model=CountOut, responses={404: {"model": Error}})
def count_saved(segment_id: str, runtime: RuntimeDep, principal: Reader, salt: Salt = None, split: Split = "50,50",
                as_of: datetime | None = None) -> CountOut:
    _, condition = _saved(runtime, segment_id)
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
    _, condition = _saved(runtime, segment_id)
    rows = segments.page(runtime.db, condition, limit=paging.limit, offset=paging.offset, as_of=as_of,
                         store=scoped_store(principal))
    return Page(items=[MemberRow(**r) for r in rows], limit=paging.limit, offset=paging.offset)


@router.get("/{segment_id}/export.csv", response_class=StreamingResponse, responses={404: {"model": Error}})
def export(segment_id: str, runtime: RuntimeDep, principal: Reader, salt: Salt = None, split: Split = "50,50",
           as_of: datetime | None = None) -> StreamingResponse:
    """Every member of the segment as CSV, with an A/B ``variant`` column when a salt is given."""
    row, condition = _saved(runtime, segment_id)
    chunks = segments.export_csv(runtime.db, condition, as_of=as_of, store=scoped_store(principal), salt=salt,
                                 split=_shares(split))
    return StreamingResponse(chunks, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="segment-{row["id"]}.csv"'})
