"""The web dashboards (store manager, HQ, sales big-screen), served by the cloud app at ``/dash/``.

Static pages and vanilla JS modules, no build step: what is in ``static/`` is what the browser
gets, so the pages can be read, reviewed and vendored libraries audited file by file. The pages
hold no secret and call the ``/v1`` API from the browser with the key the person typed in, so the
API's roles (a store manager reads only their store) are the only access control there is.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/dash"


#: Pages run only their own scripts, talk only to their own origin and are framed by nobody: an
#: injected name in a member list cannot load a script, and no other site can overlay the pages.
#: Inline styles stay allowed (the charting library positions its tooltips with them).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    """ASGI wrapper: every response of the wrapped app carries ``SECURITY_HEADERS``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                message["headers"] = [h for h in message.get("headers", []) if h[0].lower() not in names]
                message["headers"] += list(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, with_headers)


def mount(app: FastAPI) -> None:
    """Serve the pages under ``/dash/`` (``/dash`` redirects there, so relative links resolve)."""

    @app.get(PREFIX, include_in_schema=False)
    def dashboards_root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/")

    # No compression here: gzip of the 715 KB charting library costs ~0.1 s of CPU per request in
    # Python; browsers keep it cached (ETag/Last-Modified) and a reverse proxy compresses once.
    app.mount(PREFIX, SecurityHeaders(StaticFiles(directory=STATIC, html=True)), name="dashboards")
