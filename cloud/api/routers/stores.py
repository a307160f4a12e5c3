"""Stores of the brand, and who is asking about which."""

from __future__ import annotations

from fastapi import APIRouter, status

from cloud.api.deps import Admin, PagingDep, Reader, RuntimeDep, api_error, scoped_store, valid_store
from cloud.api.schemas import Error, Page, StoreIn, StoreOut
from cloud.db.database import IntegrityError
from cloud.store import iso, utcnow

router = APIRouter(prefix="/stores", tags=["stores"])


@router.get("", response_model=Page[StoreOut])
def list_stores(runtime: RuntimeDep, principal: Reader, paging: PagingDep) -> Page[StoreOut]:
    own = scoped_store(principal)
    where, args = ("WHERE id = ?", [own]) if own else ("", [])
    rows = runtime.store.db.query(f"SELECT * FROM stores {where} ORDER BY id LIMIT ? OFFSET ?",
                                  (*args, paging.limit, paging.offset))
    return Page(items=[StoreOut(**r) for r in rows], limit=paging.limit, offset=paging.offset)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=StoreOut, responses={409: {"model": Error}})
def create_store(body: StoreIn, runtime: RuntimeDep, principal: Admin) -> StoreOut:
    valid_store(body.id)
    store = StoreOut(**body.model_dump(), created=utcnow())
    try:
        runtime.store.db.execute("INSERT INTO stores (id, brand, name, city, created) VALUES (?, ?, ?, ?, ?)",
                                 (store.id, store.brand, store.name, store.city, iso(store.created)))
    except IntegrityError:
        raise api_error(status.HTTP_409_CONFLICT, "store_exists", f"store {body.id} exists") from None
    return store
