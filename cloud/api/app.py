"""The FastAPI application: routes, the API key on /v1, and who owns the runtime.

Whoever opens the runtime closes it: ``create_app(settings)`` opens and closes its own in the
lifespan; ``create_app(settings, runtime)`` uses a runtime its caller started (the CLI, to fail
before uvicorn starts; tests, to share one face engine) and leaves it running.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from cloud.api.deps import error_detail, require_api_key
from cloud.api.guard import Guard
from cloud.api.metrics import PATH as METRICS_PATH
from cloud.api.metrics import MetricsEndpoint
from cloud.api.openapi_errors import document_errors
from cloud.api.routers import (
    alerts,
    brand_live,
    campaigns,
    devices,
    erasures,
    guest_wifi,
    guide_preview,
    health,
    identity,
    imports,
    ingest,
    join,
    journeys,
    keys,
    labels,
    loyalty,
    master,
    members,
    orders,
    rollouts,
    scripts,
    segments,
    storehealth,
    stores,
    tags,
    visits,
    wifi,
)
from cloud.api.routers import commands as device_commands
from cloud.api.routers import markdown as markdown_routes
from cloud.dashboards import mount as mount_dashboards
from cloud.errors import CloudError
from cloud.runtime import Runtime
from cloud.settings import Settings

log = logging.getLogger(__name__)
_CODES = {404: "not_found", 405: "method_not_allowed"}


def operation_id(route: APIRoute) -> str:
    """Readable OpenAPI operation ids, ``members-create`` rather than ``create_member_v1_members_post``:
    the route's tag, then its function's name without the words that repeat the tag."""
    tag = str(route.tags[0]) if route.tags else "api"
    tag_words = set(tag.split()) | {word.rstrip("s") for word in tag.split()}
    words = [w for w in route.name.split("_") if w not in tag_words and w.rstrip("s") not in tag_words]
    return "-".join([tag.replace(" ", "-"), *(words or ["get"])])


class _RedactMemberIds(logging.Filter):
    """Access-log lines name paths, and member paths name a person: the id is replaced by ``…``."""

    _MEMBER = re.compile(r"(/members/)[^/?\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._MEMBER.sub(r"\1…", a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_member_ids_in_access_logs() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactMemberIds) for f in access.filters):
        access.addFilter(_RedactMemberIds())


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    if runtime is not None and runtime.settings != settings:
        raise ValueError("the runtime was opened with other settings than the app's")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            yield
            return
        own = Runtime.open(settings)
        try:
            own.start()
            app.state.runtime = own
            yield
        finally:
            own.close()

    app = FastAPI(
        title="instore cloud CDP", version="0.2.0", lifespan=lifespan, generate_unique_id_function=operation_id,
        description="HQ API: members and their 360 profiles, the OneID identity graph, imports and quarantine, "
        "tags, segments, stores, consent and erasure. Roles by API key (X-API-Key): hq_admin, hq_analyst "
        "(read-only), store_manager (own store), device.",
    )

    @app.exception_handler(CloudError)
    async def cloud_errors(request: Request, exc: CloudError) -> JSONResponse:
        """The one place a refusal becomes a response: its status and {"detail": {"code", "message"}}."""
        return JSONResponse(status_code=int(exc.status), content={"detail": error_detail(exc.code, exc.message)})

    @app.exception_handler(StarletteHTTPException)
    async def json_errors(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Every error is {"detail": {"code", "message"}}, also Starlette's own (404 route, 405 method)."""
        detail = exc.detail if isinstance(exc.detail, dict) else error_detail(
            _CODES.get(exc.status_code, "http_error"), str(exc.detail))
        return JSONResponse(status_code=exc.status_code, content={"detail": detail}, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_errors(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422 list without the echoed input: a body may carry NaN or Infinity (Python's JSON
        reader takes them), which no JSON response can hold, so echoing it turned a 422 into a 500."""
        errors = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": errors})

    # keys, rate limits and body limits before any route reads a body; inside CORS (refusals carry its headers)
    app.add_middleware(Guard, settings=settings)
    redact_member_ids_in_access_logs()
    if settings.dev_open_mode:
        log.warning("\n%s\nDEVELOPMENT OPEN MODE: while no API key has ever existed, ANYONE who reaches %s:%s "
                    "is hq_admin. Never use dev_open_mode outside a developer's machine.\n%s",
                    "!" * 100, settings.api_host, settings.api_port, "!" * 100)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"], allow_headers=["X-API-Key", "Content-Type"],
        )

    app.include_router(health.router)
    for module in (members, identity, segments, tags, stores, visits, imports, ingest, keys, wifi, devices, scripts,
                   storehealth, brand_live, guide_preview, labels, rollouts, alerts, device_commands, markdown_routes,
                   master, erasures, loyalty, orders, campaigns, journeys):
        app.include_router(module.router, prefix="/v1", dependencies=[Depends(require_api_key)])
    app.include_router(campaigns.public)  # provider callbacks and the unsubscribe link: no API key
    app.include_router(guest_wifi.router)  # the store's guest Wi-Fi login page: the joining phone has no key
    app.router.routes.append(Route(METRICS_PATH, MetricsEndpoint(settings), include_in_schema=False))  # own token
    app.include_router(join.public, prefix="/v1")  # the join page on a customer's phone: the QR code's token
    mount_dashboards(app)
    document_errors(app)
    return app
