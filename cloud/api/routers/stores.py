"""Stores of the brand, and who is asking about which."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from cloud.api.deps import Admin, PagingDep, Reader, RuntimeDep, check_store, scoped_store, valid_store
from cloud.api.schemas import Error, FeedbackOut, Page, StoreIn, StoreOut
from cloud.arrivals import feedback
from cloud.health import stores

router = APIRouter(prefix="/stores", tags=["stores"])


@router.get("", response_model=Page[StoreOut])
def list_stores(runtime: RuntimeDep, principal: Reader, paging: PagingDep) -> Page[StoreOut]:
    rows = stores.listing(runtime.db, only=scoped_store(principal), limit=paging.limit, offset=paging.offset)
    return Page(items=[StoreOut(**r) for r in rows], limit=paging.limit, offset=paging.offset)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=StoreOut, responses={409: {"model": Error}})
def create_store(body: StoreIn, runtime: RuntimeDep, principal: Admin) -> StoreOut:
    valid_store(body.id)
    return StoreOut(**stores.add(runtime.db, **body.model_dump()))


@router.get("/{store}/feedback", response_model=Page[FeedbackOut])
def list_feedback(
    store: str, runtime: RuntimeDep, principal: Reader, paging: PagingDep,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
) -> Page[FeedbackOut]:
    """What the store's assistants did with the cards, newest first."""
    valid_store(store)
    check_store(principal, store)
    rows = feedback.listing(runtime.db, store, start, end, limit=paging.limit, offset=paging.offset)
    return Page(items=[FeedbackOut(**r) for r in rows], limit=paging.limit, offset=paging.offset)
