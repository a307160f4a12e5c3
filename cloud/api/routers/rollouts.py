"""Staged model-pack rollouts (HQ): start one on canary stores, watch it, judge it, promote or roll back."""

from __future__ import annotations

from fastapi import APIRouter, status

from cloud.api.deps import Admin, HqReader, RuntimeDep
from cloud.api.openapi_errors import error_responses
from cloud.api.rollout_schemas import ReasonIn, RolloutIn, RolloutOut
from cloud.api.schemas import Error
from cloud.fleet.rollout import service
from cloud.runtime import Runtime

router = APIRouter(prefix="/rollouts", tags=["rollouts"])
_ERRORS = error_responses(403, 404, 409, 422)


def _flushed(runtime: Runtime, rollout: dict) -> RolloutOut:
    """Commands the step queued go out now rather than at the next upkeep tick."""
    runtime.send_commands()
    return RolloutOut(**rollout)


def _call(step, *args, **kwargs) -> dict:
    return step(*args, **kwargs)


@router.post("", response_model=RolloutOut, status_code=status.HTTP_201_CREATED, responses=_ERRORS)
def create(body: RolloutIn, runtime: RuntimeDep, principal: Admin) -> RolloutOut:
    """Re-embed the gallery for the pack's embedding space, then send the pack to the canary stores' edge
    boxes; the first box that switches starts the canary window. ``gallery`` says who was carried over."""
    return _flushed(runtime, runtime.start_rollout(
        brand=body.brand, pack_id=body.pack_id, canary_stores=body.canary_stores, actor=principal.name,
        signed_manifest=body.signed_manifest, baseline_s=int(body.baseline_hours * 3600),
        observe_s=int(body.observe_hours * 3600), tolerances=body.tolerances))


@router.get("", response_model=list[RolloutOut], responses={403: {"model": Error}})
def list_rollouts(runtime: RuntimeDep, principal: HqReader) -> list[RolloutOut]:
    return [RolloutOut(**r) for r in service.listing(runtime.db)]


@router.get("/{rollout_id}", response_model=RolloutOut, responses=_ERRORS)
def get_rollout(rollout_id: str, runtime: RuntimeDep, principal: HqReader) -> RolloutOut:
    return RolloutOut(**_call(service.get, runtime.db, rollout_id))


@router.post("/{rollout_id}/evaluate", response_model=RolloutOut, responses=_ERRORS)
def evaluate(rollout_id: str, runtime: RuntimeDep, principal: Admin) -> RolloutOut:
    """Judge now, without waiting for the observation window; a conclusive verdict is acted on."""
    return _flushed(runtime, _call(service.evaluate, runtime.db, rollout_id, force=True))


@router.post("/{rollout_id}/promote", response_model=RolloutOut, responses=_ERRORS)
def promote(rollout_id: str, body: ReasonIn, runtime: RuntimeDep, principal: Admin) -> RolloutOut:
    return _flushed(runtime, _call(service.promote, runtime.db, rollout_id, actor=principal.name,
                                   reason=body.reason))


@router.post("/{rollout_id}/rollback", response_model=RolloutOut, responses=_ERRORS)
def rollback(rollout_id: str, body: ReasonIn, runtime: RuntimeDep, principal: Admin) -> RolloutOut:
    return _flushed(runtime, _call(service.rollback, runtime.db, rollout_id, actor=principal.name,
                                   reason=body.reason))
