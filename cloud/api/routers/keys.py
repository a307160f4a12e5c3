"""API keys: created by HQ admins, shown once, stored hashed, revocable."""

from __future__ import annotations

from fastapi import APIRouter, status

from cloud.api import auth
from cloud.api.deps import Admin, Anyone, PagingDep, RuntimeDep, api_error, valid_store
from cloud.api.schemas import Error, KeyCreated, KeyIn, KeyOut, Page, Whoami

router = APIRouter(tags=["keys"])


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated, responses={422: {"model": Error}})
def create_key(body: KeyIn, runtime: RuntimeDep, principal: Admin) -> KeyCreated:
    if body.store is not None:
        valid_store(body.store)
    made = auth.create_key(runtime.db, name=body.name, role=body.role, store=body.store)
    return KeyCreated(id=made.id, key=made.key)


@router.get("/keys", response_model=Page[KeyOut])
def list_keys(runtime: RuntimeDep, principal: Admin, paging: PagingDep) -> Page[KeyOut]:
    rows = auth.list_keys(runtime.db, limit=paging.limit, offset=paging.offset)
    return Page(items=[KeyOut(**r) for r in rows], limit=paging.limit, offset=paging.offset)


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"model": Error}})
def revoke_key(key_id: str, runtime: RuntimeDep, principal: Admin) -> None:
    if not auth.revoke_key(runtime.db, key_id):
        raise api_error(status.HTTP_404_NOT_FOUND, "unknown_key", f"no active key {key_id}")


@router.get("/whoami", response_model=Whoami)
def whoami(principal: Anyone) -> Whoami:
    return Whoami(role=principal.role, store=principal.store, person=principal.person)
