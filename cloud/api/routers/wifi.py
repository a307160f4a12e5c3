"""Wi-Fi: members register phones (only the brand-keyed HMAC is kept); stores read their footfall."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from cloud.api.deps import Counter, Reader, RuntimeDep, api_error, check_store, person_for, valid_store
from cloud.api.schemas import DeviceIn, DeviceRegistered, Error, FootfallBucket
from cloud.arrivals import wifi
from cloud.clock import utcnow

router = APIRouter(tags=["wifi"])

_STATUS = {"invalid_mac": status.HTTP_422_UNPROCESSABLE_CONTENT, "device_taken": status.HTTP_409_CONFLICT,
           "wifi_secret_invalid": status.HTTP_409_CONFLICT}


@router.post(
    "/members/{member_id}/devices", status_code=status.HTTP_201_CREATED, response_model=DeviceRegistered,
    responses={404: {"model": Error},
               409: {"model": Error, "description": "no Wi-Fi secret, or the device is another member's"},
               422: {"model": Error, "description": "not a MAC, or a randomised (private) MAC"}},
)
def register_device(member_id: str, body: DeviceIn, runtime: RuntimeDep, principal: Counter,
                    response: Response) -> DeviceRegistered:
    person = person_for(runtime, principal, member_id)
    secret = runtime.settings.wifi_secret()
    made = wifi.register_device(runtime.db, person, body.mac, secret)
    if not made.created:
        response.status_code = status.HTTP_200_OK
    return DeviceRegistered(device_key=made.device_key, created=made.created)


@router.get("/stores/{store}/footfall", response_model=list[FootfallBucket])
def footfall(
    store: Annotated[str, Path(description="store id, as in the MQTT topics")],
    runtime: RuntimeDep,
    principal: Reader,
    start: Annotated[datetime | None, Query(alias="from", description="default: 24 h before `to`")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="default: now")] = None,
    bucket: Annotated[wifi.Bucket, Query()] = "minute",
) -> list[FootfallBucket]:
    valid_store(store)
    check_store(principal, store)
    end = end or utcnow()
    start = start or end - timedelta(days=1)
    if start.tzinfo is None or end.tzinfo is None:
        raise api_error(status.HTTP_422_UNPROCESSABLE_CONTENT, "naive_time", "from and to need a UTC offset")
    return [FootfallBucket(**b) for b in wifi.footfall_series(runtime.db, store, start, end, bucket)]
