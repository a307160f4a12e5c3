"""The device registry: import provisioning's registry.json, list devices with last seen and state."""

from __future__ import annotations

from fastapi import APIRouter, Request

from cloud.api.deps import Admin, Counter, RuntimeDep, scoped_store
from cloud.api.schemas import DeviceOut, Error, RegistryImported
from cloud.fleet import devices

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("", response_model=list[DeviceOut])
def list_devices(runtime: RuntimeDep, principal: Counter) -> list[DeviceOut]:
    """Registered and observed devices; a store manager sees their store's only."""
    return [DeviceOut(**row) for row in devices.listing(runtime.db, scoped_store(principal))]


@router.post("/import", response_model=RegistryImported, responses={422: {"model": Error}})
async def import_registry(request: Request, runtime: RuntimeDep, principal: Admin) -> RegistryImported:
    """The body is provisioning's registry.json; it replaces the brand's registry."""
    made = devices.import_registry(runtime.db, await request.body())
    return RegistryImported(brand=made.brand, devices=made.devices, revoked=made.revoked)
