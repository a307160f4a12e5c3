"""A store's e-shelf labels: hang (or move) a label under a product, list them, take one down.

HQ admins manage every store, a store manager their own store; every reader role may list. The
registry is what the cloud uses to flash the labels of a member's recommended products when they
walk in (``cloud.pricing.label_flash``) and to keep every label drawn with its product's price,
member price and markdown (``cloud.pricing.shelf``); the store's gateway keeps its own file of label
ids to tag MACs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from cloud.api.deps import Counter, PagingDep, Reader, RuntimeDep, api_error, own_store, valid_id
from cloud.api.label_schemas import LabelIn, LabelOut, LabelRegistered
from cloud.api.schemas import Error, Page
from cloud.pricing import labels
from cloud.pricing.registry import Label

router = APIRouter(prefix="/stores", tags=["labels"])

LabelId = Annotated[str, Path(description="the label's id, as in the store gateway's labels file")]


@router.get("/{store}/labels", response_model=Page[LabelOut], responses={403: {"model": Error}})
def list_labels(store: str, runtime: RuntimeDep, principal: Reader, paging: PagingDep) -> Page[LabelOut]:
    store = own_store(principal, store)
    rows = labels.of_store(runtime.db, store, limit=paging.limit, offset=paging.offset)
    return Page(items=[LabelOut.of(**r.model_dump()) for r in rows], limit=paging.limit, offset=paging.offset,
                total=labels.count(runtime.db, store))


@router.put("/{store}/labels/{label_id}", response_model=LabelRegistered,
            responses={403: {"model": Error}, 422: {"model": Error}})
def put_label(store: str, label_id: LabelId, body: LabelIn, runtime: RuntimeDep, principal: Counter) -> LabelRegistered:
    """Register a label, or move it to another product or tag type (idempotent); with a broker, the
    label is drawn right away with its product (a label whose product is not in the catalogue yet
    is drawn when it is)."""
    label = Label(label_id=valid_id("label", label_id), store=own_store(principal, store), sku=body.sku, tag_type=body.tag_type)
    outcome = labels.register(runtime.db, label, actor=principal.name)
    if runtime.labels is not None:  # drawn now with its product, price, member price and markdown
        runtime.labels.sync(store=label.store, label=label.label_id, reason="bound")
    return LabelRegistered(**LabelOut.of(**label.model_dump()).model_dump(), outcome=outcome)


@router.delete("/{store}/labels/{label_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={403: {"model": Error}, 404: {"model": Error}})
def delete_label(store: str, label_id: LabelId, runtime: RuntimeDep, principal: Counter) -> None:
    store = own_store(principal, store)
    if not labels.remove(runtime.db, store, label_id):
        raise api_error(status.HTTP_404_NOT_FOUND, "unknown_label", f"no label {label_id} in store {store}")
