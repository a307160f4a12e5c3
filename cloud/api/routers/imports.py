"""Bulk import of channel exports, and their quarantine."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile, status

from cloud.api.deps import Admin, HqReader, PagingDep, RowId, RuntimeDep, api_error
from cloud.api.schemas import Error, Page
from cloud.cdp.imports import history
from cloud.cdp.imports.canonical import Channel
from cloud.cdp.imports.cleaning import QuarantineReason
from cloud.cdp.imports.importer import import_file
from cloud.masterdata.importer import MasterReason

router = APIRouter(prefix="/imports", tags=["imports"])

#: A channel export is text; larger files go through ``instore cloud import`` on the server.
MAX_IMPORT_BYTES = 200 * 1024 * 1024


@router.post("", status_code=status.HTTP_201_CREATED, responses={413: {"model": Error}, 422: {"model": Error}})
def upload(channel: Annotated[Channel, Query()], file: Annotated[UploadFile, File()], runtime: RuntimeDep,
           principal: Admin, items: Annotated[UploadFile | None, File()] = None,
           store: Annotated[str | None, Query(description="the store of a POS export that names none")] = None) -> dict:
    """Import one export file as the channel wrote it (CSV in UTF-8 or GBK, .xls, .xlsx); ``items`` is the
    file joined to it (宝贝报表 for a Taobao 订单报表, order headers for POS lines). The answer is the
    data-quality report (bad rows are quarantined; unknown and missing columns are named)."""
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    companion = items.file.read(MAX_IMPORT_BYTES + 1) if items is not None else None
    if len(data) > MAX_IMPORT_BYTES or (companion is not None and len(companion) > MAX_IMPORT_BYTES):
        raise api_error(status.HTTP_413_CONTENT_TOO_LARGE, "too_large", f"imports are limited to {MAX_IMPORT_BYTES} bytes")
    report = import_file(runtime.db, channel, data, companion=companion, store=store,
                         source=file.filename or "upload", actor=principal.name)
    return report.as_dict()


@router.get("", response_model=Page[dict])
def list_imports(runtime: RuntimeDep, principal: HqReader, paging: PagingDep) -> Page[dict]:
    rows = history.imports(runtime.db, limit=paging.limit, offset=paging.offset)
    return Page(items=rows, limit=paging.limit, offset=paging.offset)


@router.get("/{import_id}/quarantine", response_model=Page[dict])
def quarantine(import_id: RowId, runtime: RuntimeDep, principal: HqReader, paging: PagingDep,
               reason: Annotated[QuarantineReason | MasterReason | None, Query()] = None) -> Page[dict]:
    rows, total = history.quarantined(runtime.db, import_id, reason=reason, limit=paging.limit, offset=paging.offset)
    return Page(items=rows, limit=paging.limit, offset=paging.offset, total=total)
