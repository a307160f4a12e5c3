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

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/dash"


def mount(app: FastAPI) -> None:
    """Serve the pages under ``/dash/`` (``/dash`` redirects there, so relative links resolve)."""

    @app.get(PREFIX, include_in_schema=False)
    def dashboards_root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/")

    # No compression here: gzip of the 715 KB charting library costs ~0.1 s of CPU per request in
    # Python; browsers keep it cached (ETag/Last-Modified) and a reverse proxy compresses once.
    app.mount(PREFIX, StaticFiles(directory=STATIC, html=True), name="dashboards")
