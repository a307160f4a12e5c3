"""The golden store-health day (tests/golden/store_health): three stores' hand-written raw rows of one
day, through the rollup and the API, against the metrics, scores and ranking computed by hand beside
them (README.md there shows each number's working). On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.api import auth
from cloud.api.app import create_app
from cloud.health.rollup import rollup_days
from cloud.runtime import Runtime, open_cdp
from cloud.settings import Settings
from protocol.facepack.engine import FaceEngine
from tests.health import rows

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "store_health"
ROWS = json.loads((GOLDEN / "rows.json").read_text(encoding="utf-8"))
TRUTH = json.loads((GOLDEN / "truth.json").read_text(encoding="utf-8"))
DAY = ROWS["day"]


@pytest.fixture
def client(db_location: str, face_engine: FaceEngine) -> Iterator[tuple[TestClient, str, dict]]:
    db = open_cdp(db_location, sample_catalogue=False)
    for store, tier, fmt in ROWS["stores"]:
        rows.add_store(db, store, tier, fmt)
    for store, visit, at in ROWS["visits"]:
        rows.add_visit(db, store, visit, at, None)
    for store, visit, action, assistant, at, amount in ROWS["feedback"]:
        rows.add_feedback(db, store, visit, action, assistant, at, amount)
    for order, store, at, lines in ROWS["orders"]:
        rows.add_order(db, order, store, None, at, [tuple(line) for line in lines])
    day = date.fromisoformat(DAY)
    rollup_days(db, day, day, until=datetime(2026, 3, 11, 12, tzinfo=UTC))
    key = auth.create_key(db, name="hq", role="hq_admin").key
    rolled: dict[str, dict[str, float]] = {}
    for store, metric, value in db.rows("SELECT store, metric, value FROM store_metrics WHERE grain = 'day' AND ts = ?",
                                        (DAY,)):
        rolled.setdefault(store, {})[metric] = value
    db.close()
    settings = Settings(db=db_location, api_key=None, rate_limit_per_minute=0, dev_open_mode=True)
    runtime = Runtime.open(settings, engine=face_engine)
    with TestClient(create_app(settings, runtime)) as test_client:
        yield test_client, key, rolled
    runtime.close()


def test_the_golden_day_ranks_and_explains_every_store_as_computed_by_hand(
        client: tuple[TestClient, str, dict]) -> None:
    http, key, rolled = client
    ranking = http.get("/v1/health/stores", params={"day": DAY}, headers={"X-API-Key": key})
    assert ranking.status_code == 200, ranking.text
    got = [{k: r[k] for k in TRUTH["ranking"][0]} for r in ranking.json()["stores"]]
    assert got == TRUTH["ranking"]
    for expected in TRUTH["ranking"]:
        store = expected["store"]
        detail = http.get(f"/v1/health/stores/{store}", params={"day": DAY}, headers={"X-API-Key": key}).json()
        assert (detail["overall"], detail["rank"], detail["of"]) == (expected["overall"], expected["rank"], 3)
        assert {s["name"]: s["score"] for s in detail["sub_scores"]} == {
            sub: expected[sub] for sub in ("experience", "customer", "team", "product", "operations")}
        peers = [s for s, *_ in ROWS["stores"] if s != store]
        peer_overall = sorted(r["overall"] for r in TRUTH["ranking"] if r["store"] in peers)
        assert detail["peer_group"] == {"key": "tier1/mall", "stores": peers,
                                        "overall_median": pytest.approx(sum(peer_overall) / 2, abs=0.1)}
        # the rollup's day metrics, and the scored ones as the explanation shows them
        expected_values = {m: v for m, v in TRUTH["metrics"][store].items() if v is not None}
        assert rolled[store] == pytest.approx(expected_values, abs=1e-4)
        shown = {m["metric"]: m for s in detail["sub_scores"] for m in s["metrics"]}
        for metric, value in TRUTH["metrics"][store].items():
            if metric in shown:
                assert shown[metric]["value"] == (None if value is None else pytest.approx(value, abs=1e-4)), metric
        for metric, (peer, score) in TRUTH["scores"][store].items():
            m = shown[metric]
            assert m["own_baseline"] is None, metric
            assert (m["peer_median"], m["score"]) == (peer, score), metric
        scored = {name for name, m in shown.items() if m["score"] is not None}
        assert scored == {name for name, (_, score) in TRUTH["scores"][store].items() if score is not None}
