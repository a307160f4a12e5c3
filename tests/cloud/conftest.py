"""Cloud test fixtures: one face engine per session, a fresh runtime and database per test.

Every test that takes ``db_location`` runs twice: on a SQLite file and on PostgreSQL. The
session creates its own PostgreSQL database with a random name (dropped at the end) and each test
gets a fresh schema in it; without a server at ``INSTORE_TEST_PG`` (default 127.0.0.1:5432,
user postgres) the PostgreSQL variants are skipped with that reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.db import Database
from cloud.runtime import Runtime, open_cdp
from cloud.settings import Settings
from protocol.embedding import Embedding
from protocol.facepack import DEFAULT_PACK
from protocol.facepack.engine import FaceEngine, decode_image
from protocol.messages import Arrival, FaceQuality, new_id, now

SCENES = Path(__file__).resolve().parents[3] / "shared" / "data" / "scenes"

StartCloud = Callable[..., tuple[TestClient, Runtime]]
MakeArrival = Callable[..., Arrival]


PG_SERVER = os.environ.get("INSTORE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this session's own, dropped afterwards."""
    name = f"instore_test_{uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {PG_SERVER} ({exc}); PostgreSQL variants skipped")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG_SERVER}/{name}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's store lives: a fresh SQLite file, or a fresh schema in the session's database."""
    if request.param == "sqlite":
        return str(tmp_path / "cloud.db")
    url = request.getfixturevalue("pg_database")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url


@pytest.fixture
def db(db_location: str) -> Iterator[Database]:
    opened = open_cdp(db_location)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def face_engine(models_dir: Path) -> FaceEngine:
    return FaceEngine.load(DEFAULT_PACK, models_dir)


@pytest.fixture(scope="session")
def scenes_dir() -> Path:
    if not SCENES.is_dir():
        pytest.fail(f"scene folder {SCENES} is missing (../shared/data from the repo)")
    return SCENES


@pytest.fixture
def start_cloud(db_location: str, face_engine: FaceEngine) -> Iterator[StartCloud]:
    """Start the cloud (API, plus ingest when ``broker_url`` is given) on a fresh database."""
    with ExitStack() as stack:

        def start(**settings_fields: object) -> tuple[TestClient, Runtime]:
            settings_fields.setdefault("api_key", None)
            settings_fields.setdefault("dev_open_mode", True)  # tests without keys: the explicit flag
            settings = Settings(db=db_location, **settings_fields)
            runtime = Runtime.open(settings, engine=face_engine)
            stack.callback(runtime.close)
            runtime.start()
            return stack.enter_context(TestClient(create_app(settings, runtime))), runtime

        yield start


@pytest.fixture
def make_arrival(face_engine: FaceEngine) -> MakeArrival:
    def make(photo: Path, *, brand: str, store: str, device: str = "edge-01", **fields: object) -> Arrival:
        """What an edge box would publish for the largest face in ``photo``."""
        image = decode_image(photo.read_bytes())
        face = face_engine.detect(image)[0]
        x1, y1, x2, y2 = (int(v) for v in face.bbox)
        return Arrival(
            event_id=new_id(), ts=now(), brand=brand, store=store, device=device, camera="door-1", track_id="t1",
            embedding=Embedding.from_vector(face_engine.embed(image, face)),
            quality=FaceQuality(det_score=face.score, face_px=face.size_px, bbox=(x1, y1, x2, y2)),
            model_pack=face_engine.pack.id, **fields,
        )

    return make
