"""What every route depends on: the runtime, the caller's role, paging, and one error shape.

Every error the API raises itself is a ``cloud.errors.CloudError``, which the app's one handler
writes as ``{"detail": {"code": ..., "message": ...}}``: ``code`` is stable for programs,
``message`` is for people. Body validation keeps FastAPI's own 422 shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Path, Query, Request, status
from fastapi.security import APIKeyHeader

from cloud.api.auth import Principal, Role, authenticate
from cloud.cdp import members, profile
from cloud.errors import CloudError
from cloud.runtime import Runtime
from protocol.topics import TopicError, check_id

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False,
    description="required (only a development server on a loopback address, started with dev_open_mode, "
    "is open while no key has ever existed)",
)


def error_detail(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def api_error(status_code: int, code: str, message: str) -> CloudError:
    """An error only the API itself raises (a bad path parameter, a role or store the key lacks)."""
    return CloudError(message, code=code, status=status_code)


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def require_api_key(
    request: Request, runtime: RuntimeDep, given: Annotated[str | None, Depends(_api_key_header)]
) -> Principal:
    principal = request.scope.get("state", {}).get("principal")  # the guard's, before the body was read
    if principal is None:
        principal = authenticate(runtime.db, runtime.settings.api_key, given,
                                 open_mode=runtime.settings.dev_open_mode)
    if principal is None:
        raise api_error(status.HTTP_401_UNAUTHORIZED, "unauthorized", "missing or wrong X-API-Key header")
    request.state.principal = principal
    return principal


def get_principal(request: Request) -> Principal:
    return request.state.principal


def allow(*roles: Role) -> Callable[..., Principal]:
    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            raise api_error(status.HTTP_403_FORBIDDEN, "forbidden", f"a {principal.role} key may not do this")
        return principal

    return check


READERS = ("hq_admin", "hq_analyst", "store_manager")
Admin = Annotated[Principal, Depends(allow("hq_admin"))]
HqReader = Annotated[Principal, Depends(allow("hq_admin", "hq_analyst"))]
Reader = Annotated[Principal, Depends(allow(*READERS))]
Counter = Annotated[Principal, Depends(allow("hq_admin", "store_manager"))]
Anyone = Annotated[Principal, Depends(get_principal)]


def valid_id(kind: str, value: str) -> str:
    """An id that may stand in a topic (store, label, sku), else 422 ``invalid_<kind>``."""
    try:
        return check_id(kind, value)
    except TopicError as exc:
        raise api_error(status.HTTP_422_UNPROCESSABLE_CONTENT, f"invalid_{kind}", str(exc)) from None


def valid_store(store: str) -> str:
    return valid_id("store", store)


def check_store(principal: Principal, store: str) -> None:
    if principal.role == "store_manager" and store != principal.store:
        raise api_error(status.HTTP_403_FORBIDDEN, "forbidden_store", f"this key reads store {principal.store} only")


def own_store(principal: Principal, store: str) -> str:
    """A valid store id the caller may act on (a store manager: only their own)."""
    store = valid_store(store)
    check_store(principal, store)
    return store


def scoped_store(principal: Principal) -> str | None:
    """The store a caller's reads are limited to; None for HQ."""
    return principal.store if principal.role == "store_manager" else None


def person_for(runtime: Runtime, principal: Principal, member_id: str) -> str:
    """The person behind a member id, if it exists and the caller may see it."""
    person = members.person_id(runtime.db, member_id)
    if person is None:
        raise api_error(status.HTTP_404_NOT_FOUND, "unknown_member", f"no member {member_id}")
    store = scoped_store(principal)
    if store is not None and not profile.visible_to_store(runtime.db, person, store):
        raise api_error(status.HTTP_403_FORBIDDEN, "forbidden_store", f"member {member_id} is not a customer of {store}")
    return person


#: The largest integer both databases store (SQLite INTEGER, PostgreSQL BIGINT): a larger id or
#: offset in a URL is a 422, not an overflow deep in the driver.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a numeric row id")]


class Paging:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="rows to skip")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


PagingDep = Annotated[Paging, Depends()]
