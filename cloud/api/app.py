"""The FastAPI application: routes, the API key on /v1, and who owns the runtime.

Whoever opens the runtime closes it: ``create_app(settings)`` opens and closes its own in the
lifespan; ``create_app(settings, runtime)`` uses a runtime its caller started (the CLI, to fail
before uvicorn starts; tests, to share one face engine) and leaves it running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.responses import JSONResponse

from cloud.api.deps import error_detail, require_api_key
from cloud.api.routers import health, ingest, members, visits
from cloud.runtime import Runtime
from cloud.settings import Settings

#: Multipart framing around an upload; a body larger than the upload limit plus this is refused unread.
_FORM_OVERHEAD = 64 * 1024


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

    app = FastAPI(title="instore cloud", version="0.1.0", lifespan=lifespan)

    @app.middleware("http")
    async def refuse_oversized_bodies(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """FastAPI parses a form before any route code runs; refuse a huge body before that."""
        declared, limit = request.headers.get("content-length", ""), settings.max_upload_bytes
        if declared.isdigit() and int(declared) > limit + _FORM_OVERHEAD:
            return JSONResponse(
                status_code=status.HTTP_413_CONTENT_TOO_LARGE,
                content={"detail": error_detail("too_large", f"uploads are limited to {limit} bytes")},
            )
        return await call_next(request)

    app.include_router(health.router)
    v1 = {"prefix": "/v1", "dependencies": [Depends(require_api_key)]}
    for module in (members, visits, ingest):
        app.include_router(module.router, **v1)
    return app
