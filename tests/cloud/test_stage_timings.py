"""Issue 19 in the cloud: an arrival's stage timings cross the ingest into its guide card.

The edge's stages (detected, embedded, queued) are copied, the cloud adds ingested, matched and
card, each later than the one before, and an arrival from an edge that does not trace gets a
card traced from its capture time, so the screen's histograms still see the cloud's legs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from prometheus_client import REGISTRY

from protocol import topics, transport
from protocol.messages import StageTimes
from tests.cloud.test_cloud_ingest import BRAND, Guide


@pytest.fixture
def guide(mosquitto) -> Iterator[Guide]:
    screen = Guide(mosquitto.url, "st-timing")
    yield screen
    transport.stop(screen.client)


@pytest.fixture
def edge(mosquitto) -> Iterator[mqtt.Client]:
    broker = transport.BrokerUrl.parse(mosquitto.url)
    client = transport.make_client(broker, "test-edge-timing")
    transport.start(client, broker)
    yield client
    transport.stop(client)


def _observed(stage: str) -> float:
    return REGISTRY.get_sample_value("instore_cloud_stage_seconds_count", {"stage": stage}) or 0.0


def test_the_card_carries_the_edge_stages_and_adds_the_clouds(
    start_cloud, mosquitto, guide: Guide, edge: mqtt.Client, make_arrival, faces_dir: Path
) -> None:
    start_cloud(broker_url=mosquitto.url)
    before = {stage: _observed(stage) for stage in ("ingested", "matched", "card")}
    topic = topics.arrival(BRAND, "st-timing", "edge-01")
    # two different visitors: the same face twice within seconds would be one visitor, one card
    plain = make_arrival(faces_dir / "deepface_id05" / "img14.jpg", brand=BRAND, store="st-timing")
    other = make_arrival(faces_dir / "deepface_id07" / "img16.jpg", brand=BRAND, store="st-timing")
    captured = other.ts - timedelta(seconds=1)  # the edge's stages below all lie before the cloud's
    traced = other.model_copy(update={
        "ts": captured, "timings": StageTimes(capture=captured, detected_ms=12.5, embedded_ms=20.0, queued_ms=21.0)})

    transport.publish(edge, topic, traced).wait_for_publish(5)
    card = guide.next()
    timings = card.timings
    assert timings is not None and timings.capture == traced.ts
    assert (timings.detected_ms, timings.embedded_ms, timings.queued_ms) == (12.5, 20.0, 21.0)
    assert timings.ingested_ms is not None and timings.matched_ms is not None and timings.card_ms is not None
    assert timings.queued_ms <= timings.ingested_ms <= timings.matched_ms <= timings.card_ms

    transport.publish(edge, topic, plain).wait_for_publish(5)
    untraced = guide.next().timings
    assert untraced is not None and untraced.capture == plain.ts and untraced.detected_ms is None
    assert untraced.ingested_ms is not None and untraced.card_ms is not None
    assert all(_observed(stage) >= before[stage] + 2 for stage in before)
