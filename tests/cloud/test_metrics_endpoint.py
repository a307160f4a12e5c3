"""The cloud's ``/metrics``: Prometheus text with the cloud's stage histograms, for the metrics token only.

A scraper sends ``Authorization: Bearer <metrics_token>``; an API key does not open it (and the
token does not open the API), no token configured means no metrics outside development open mode.
"""

from __future__ import annotations

import pytest

from cloud.settings import Settings, SettingsError

TOKEN = "m" * 40


def test_the_metrics_token_opens_the_metrics_and_nothing_else(start_cloud) -> None:
    api, _ = start_cloud(dev_open_mode=False, api_key="an-hq-admin-key-for-this-test", metrics_token=TOKEN)
    scraped = api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    assert "# TYPE instore_cloud_stage_seconds histogram" in scraped.text
    assert "process_cpu_seconds_total" in scraped.text  # this process's own collectors

    assert api.get("/metrics").status_code == 401
    wrong = api.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
    assert api.get("/metrics", headers={"X-API-Key": "an-hq-admin-key-for-this-test"}).status_code == 401
    assert api.get("/v1/members", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
    assert "/metrics" not in api.get("/openapi.json", headers={"X-API-Key": "an-hq-admin-key-for-this-test"}).text


def test_without_a_token_only_development_open_mode_serves_metrics(start_cloud) -> None:
    locked, _ = start_cloud(dev_open_mode=False, api_key="an-hq-admin-key-for-this-test")
    refused = locked.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert refused.status_code == 401 and "metrics_token" in refused.json()["detail"]["message"]
    developer, _ = start_cloud()  # dev_open_mode on loopback, as the demo runs
    assert developer.get("/metrics").status_code == 200


def test_a_short_metrics_token_is_refused_at_start(tmp_path) -> None:
    with pytest.raises(SettingsError, match="metrics_token"):
        Settings.load(db=str(tmp_path / "cdp.db"), metrics_token="short")
