"""One seeded cloud API and one Chromium for every dashboard test of the session.

The API is the real app on a loopback port (uvicorn in a thread) over a SQLite file seeded by
``seed.py`` (the brand generator, one planted anomaly, the production rollup and scan); keys are
real hashed keys for HQ and for the manager of store A. Pages open through ``harness.open_page``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from cloud.api.auth import create_key
from cloud.runtime import open_cdp
from cloud.settings import Settings
from tests.dashboards.harness import CloudServer, launch
from tests.dashboards.seed import Seeded, seed

STORE_A, STORE_B = "st-0001", "st-0002"


@dataclass(frozen=True)
class Dash:
    url: str
    db_path: Path
    data: Seeded
    hq_key: str
    manager_key: str  # store_manager of STORE_A

    def api(self, path: str, key: str | None = None) -> dict | list:
        response = httpx.get(f"{self.url}{path}", headers={"X-API-Key": key or self.hq_key}, timeout=30)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="session")
def dash(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Dash]:
    db_path = tmp_path_factory.mktemp("dash") / "cloud.db"
    db = open_cdp(str(db_path))
    try:
        data = seed(db, idle=STORE_A)
        hq = create_key(db, name="hq", role="hq_admin").key
        manager = create_key(db, name="manager A", role="store_manager", store=STORE_A).key
    finally:
        db.close()
    server = CloudServer(Settings(db=str(db_path), api_key=None, rate_limit_per_minute=0, dev_open_mode=True)).start()
    yield Dash(server.url, db_path, data, hq, manager)
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()
