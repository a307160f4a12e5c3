"""Store health alerts for HQ and store managers: listed newest first, acknowledged by a person.

HQ roles see every store's alerts; a store manager only their store's (a list is filtered, a
``store=`` or an ack of another store's alert is 403). Acknowledging needs hq_admin or the store's
manager: an analyst only reads, and a device key reads nothing here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api.alert_schemas import AckIn, DeliveryOut, NoteIn, NoteOut, OwnerIn, OwnerOut, StatusFilter
from cloud.api.deps import Admin, Counter, HqReader, Reader, RuntimeDep, check_store, scoped_store, valid_store
from cloud.api.schemas import Error
from cloud.health import alerts, notify
from cloud.health.alerts import Alert

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("/owners", response_model=list[OwnerOut])
def list_owners(runtime: RuntimeDep, principal: HqReader) -> list[dict]:
    return notify.owners(runtime.db)


@router.post("/owners", response_model=OwnerOut, status_code=201, responses={422: {"model": Error}})
def add_owner(body: OwnerIn, runtime: RuntimeDep, principal: Admin) -> dict:
    return notify.add_owner(runtime.db, **body.model_dump())


@router.put("/owners/{owner_id}", response_model=OwnerOut, responses={404: {"model": Error}, 422: {"model": Error}})
def update_owner(owner_id: int, body: OwnerIn, runtime: RuntimeDep, principal: Admin) -> dict:
    return notify.update_owner(runtime.db, owner_id, **body.model_dump())


@router.delete("/owners/{owner_id}", status_code=204, responses={404: {"model": Error}})
def remove_owner(owner_id: int, runtime: RuntimeDep, principal: Admin) -> None:
    notify.remove_owner(runtime.db, owner_id)


@router.get("", response_model=list[Alert])
def list_alerts(
    runtime: RuntimeDep, principal: Reader,
    store: Annotated[str | None, Query(description="one store; a store manager's own by default")] = None,
    state: Annotated[StatusFilter, Query(alias="status")] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Alert]:
    if store is not None:
        valid_store(store)
        check_store(principal, store)
    store = store or scoped_store(principal)
    return alerts.listing(runtime.db, store=store, status=None if state == "all" else state, limit=limit)


@router.post("/{alert_id}/ack", response_model=Alert,
             responses={403: {"model": Error}, 404: {"model": Error}, 409: {"model": Error}})
def ack_alert(alert_id: str, body: AckIn, runtime: RuntimeDep, principal: Counter) -> Alert:
    db = runtime.db
    check_store(principal, alerts.get(db, alert_id).store)
    return alerts.ack(db, alert_id, actor=principal.name, note=body.note)


@router.get("/{alert_id}/notes", response_model=list[NoteOut], responses={403: {"model": Error}, 404: {"model": Error}})
def list_notes(alert_id: str, runtime: RuntimeDep, principal: Reader) -> list[dict]:
    check_store(principal, alerts.get(runtime.db, alert_id).store)
    return alerts.notes(runtime.db, alert_id)


@router.post("/{alert_id}/notes", response_model=list[NoteOut], status_code=201,
             responses={403: {"model": Error}, 404: {"model": Error}})
def add_note(alert_id: str, body: NoteIn, runtime: RuntimeDep, principal: Counter) -> list[dict]:
    check_store(principal, alerts.get(runtime.db, alert_id).store)
    return alerts.add_note(runtime.db, alert_id, actor=principal.name, note=body.note)


@router.get("/{alert_id}/deliveries", response_model=list[DeliveryOut],
            responses={403: {"model": Error}, 404: {"model": Error}})
def list_deliveries(alert_id: str, runtime: RuntimeDep, principal: Reader) -> list[dict]:
    check_store(principal, alerts.get(runtime.db, alert_id).store)
    return notify.deliveries(runtime.db, alert_id)
