"""Malformed MQTT payloads on every topic the cloud's ingest worker subscribes to, through a real
Mosquitto: each is rejected and counted by its reason, none is an error, and the worker keeps
working (a valid arrival sent afterwards still becomes a card).

The topics are derived from the worker's own subscription filters at run time, so a topic kind
added to the ingest (command acks, say) is fuzzed without changing this file. Each run uses a
brand of its own, so other tests' clouds and edges on the shared broker never see these messages
and this test never sees theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cloud.runtime import Runtime
from cloud.settings import Settings
from protocol import topics
from protocol.codec import encode
from protocol.embedding import Embedding
from protocol.facepack import DEFAULT_PACK
from protocol.facepack.engine import FaceEngine
from protocol.messages import Arrival, FaceQuality, Feedback, new_id, now
from tests.fuzz.jsonish import dump
from tests.fuzz.mqttfuzz import FIXED, grown, junk, new_brand, sender, wait_for

STORE, DEVICE = "fz-store", "fz-edge"
#: Ids for the wildcard levels after the device: a command name, a screen, an event kind.
EVENT_KINDS = ("arrival", "presence", "footfall", "no-such-kind")
KNOWN_REASONS = {"bad_topic", "unsupported_event", "invalid_payload", "topic_mismatch", "unknown_device",
                 "revoked_device", "unknown_device_key", "unknown_visit", "unknown_command"}


@pytest.fixture(scope="module")
def cloud(mosquitto, models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    settings_ = Settings(db=str(tmp_path_factory.mktemp("mqttfuzz") / "cdp.db"), broker_url=mosquitto.url,
                         api_key=None)
    runtime = Runtime.open(settings_, engine=FaceEngine.load(DEFAULT_PACK, models_dir))
    runtime.start()
    yield runtime
    runtime.close()


def concrete_topics(filters: list[str], brand: str) -> list[str]:
    """One or more real topics matching each subscription filter, within ``brand``'s store."""
    found = []
    for topic_filter in filters:
        if topic_filter.startswith("$share/"):
            topic_filter = topic_filter.split("/", 2)[2]
        levels = topic_filter.split("/")
        fill = [brand, STORE, DEVICE]
        concrete = [fill.pop(0) if level == "+" and fill else ("main" if level == "+" else level) for level in levels]
        if concrete[-1] == "#":
            found += ["/".join(concrete[:-1] + ["evt", kind]) if concrete[-2] != "evt" else
                      "/".join(concrete[:-1] + [kind]) for kind in EVENT_KINDS]
        else:
            found.append("/".join(concrete))
    return found


def other_message(brand: str) -> bytes:
    """A valid message of another type than any event topic expects (a Feedback), for type confusion."""
    return encode(Feedback(feedback_id=new_id(), card_id=new_id(), visit_id=new_id(), brand=brand, store=STORE,
                           screen="main", action="greeted", ts=now()))


def arrival(brand: str, *, store: str = STORE) -> Arrival:
    vector = np.random.default_rng(7).standard_normal(128)
    return Arrival(event_id=new_id(), ts=now(), brand=brand, store=store, device=DEVICE, camera="door-1",
                   track_id="t1", embedding=Embedding.from_vector(vector),
                   quality=FaceQuality(det_score=0.9, face_px=120, bbox=(0, 0, 100, 100)), model_pack=DEFAULT_PACK)


def test_malformed_payloads_on_every_topic(cloud: Runtime, mosquitto) -> None:
    worker = cloud.ingest
    assert worker is not None
    brand = new_brand()
    subjects = concrete_topics(worker._filters, brand)  # the filters are what is fuzzed
    year_one = arrival(brand).model_dump(mode="json") | {"ts": "0001-01-01T00:00:00+08:00"}  # no UTC time exists
    payloads = FIXED + junk(12) + [other_message(brand), encode(arrival("another-brand")), dump(year_one)]
    before = worker.counts()
    with sender(mosquitto.url) as send:
        sent = sum(send(topic, payloads) for topic in subjects)

        def handled() -> int:
            counts = worker.counts()
            return sum(counts.rejected.values()) - sum(before.rejected.values()) + counts.errors - before.errors

        wait_for(lambda: handled() >= sent, what="the ingest worker")
        after = worker.counts()
        assert after.errors == before.errors, "a malformed payload raised inside the worker"
        new = grown(before.rejected, after.rejected)
        assert sum(new.values()) == sent and set(new) <= KNOWN_REASONS, new
        assert after.cards == before.cards and after.device_reports == before.device_reports

        send(topics.arrival(brand, STORE, DEVICE), [encode(arrival(brand))])
        wait_for(lambda: worker.counts().cards == before.cards + 1, what="the ingest worker")
