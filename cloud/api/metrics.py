"""``GET /metrics``: the cloud process's Prometheus metrics, for a scraper holding the metrics token.

What it shows: ``instore_cloud_stage_seconds{stage}`` (where each arrival's time went on the
cloud's side, ``cloud.arrivals.metrics``) and prometheus-client's process and Python collectors
(CPU, memory, open files, garbage collection) of this process. Every ``instore cloud serve``
process serves it on its API port, so each ingest worker of a share group is scraped on its own.

Why a bearer token of its own and not an API key: a scraper is a machine, not a person (API keys
name people and roles, and each use is looked up in the database); Prometheus sends
``Authorization: Bearer`` natively (``authorization: {credentials_file: ...}`` in its scrape
config); and the page names nothing about members, so a token that opens only this page keeps
a leaked scraper config from opening the API. Why not open on a separate unauthenticated port:
the API's port is the one a deployment already exposes to its private network through TLS, and a
second port is one more thing to firewall. Without ``metrics_token`` the page is refused (401),
except in development open mode, where the whole API is open anyway.
"""

from __future__ import annotations

import hmac

from prometheus_client import make_asgi_app
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cloud.settings import Settings

PATH = "/metrics"


class MetricsEndpoint:
    """prometheus-client's ASGI exposition behind the bearer-token check (an ASGI app for a Route)."""

    def __init__(self, settings: Settings) -> None:
        self.token = settings.metrics_token.get_secret_value().encode() if settings.metrics_token else None
        self.open = settings.dev_open_mode
        self.exposition: ASGIApp = make_asgi_app()

    def allowed(self, authorization: str | None) -> bool:
        if self.token is None:
            return self.open
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.allowed(Headers(scope=scope).get("authorization")):
            message = ("missing or wrong metrics token (Authorization: Bearer ...)" if self.token is not None
                       else "metrics are served only with a metrics_token ($INSTORE_METRICS_TOKEN)")
            refusal = JSONResponse({"detail": {"code": "unauthorized", "message": message}}, status_code=401,
                                   headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
            await refusal(scope, receive, send)
            return
        await self.exposition(scope, receive, send)
