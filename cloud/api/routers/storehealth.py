"""Store health: the ranking of every store, one store's scores explained, the weights, and a
store manager's dashboard. A store manager reads their own store only (403 for any other; the
ranking lists their row alone); HQ reads every store; only hq_admin changes the weights."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime

from cloud.api.auth import Principal
from cloud.api.deps import Admin, Reader, RuntimeDep, api_error, check_store, scoped_store, valid_store
from cloud.api.health_schemas import HealthRanking, HealthWeights, StaffOnFloor, StoreDashboard, StoreHealth
from cloud.api.schemas import Error
from cloud.arrivals import staff
from cloud.clock import utcnow
from cloud.health import dashboard, model, views
from protocol import codec

router = APIRouter(tags=["store health"])

Day = Annotated[date | None, Query(description="local day YYYY-MM-DD; default: the latest day with scores (today for dashboards)")]


@router.get("/health/stores", response_model=HealthRanking)
def ranking(runtime: RuntimeDep, principal: Reader, day: Day = None) -> dict:
    return views.ranking(runtime.db, day, only_store=scoped_store(principal))


@router.get("/health/stores/{store}", response_model=StoreHealth, responses={403: {"model": Error}, 404: {"model": Error}})
def store_health(store: str, runtime: RuntimeDep, principal: Reader, day: Day = None) -> dict:
    _may_read(principal, store)
    return _found(views.store_detail(runtime.db, store, day), store)


@router.get("/health/weights", response_model=HealthWeights)
def get_weights(runtime: RuntimeDep, principal: Reader) -> dict:
    return model.load_weights(runtime.db)


@router.put("/health/weights", response_model=HealthWeights, responses={422: {"model": Error}})
def put_weights(body: HealthWeights, runtime: RuntimeDep, principal: Admin) -> dict:
    return model.save_weights(runtime.db, body.model_dump(exclude_none=True))


@router.get("/stores/{store}/dashboard", response_model=StoreDashboard,
            responses={403: {"model": Error}, 404: {"model": Error}})
def store_dashboard(store: str, runtime: RuntimeDep, principal: Reader, day: Day = None) -> dict:
    _may_read(principal, store)
    return _found(dashboard.store_dashboard(runtime.db, store, day), store)


@router.get("/stores/{store}/staff", response_model=StaffOnFloor,
            responses={403: {"model": Error}, 404: {"model": Error}})
def staff_on_floor(store: str, runtime: RuntimeDep, principal: Reader,
                   at: Annotated[AwareDatetime | None, Query(description="with its UTC offset; default: now")] = None) -> dict:
    """Who is signed in (上岗) on the store's guide screens at ``at``."""
    _may_read(principal, store)
    moment = at or utcnow()
    if not codec.plausible(moment):
        raise api_error(status.HTTP_422_UNPROCESSABLE_CONTENT, "implausible_time",
                        f"at must fall in {codec.EARLIEST.year}-{codec.LATEST.year - 1}")
    signed_in = staff.on_floor(runtime.db, store, moment)
    if signed_in is None:
        _found(None, store)
    return {"store": store, "at": moment, "signed_in": signed_in}


def _may_read(principal: Principal, store: str) -> None:
    valid_store(store)
    check_store(principal, store)


def _found(body: dict | None, store: str) -> dict:
    if body is None:
        raise api_error(status.HTTP_404_NOT_FOUND, "unknown_store", f"no store {store}")
    return body
