"""Segments (圈人): ad-hoc counts and previews, saved segments, paged members, CSV export, A/B."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from cloud.api.deps import Admin, PagingDep, Reader, RuntimeDep, api_error, scoped_store
from cloud.api.schemas import CountOut, Error, MemberRow, Page, SegmentIn, SegmentOut, SegmentQuery
from cloud.cdp import dimensions, segments

router = APIRouter(prefix="/segments", tags=["segments"])

Salt = Annotated[str | None, Query(max_length=64, description="A/B salt: the same salt gives the same groups")]
Split = Annotated[str, Query(pattern=r"^\d{1,3}(,\d{1,3}){1,7}$", description="group shares in %, e.g. 50,50")]


def _shares(split: str) -> list[int]:
    shares = [int(s) for s in split.split(",")]
    if sum(shares) != 100:
        raise api_error(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_split", "group shares must add up to 100")
    return shares


class DimensionOut(BaseModel):
    name: str
    group: str = Field(description="attribute | value | purchase | store")
    type: str = Field(description="enum | text | number | date | bool")
    label: str = Field(description="the name HQ's picker shows (Chinese)")
    description: str
    operators: list[str]
    scope: str | None = Field(description="what the node's scope names: channel, store, category, sku or tag")
    window: str | None = Field(description="days: the last N days; between: from and to (local dates)")
    values: list[str] | None = Field(description="the allowed values of an enum")
    example: dict[str, Any] = Field(description="a condition node using the dimension")


class DimensionsOut(BaseModel):
    count: int
    items: list[DimensionOut]


class FacetValue(BaseModel):
    value: str
    segment: int
    base: int
    segment_share: float
    base_share: float
    index: float | None = Field(description="segment share / base share x 100 (TGI); null when the base has none")


class PortraitOut(BaseModel):
    segment: int = Field(description="persons in the segment")
    base: int = Field(description="persons in the whole base (a store manager's: their store's)")
    facets: dict[str, list[FacetValue]] = Field(
        description="city_tier, age_band, gender, channel (favourite), tier, lifecycle")
    base_as_of: datetime | None = Field(
        default=None, description="when the nightly tag batch counted the base's facets; null: counted now "
                                  "(before the first batch, or a store manager's base)")


@router.get("/dimensions", response_model=DimensionsOut)
def dimension_catalogue(principal: Reader) -> DimensionsOut:
    """Every dimension a ``dim`` condition node can name: name, type, operators, example."""
    items = [DimensionOut(**d) for d in dimensions.catalogue()]
    return DimensionsOut(count=len(items), items=items)


@router.post("/portrait", response_model=PortraitOut, responses={422: {"model": Error}})
def portrait_adhoc(body: SegmentQuery, runtime: RuntimeDep, principal: Reader) -> PortraitOut:
    """人群画像 of a condition without saving it."""
    condition = segments.Condition.parse(body.condition)
    return PortraitOut(**segments.portrait(runtime.db, condition, as_of=body.as_of, store=scoped_store(principal)))


@router.get("/{segment_id}/portrait", response_model=PortraitOut, responses={404: {"model": Error}})
def portrait_saved(segment_id: str, runtime: RuntimeDep, principal: Reader,
                   as_of: datetime | None = None) -> PortraitOut:
    """人群画像: the segment against the whole base by city tier, age band, gender, channel, tier, lifecycle."""
    _, condition = segments.saved(runtime.db, segment_id)
    return PortraitOut(**segments.portrait(runtime.db, condition, as_of=as_of, store=scoped_store(principal)))


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
