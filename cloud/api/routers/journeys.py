"""Lifecycle journeys (issue 20 item 4): create one (trigger, steps, exits, holdout), launch, pause,
see where its entries are and what it did against its control group. The work is
``cloud.activation.journeys``; its send steps are campaigns, sent by the campaign sender."""

from __future__ import annotations

from fastapi import APIRouter, Query

from cloud.activation import journeys
from cloud.api.deps import Admin, HqReader, RuntimeDep
from cloud.api.schemas import Error

router = APIRouter(prefix="/journeys", tags=["campaigns"])


@router.post("", status_code=201, responses={404: {"model": Error}, 422: {"model": Error}})
def create_journey(body: journeys.JourneySpec, runtime: RuntimeDep, principal: Admin) -> dict:
    """Steps: ``{"send": "sms", "template_id": ...}``, ``{"wait_hours": 72}``, ``{"branch": "reached" |
    "delivered" | "purchased", "yes": <step>, "no": <step>}``; ``"send": "coupon"`` issues an e-coupon."""
    return journeys.create(runtime.db, body, actor=principal.name)


@router.get("")
def list_journeys(runtime: RuntimeDep, principal: HqReader) -> list[dict]:
    return journeys.listing(runtime.db)


@router.get("/{journey_id}", responses={404: {"model": Error}})
def get_journey(journey_id: str, runtime: RuntimeDep, principal: HqReader) -> dict:
    return journeys.get(runtime.db, journey_id)


@router.post("/{journey_id}/launch", responses={404: {"model": Error}, 409: {"model": Error}})
def launch_journey(journey_id: str, runtime: RuntimeDep, principal: Admin) -> dict:
    """Start (or resume) it: triggers are evaluated from the scheduler's next ``journeys`` tick."""
    return journeys.launch(runtime.db, journey_id)


@router.post("/{journey_id}/pause", responses={404: {"model": Error}, 409: {"model": Error}})
def pause_journey(journey_id: str, runtime: RuntimeDep, principal: Admin) -> dict:
    return journeys.pause(runtime.db, journey_id)


@router.get("/{journey_id}/entries", responses={404: {"model": Error}})
def journey_entries(journey_id: str, runtime: RuntimeDep, principal: HqReader,
                    limit: int = Query(100, ge=1, le=1000)) -> list[dict]:
    """The latest entries: group, step, status, why it ended, and each step's log."""
    return journeys.entries(runtime.db, journey_id, limit=limit)


@router.get("/{journey_id}/results", responses={404: {"model": Error}})
def journey_results(journey_id: str, runtime: RuntimeDep, principal: HqReader) -> dict:
    """Treatment against control within the window after each entry: conversion, revenue per head,
    the uplift with a 95% confidence interval."""
    return journeys.results(runtime.db, journey_id)
