"""Partial days compared fairly (issue 17): pages open on the last complete day; today is only ever
held against the same hours of its baselines, labelled as "today so far"."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cloud.health import views
from cloud.health.rollup import rollup_days
from cloud.runtime import open_cdp
from cloud.synthetic.brand import generate

NOW = datetime(2026, 3, 20, 0, 10, tzinfo=UTC)  # 08:10 in China: the day has barely begun
STORE = "st-0001"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory):
    db = open_cdp(Path(tmp_path_factory.mktemp("partial")) / "cloud.db", sample_catalogue=False)
    generate(db, persons=800, stores=4, seed=5, end=datetime(2026, 3, 20, 4, tzinfo=UTC), floor_days=35)
    rollup_days(db, date(2026, 2, 14), date(2026, 3, 20), until=NOW.replace(hour=4))
    yield db
    db.close()


def test_today_is_not_scored_and_pages_open_on_the_last_complete_day(db) -> None:
    assert db.scalar("SELECT COUNT(*) FROM store_metrics WHERE grain = 'day' AND ts = '2026-03-20' "
                     "AND metric = 'arrivals' AND value > 0")  # today has rows (its closed hours) ...
    assert not db.scalar("SELECT COUNT(*) FROM store_scores WHERE day = '2026-03-20'")  # ... but no score
    assert views.latest_day(db, NOW) == date(2026, 3, 19)
    noon = NOW.replace(hour=4)
    assert views.latest_day(db, noon) == date(2026, 3, 19)
    assert views.latest_day(db, datetime(2026, 3, 21, 1, tzinfo=UTC)) == date(2026, 3, 20)


def test_today_so_far_sums_the_same_closed_hours_of_each_day(db) -> None:
    noon = NOW.replace(hour=4)  # 12:00 in China: hours 00..11 are closed
    so_far = views.today_so_far(db, STORE, noon)[STORE]
    assert so_far["day"] == "2026-03-20" and so_far["until"] == "12:00" and "today so far" in so_far["label"]

    def hours(day: str, metric: str) -> float:
        return db.scalar("SELECT COALESCE(SUM(value), 0) FROM store_metrics WHERE store = ? AND grain = 'hour' "
                         "AND metric = ? AND ts >= ? AND ts < ?", (STORE, metric, day, f"{day}T12:00"))

    assert so_far["today"]["arrivals"] == pytest.approx(hours("2026-03-20", "arrivals"))
    assert so_far["last_week"]["arrivals"] == pytest.approx(hours("2026-03-13", "arrivals"))
    full_last_week = db.scalar("SELECT value FROM store_metrics WHERE store = ? AND grain = 'day' AND ts = ? "
                               "AND metric = 'arrivals'", (STORE, "2026-03-13"))
    assert so_far["last_week"]["arrivals"] < full_last_week  # the same hours, never the whole day
    mean4 = sum(hours(d, "arrivals") for d in ("2026-03-13", "2026-03-06", "2026-02-27", "2026-02-20")) / 4
    assert so_far["baseline"]["arrivals"] == pytest.approx(mean4, abs=0.01)
    # today so far is level with its same hours, not a collapse against full days
    assert so_far["today"]["arrivals"] > 0.5 * so_far["baseline"]["arrivals"]


def test_the_ranking_defaults_to_a_complete_day_and_carries_today_so_far(db) -> None:
    body = views.ranking(db, None)
    assert body["complete"] is True  # (by the real clock every generated day is over)
    assert set(body["today_so_far"]) == {r["store"] for r in body["stores"]}
    detail = views.store_detail(db, STORE, date(2026, 3, 19))
    assert detail is not None and detail["complete"] and detail["today_so_far"]["label"].startswith("today so far")
