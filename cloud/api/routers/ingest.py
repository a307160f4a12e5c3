"""The ingest worker's counters, to see whether stores' arrivals flow and why any are rejected."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from cloud.api.deps import HqReader, RuntimeDep
from cloud.api.schemas import IngestStats
from cloud.arrivals.ingest import IngestCounts

router = APIRouter(prefix="/ingest", tags=["ingest"])


@router.get("/stats", response_model=IngestStats)
def stats(runtime: RuntimeDep, principal: HqReader) -> IngestStats:
    worker = runtime.ingest
    if worker is None:
        return IngestStats(enabled=False, connected=False, backlog=0, **asdict(IngestCounts()))
    return IngestStats(enabled=True, connected=worker.connected, backlog=worker.backlog(), **asdict(worker.counts()))
