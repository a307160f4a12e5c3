"""Master data files: catalogue, stores, staff and shifts, targets, stock positions, movements and batches.

Each upload is one import (``GET /v1/imports`` lists it as ``master:<kind>``, its bad rows are at
``GET /v1/imports/{id}/quarantine``); the answer is the data-quality report. The work is
``cloud.masterdata.importer``; this router holds no SQL.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Path, UploadFile, status

from cloud.api.deps import Admin, RuntimeDep, api_error
from cloud.api.schemas import Error
from cloud.masterdata.importer import KINDS, import_master

router = APIRouter(prefix="/master", tags=["master data"])

#: a master-data file is a spreadsheet; larger ones go through ``instore cloud import --kind`` on the server
MAX_MASTER_BYTES = 100 * 1024 * 1024

MasterKind = Literal["products", "stores", "staff", "shifts", "targets", "stock", "movements", "batches"]
assert set(MasterKind.__args__) == set(KINDS)  # type: ignore[attr-defined]


@router.post("/{kind}", status_code=status.HTTP_201_CREATED, responses={413: {"model": Error}, 422: {"model": Error}},
             operation_id="master-import")
def upload(kind: Annotated[MasterKind, Path()], file: Annotated[UploadFile, File()], runtime: RuntimeDep,
           principal: Admin) -> dict:
    """Import one master-data file (CSV in UTF-8 or GBK, .xls or .xlsx); bad rows are quarantined."""
    data = file.file.read(MAX_MASTER_BYTES + 1)
    if len(data) > MAX_MASTER_BYTES:
        raise api_error(status.HTTP_413_CONTENT_TOO_LARGE, "too_large", f"uploads are limited to {MAX_MASTER_BYTES} bytes")
    return import_master(runtime.db, kind, data, source=file.filename or "upload", actor=principal.name).as_dict()
