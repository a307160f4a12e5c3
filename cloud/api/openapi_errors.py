"""The error responses every ``/v1`` operation can give, written into the OpenAPI document once.

Routes document their own outcomes (404 unknown member, 409 conflict); the ones that come from
the shared dependencies are the same everywhere and are added here, for every route, including
routers added later: 401 (no or wrong key), 403 (the key's role or store may not do this), 429
(rate limited) and 422 in both shapes the API sends: FastAPI's body/parameter validation list and
the API's own ``{"detail": {"code", "message"}}`` (an invalid store id, an invalid condition).
Without this a client generated from the document would not know these answers exist; the
schemathesis fuzzer (tests/fuzz) holds every response to the document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cloud.api.schemas import Error

_SHARED = {
    "401": "missing or wrong X-API-Key",
    "403": "the key's role or store may not do this",
    "429": "rate limited; see Retry-After",
}
_ERROR = {"$ref": "#/components/schemas/Error"}
_VALIDATION = {"$ref": "#/components/schemas/HTTPValidationError"}


def document_errors(app: FastAPI, prefix: str = "/v1") -> None:
    """Make ``app.openapi()`` declare the shared error responses of every operation under ``prefix``, and
    both 422 shapes wherever a 422 can come (a public route refuses with the API's own shape too)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _add_errors(schema, prefix)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_errors(schema: dict[str, Any], prefix: str) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error = Error.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in {**error.pop("$defs", {}), "Error": error}.items():
        components.setdefault(name, definition)
    has_validation = "HTTPValidationError" in components
    either = {"anyOf": [_ERROR, _VALIDATION]} if has_validation else _ERROR
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if path.startswith(prefix):  # behind the key: the shared dependencies' answers
                for code, description in _SHARED.items():
                    responses.setdefault(code, {"description": description, "content": _json(_ERROR)})
            if "422" in responses or path.startswith(prefix):  # the one error handler serves every route
                responses.setdefault("422", {"description": "Validation Error"})["content"] = _json(either)


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's own documented error answers, each in the API's one error shape."""
    return {status: {"model": Error} for status in statuses}
