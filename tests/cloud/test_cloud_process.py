"""A cloud process with a broker holds one MQTT connection (cards, commands, alerts and label
redraws all go out on the ingest's client) and one thread for periodic work."""

from __future__ import annotations

import threading


def _new_threads(before: set[threading.Thread]) -> list[str]:
    """Names of the threads started since ``before`` (by identity: another cloud in this test session
    may run threads of the same names)."""
    return [thread.name for thread in threading.enumerate() if thread not in before]


def test_one_mqtt_connection_and_one_scheduler_thread(start_cloud, mosquitto) -> None:
    before = set(threading.enumerate())
    _, runtime = start_cloud(broker_url=mosquitto.url, client_id="cloud-under-test")
    client = runtime.ingest.client
    assert runtime.commands._client is client
    assert runtime.alert_sender._client is client
    assert runtime.markdown._client is client
    assert runtime.labels._client is client
    started = _new_threads(before)
    # paho names its network thread after the client id: one client, under the configured id
    assert [name for name in started if name.startswith("paho-mqtt-client-")] == ["paho-mqtt-client-cloud-under-test"]
    assert started.count("cloud-scheduler") == 1
    assert not {"cloud-upkeep", "health-rollup", "markdown"} & set(started)
    assert runtime.scheduler.jobs == ["health-rollup", "device-health", "source-health", "alert-notify",
                                      "campaign-send", "audience-refresh", "journeys", "points-notices", "loyalty-orders",
                                      "loyalty-expiry", "rollouts", "telemetry-prune", "commands", "markdown", "label-sync",
                                      "held-faces", "profile-rewrite"]
    assert runtime.settings.session_expiry_s == 3600  # a stable client id keeps its broker session


def test_api_only_runs_the_health_job_without_a_connection(start_cloud) -> None:
    before = set(threading.enumerate())
    _, runtime = start_cloud()
    started = _new_threads(before)
    assert runtime.ingest is None and runtime.commands is None
    assert not [name for name in started if name.startswith("paho-mqtt-client-")]
    assert runtime.scheduler.jobs == ["health-rollup", "device-health", "source-health", "alert-notify",
                                      "campaign-send", "audience-refresh", "journeys", "points-notices", "loyalty-orders",
                                      "loyalty-expiry", "profile-rewrite"]
