"""Cloud test fixtures: one face engine per session, a fresh runtime and database per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.runtime import Runtime
from cloud.settings import Settings
from protocol.embedding import Embedding
from protocol.facepack import DEFAULT_PACK
from protocol.facepack.engine import FaceEngine, decode_image
from protocol.messages import Arrival, FaceQuality, new_id, now

SCENES = Path(__file__).resolve().parents[3] / "shared" / "data" / "scenes"

StartCloud = Callable[..., tuple[TestClient, Runtime]]
MakeArrival = Callable[..., Arrival]


@pytest.fixture(scope="session")
def face_engine(models_dir: Path) -> FaceEngine:
    return FaceEngine.load(DEFAULT_PACK, models_dir)


@pytest.fixture(scope="session")
def scenes_dir() -> Path:
    if not SCENES.is_dir():
        pytest.fail(f"scene folder {SCENES} is missing (../shared/data from the repo)")
    return SCENES


@pytest.fixture
def start_cloud(tmp_path: Path, face_engine: FaceEngine) -> Iterator[StartCloud]:
    """Start the cloud (API, plus ingest when ``broker_url`` is given) on a fresh database."""
    with ExitStack() as stack:

        def start(**settings_fields: object) -> tuple[TestClient, Runtime]:
            settings_fields.setdefault("api_key", None)
            settings = Settings(db_path=tmp_path / "cloud.db", **settings_fields)
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
