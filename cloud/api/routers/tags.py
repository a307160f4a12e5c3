"""Tags: what exists and how many carry it, HQ's rule tags, and the batch refresh."""

from __future__ import annotations

from fastapi import APIRouter, status

from cloud.api.deps import Admin, HqReader, PagingDep, RuntimeDep
from cloud.api.schemas import Error, Page, TagCount, TagRuleIn
from cloud.cdp import lifecycle, segments, tags

router = APIRouter(prefix="/tags", tags=["tags"])


@router.get("", response_model=Page[TagCount])
def list_tags(runtime: RuntimeDep, principal: HqReader, paging: PagingDep) -> Page[TagCount]:
    rows = tags.counts(runtime.db, limit=paging.limit, offset=paging.offset)
    return Page(items=[TagCount(**r) for r in rows], limit=paging.limit, offset=paging.offset)


@router.get("/rules", response_model=list[TagRuleIn])
def list_rules(runtime: RuntimeDep, principal: HqReader) -> list[TagRuleIn]:
    return [TagRuleIn(**r) for r in tags.rules(runtime.db)]


@router.put("/rules", response_model=TagRuleIn, responses={422: {"model": Error}})
def put_rule(body: TagRuleIn, runtime: RuntimeDep, principal: Admin) -> TagRuleIn:
    """Define (or redefine) a rule tag as a segment condition; applied to everyone now. ``display``
    puts it on the guide card (higher ``priority`` first)."""
    condition = segments.Condition.parse(body.condition)
    tags.set_rule(runtime.db, body.name, body.value, condition, display=body.display, priority=body.priority)
    tags.refresh(runtime.db)
    return TagRuleIn(name=body.name, value=body.value, condition=condition.dump(), display=body.display,
                     priority=body.priority)


@router.post("/refresh", status_code=status.HTTP_200_OK)
def refresh(runtime: RuntimeDep, principal: Admin) -> dict[str, int]:
    """The nightly batch, on demand: every person's stats, RFM cut points, lifecycle and tags."""
    return {"persons": tags.refresh(runtime.db)}


@router.get("/windows", response_model=lifecycle.Windows)
def get_windows(runtime: RuntimeDep, principal: HqReader) -> lifecycle.Windows:
    """The lifecycle windows (days) and price bands (yuan per unit) tags are computed with."""
    return lifecycle.windows(runtime.db)


@router.put("/windows", response_model=lifecycle.Windows)
def put_windows(body: lifecycle.Windows, runtime: RuntimeDep, principal: Admin) -> lifecycle.Windows:
    """Change the windows and recompute everyone's lifecycle now."""
    lifecycle.set_windows(runtime.db, body)
    tags.refresh(runtime.db)
    return body
