"""Issue 18: a paying brand (``commercial_only``) never runs a research pack: the cloud refuses to
open its enrolment engine on one, ``POST /v1/rollouts`` refuses to send one (422
``pack_not_commercial``), and (the edge box's own ``cmd/pack`` check: tests/edge/test_commercial_pack.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.fleet import devices
from cloud.runtime import Runtime
from cloud.settings import Settings
from protocol.facepack import NotCommercialError
from protocol.facepack.engine import FaceEngine


def test_a_commercial_only_cloud_refuses_to_enrol_with_a_research_pack(db_location, face_engine):
    settings = Settings(db=db_location, pack_id=face_engine.pack.id, commercial_only=True, api_key=None,
                        dev_open_mode=True)
    with pytest.raises(NotCommercialError, match=rf"{face_engine.pack.id} is not cleared.*may use: yunet-dlib"):
        Runtime.open(settings, engine=face_engine)


@pytest.fixture(scope="module")
def dlib_engine(models_dir) -> FaceEngine:
    return FaceEngine.load("yunet-dlib", models_dir)


def test_a_commercial_only_brand_rolls_out_only_cleared_packs(db_location, dlib_engine):
    settings = Settings(db=db_location, pack_id="yunet-dlib", commercial_only=True, api_key=None, dev_open_mode=True)
    runtime = Runtime.open(settings, engine=dlib_engine)
    try:
        devices.observed(runtime.db, "demo", "s1", "e1", "edge", ts=datetime.now(UTC), model_pack="yunet-dlib")
        with TestClient(create_app(settings, runtime)) as client:
            refused = client.post("/v1/rollouts", json={"brand": "demo", "pack_id": "yunet-mbf", "canary_stores": ["s1"]})
            assert refused.status_code == 422, refused.text
            detail = refused.json()["detail"]
            assert detail["code"] == "pack_not_commercial"
            assert "yunet-mbf is not cleared" in detail["message"] and "yunet-dlib" in detail["message"]
            assert client.get("/v1/rollouts").json() == [], "nothing was started or sent"
            made = client.post("/v1/rollouts", json={"brand": "demo", "pack_id": "yunet-dlib", "canary_stores": ["s1"]})
            assert made.status_code == 201, made.text
    finally:
        runtime.close()


def test_a_commercial_only_brand_names_nobody_from_a_research_pack_box(db, dlib_engine) -> None:
    from cloud.faces.gallery import FaceIndex
    from cloud.faces.matching import Matcher

    pack = dlib_engine.pack
    index = FaceIndex(pack.recogniser.embedding_space, pack.recogniser.embedding_dim)
    vector = np.ones(pack.recogniser.embedding_dim, dtype=np.float32)
    index.add("m1", vector)
    assert Matcher(index, db, pack, commercial_only=True).match(vector, "yunet-mbf").reason == "not_commercial"
    assert Matcher(index, db, pack).match(vector, "yunet-mbf").reason == "other_space"
