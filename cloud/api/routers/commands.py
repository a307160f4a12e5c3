"""What the cloud asked an edge box to do (erase, pack) and what the box answered."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.api.deps import Reader, RuntimeDep, check_store, valid_store
from cloud.api.rollout_schemas import CommandOut
from cloud.api.schemas import Error
from cloud.fleet import commands

router = APIRouter(tags=["devices"])


@router.get("/stores/{store}/devices/{device}/commands", response_model=list[CommandOut],
            responses={403: {"model": Error}, 422: {"model": Error}})
def device_commands(store: str, device: str, runtime: RuntimeDep, principal: Reader,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[CommandOut]:
    """The device's latest commands, newest first: pending (never sent), sent (awaiting its ack,
    re-sent with back-off), done, refused (the box said why), expired."""
    check_store(principal, valid_store(store))
    return [CommandOut(**row) for row in commands.of_device(runtime.db, None, store, device, limit=limit)]
