"""The brand's real-time sales big-screen: HQ roles only (it shows every store and channel)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api.deps import HqReader, RuntimeDep
from cloud.api.health_schemas import BrandLive
from cloud.health import live

router = APIRouter(tags=["store health"])


@router.get("/brand/live", response_model=BrandLive)
def brand_live(runtime: RuntimeDep, principal: HqReader,
               day: Annotated[date | None, Query(description="local day YYYY-MM-DD; default today")] = None) -> dict:
    return live.brand_live(runtime.db, day)
