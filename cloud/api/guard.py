"""Limits before work: the API key is checked, and the body limited, before any body is read.

FastAPI reads and parses a request body (a JSON document into memory, a multipart form spooled
to disk) *before* it resolves the route's dependencies, so a key checked in a dependency comes
too late: a stranger could make the server hold 400 MB of JSON or spool 1.5 GB of form before
the 401. And a ``Content-Length`` check alone misses chunked uploads, which declare no length.

``Guard`` is a plain ASGI middleware in front of the routes:

* a declared ``Content-Length`` over the limit is a 413 before a byte is read;
* every ``/v1`` request (and a ``/healthz`` that sends a key) is authenticated from its ``X-API-Key`` header alone (no body read); the
  principal is handed to the route in ``scope["state"]``, a failure is a 401;
* failed authentications are counted per client address (not per key: guessing with a fresh key
  each time must be limited too); past ``auth_failures_per_minute`` the address gets 429 until
  its bucket refills, without its keys being looked at;
* then each caller (an authenticated key, else the client address) has its own rate limit;
* ``receive`` is wrapped to count body bytes as they stream, chunked or not: past the limit the
  route's body reading fails with a 413 and nothing more is read.

Every refusal is a 4xx with ``{"detail": {"code", "message"}}``.
"""

from __future__ import annotations

import json
from typing import Any

from anyio import to_thread
from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.api.auth import authenticate
from cloud.api.ratelimit import RateLimiter
from cloud.settings import Settings

#: Multipart framing around an upload: a body may be this much larger than the upload limit.
FORM_OVERHEAD = 64 * 1024


def _detail(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"detail": {"code": code, "message": message}}


async def _refuse(send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(_detail(code, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           (b"connection", b"close")]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit; FastAPI lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=_detail("too_large", f"request bodies are limited to {limit} bytes")["detail"])


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limit = settings.max_upload_bytes + FORM_OVERHEAD
        self.failures = RateLimiter(settings.auth_failures_per_minute)
        self.calls = RateLimiter(settings.rate_limit_per_minute) if settings.rate_limit_per_minute else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _refuse(send, 413, "too_large", f"request bodies are limited to {self.limit} bytes")
            return
        v1 = scope["path"].startswith("/v1")
        probe = scope["path"] == "/healthz" and "x-api-key" in headers  # would be an unlimited key oracle
        if (v1 or probe) and scope["method"] != "OPTIONS":
            address = f"addr:{scope['client'][0] if scope.get('client') else 'unknown'}"
            wait = self.failures.exhausted(address)
            if wait:
                await _refuse(send, 429, "auth_rate_limited",
                              f"too many failed authentications from this address; retry in {wait:.0f} s",
                              {"Retry-After": str(max(1, round(wait)))})
                return
            given = headers.get("x-api-key")
            principal = await to_thread.run_sync(self._authenticate, scope, given)
            if principal is None and given is not None:  # a guess (a missing key guesses nothing)
                self.failures.acquire(address)
            if principal is None and v1:
                await _refuse(send, 401, "unauthorized", "missing or wrong X-API-Key header",
                              {"WWW-Authenticate": "X-API-Key"})
                return
            if principal is not None:
                scope.setdefault("state", {})["principal"] = principal
        if self.calls is not None:
            caller = self.calls.identity(headers.get("x-api-key"), scope["client"][0] if scope.get("client") else None)
            wait = self.calls.acquire(caller)
            if wait:
                await _refuse(send, 429, "rate_limited", f"too many requests; retry in {wait:.1f} s",
                              {"Retry-After": str(max(1, round(wait)))})
                return
        await self._limited(scope, receive, send)

    def _authenticate(self, scope: Scope, given: str | None) -> Any:
        runtime = scope["app"].state.runtime
        return authenticate(runtime.db, self.settings.api_key, given, open_mode=self.settings.dev_open_mode)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        read = 0
        started = False

        async def counted() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(send, 413, "too_large", f"request bodies are limited to {self.limit} bytes")
