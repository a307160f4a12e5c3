"""A store's visits, newest first: what the door saw and which card each arrival produced."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from cloud.api.deps import RuntimeDep, api_error
from cloud.api.schemas import VisitOut
from protocol.topics import TopicError, check_id

router = APIRouter(prefix="/stores", tags=["visits"])


@router.get("/{store}/visits", response_model=list[VisitOut])
def list_visits(
    store: Annotated[str, Path(description="store id, as in the MQTT topics")],
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[VisitOut]:
    try:
        check_id("store", store)
    except TopicError as exc:
        raise api_error(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid_store", str(exc)) from None
    return [
        VisitOut(
            visit_id=v.id, member_id=v.member_id, confidence=v.confidence, ts=v.ts, device=v.device,
            camera=v.camera, arrival_event_id=v.arrival_event_id, card_id=v.card_id,
        )
        for v in runtime.store.visits(store, limit=limit, offset=offset)
    ]
