"""Liveness for load balancers and the demo launcher: open and cheap, but it tells a stranger nothing.

Without a valid key the answer is ``{"status": "ok"}`` and nothing else (no face count, no pack,
no ingest state: what a stranger could learn about the deployment). With a key it tells the rest.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from cloud.api.auth import authenticate
from cloud.api.deps import RuntimeDep, _api_key_header
from cloud.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, response_model_exclude_none=True)
def healthz(request: Request, runtime: RuntimeDep,
            given: Annotated[str | None, Depends(_api_key_header)] = None) -> Health:
    settings = runtime.settings
    # a key sent here was checked (and a wrong one counted against the address) by the guard
    principal = request.scope.get("state", {}).get("principal")
    if principal is None and given is None:
        principal = authenticate(runtime.db, settings.api_key, None, open_mode=settings.dev_open_mode)
    if principal is None:
        return Health(status="ok")
    ingest = runtime.ingest
    state = "off" if ingest is None else "connected" if ingest.connected else "disconnected"
    return Health(status="ok", pack=settings.pack_id, faces=len(runtime.index), ingest=state)
