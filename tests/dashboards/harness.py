"""The real cloud API on a loopback port and Debian's Chromium driving the dashboards.

Shared by the browser tests and ``bench/dashboard_load.py``: both need the same server (uvicorn
in a thread, so the test process can read the same database) and the same way of opening a page
as a signed-in person and waiting for the page's own ``data-ready`` marker.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright

from cloud.api.app import create_app
from cloud.runtime import Runtime
from cloud.settings import Settings
from tests.netutil import free_port

CHROMIUM = "/usr/bin/chromium"
KEY_STORAGE = "instore.dash.key"  # the sessionStorage entry the pages read (static/js/api.js)
LANG_STORAGE = "instore.dash.lang"  # the localStorage entry of the language switch (static/js/i18n.js)


class CloudServer:
    """``create_app`` under uvicorn in a daemon thread; ``stop()`` lets it finish its requests."""

    def __init__(self, settings: Settings, runtime: Runtime | None = None) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_app(settings, runtime), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="dash-cloud", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> CloudServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the cloud API did not start (see the log above)")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, never a downloaded one."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])


@dataclass
class Console:
    """What a page said: console errors and uncaught exceptions."""

    errors: list[str] = field(default_factory=list)

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def on_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")

    def besides_refusals(self, status: int) -> list[str]:
        """Errors other than Chromium's own log line for an HTTP ``status`` response the page handled."""
        return [e for e in self.errors if f"status of {status}" not in e]


@dataclass
class Opened:
    page: Page
    console: Console
    ready_ms: int  # navigation start to the page's data-ready marker, as the page measured it


def open_page(browser: Browser, base_url: str, path: str, *, key: str | None, lang: str | None = None,
              viewport: tuple[int, int] = (1440, 1000), timeout_ms: int = 30_000) -> Opened:
    """Open ``/dash/{path}`` in a fresh context as the holder of ``key`` and wait for data-ready."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    script = ""
    if key is not None:
        script += f"sessionStorage.setItem({KEY_STORAGE!r}, {key!r});"
    if lang is not None:
        script += f"localStorage.setItem({LANG_STORAGE!r}, {lang!r});"
    if script:
        context.add_init_script(script)
    page = context.new_page()
    console = Console()
    page.on("console", console.on_message)
    page.on("pageerror", console.on_error)
    page.goto(f"{base_url}/dash/{path}")
    return Opened(page, console, wait_ready(page, timeout_ms))


def wait_ready(page: Page, timeout_ms: int = 30_000) -> int:
    page.wait_for_selector("body[data-ready=true]", timeout=timeout_ms)
    return int(page.get_attribute("body", "data-ready-ms") or 0)


def page_points(share: float) -> str:
    """A share in percentage points as the pages print it (ui.js ``num(value * 100, 1)``).

    Chromium's ``toLocaleString`` (ICU) rounds the *shortest decimal* that reads back as the double
    ``share * 100`` half away from zero, not the double's exact binary value, and Python's ``:.1f``
    rounds that exact value half to even: 0.8025 reads 80.3 on the page and 80.2 from an f-string,
    and 0.0315 (``3.15``, exactly 3.149999...) reads 3.2 on the page and 3.1 from ``Decimal(3.15)``.
    ``repr`` gives the same shortest decimal ICU starts from."""
    return str(Decimal(repr(share * 100)).quantize(Decimal("0.1"), ROUND_HALF_UP))


def page_pct(share: float) -> str:
    """A share as ui.js ``pct`` prints it."""
    return page_points(share) + "%"
