"""A store's visits, newest first: what the door saw and which card each arrival produced."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from cloud.api.deps import Reader, RuntimeDep, check_store, valid_store
from cloud.api.schemas import VisitOut
from cloud.arrivals import visits

router = APIRouter(prefix="/stores", tags=["visits"])


@router.get("/{store}/visits", response_model=list[VisitOut])
def list_visits(
    store: Annotated[str, Path(description="store id, as in the MQTT topics")],
    runtime: RuntimeDep,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[VisitOut]:
    valid_store(store)
    check_store(principal, store)
    return [
        VisitOut(
            visit_id=v.id, member_id=v.member_id, confidence=v.confidence, ts=v.ts, device=v.device,
            camera=v.camera, arrival_event_id=v.arrival_event_id, card_id=v.card_id or None, signals=v.signals,
            left_ts=v.left_ts, dwell_s=v.dwell_s, arrivals=list(v.arrivals), phone=v.phone,
            fused_confidence=v.fused_confidence, fusion=v.fusion,
        )
        for v in visits.visits(runtime.db, store, limit=limit, offset=offset)
    ]
