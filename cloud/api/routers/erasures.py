"""Erasure receipts: what an erasure cleared in the cloud, and every edge box and guide screen told."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.api.deps import Admin, RuntimeDep
from cloud.api.schemas import Error
from cloud.cdp import erasure

router = APIRouter(prefix="/erasures", tags=["members"])


@router.get("/{erasure_id}", responses={404: {"model": Error}})
def get_erasure(erasure_id: str, runtime: RuntimeDep, principal: Admin) -> dict:
    """Every place that could name the person (cloud tables, each box and screen) and whether it
    acknowledged; ``complete`` once every device has."""
    return erasure.receipt(runtime.db, erasure_id)
