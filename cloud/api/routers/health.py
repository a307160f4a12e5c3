"""Liveness for load balancers and the demo launcher: open, cheap, no secrets."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.api.deps import RuntimeDep
from cloud.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(runtime: RuntimeDep) -> Health:
    ingest = runtime.ingest
    state = "off" if ingest is None else "connected" if ingest.connected else "disconnected"
    return Health(status="ok", pack=runtime.settings.pack_id, faces=len(runtime.index), ingest=state)
