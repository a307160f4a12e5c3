"""What every route depends on: the shared runtime, the API key, and one error shape.

Every error the API raises itself is ``{"detail": {"code": ..., "message": ...}}``: ``code`` is
stable for programs, ``message`` is for people. Body validation keeps FastAPI's own 422 shape.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from cloud.runtime import Runtime

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="required when INSTORE_API_KEY is set")


def error_detail(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def api_error(status_code: int, code: str, message: str) -> HTTPException:
    return HTTPException(status_code=status_code, detail=error_detail(code, message))


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def require_api_key(runtime: RuntimeDep, given: Annotated[str | None, Depends(_api_key_header)]) -> None:
    expected = runtime.settings.api_key
    if expected is None:
        return
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise api_error(status.HTTP_401_UNAUTHORIZED, "unauthorized", "missing or wrong X-API-Key header")
