"""Stage timings (issue 19): optional on arrivals and cards, left out of the JSON when absent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from protocol.codec import DecodeError, decode, encode
from protocol.embedding import Embedding
from protocol.messages import Arrival, FaceQuality, GuideCard, StageTimes

TS = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def arrival(**extra) -> Arrival:
    vector = np.ones(128, np.float32) / np.sqrt(128)
    return Arrival(event_id="e" * 32, ts=TS, brand="b", store="s", device="d", camera="c", track_id="t",
                   embedding=Embedding.from_vector(vector), quality=FaceQuality(det_score=0.9, face_px=80, bbox=(0, 0, 80, 80)),
                   model_pack="p", **extra)


def test_an_untraced_message_encodes_as_before_and_old_payloads_decode():
    payload = encode(arrival())
    assert b"timings" not in payload, "an older consumer (extra fields forbidden) still decodes it"
    assert decode(payload, Arrival).timings is None


def test_timings_travel_as_offsets_from_the_capture():
    trace = StageTimes(capture=TS)
    trace = trace.model_copy(update={"detected_ms": trace.at(TS + timedelta(milliseconds=12.5)), "embedded_ms": 20.0})
    back = decode(encode(arrival(timings=trace)), Arrival)
    assert back.timings == trace and back.timings.detected_ms == 12.5 and back.timings.ingested_ms is None
    card = GuideCard(card_id="c" * 32, visit_id="v" * 32, arrival_event_id="e" * 32, brand="b", store="s", ts=TS,
                     arrival_ts=TS, member=None, confidence=0.1, expires_at=TS + timedelta(minutes=5),
                     timings=trace.model_copy(update={"ingested_ms": 30, "matched_ms": 31, "card_ms": 33}))
    assert decode(encode(card), GuideCard).timings.card_ms == 33


def test_timings_are_checked_like_everything_else():
    good = json.loads(encode(arrival(timings=StageTimes(capture=TS, detected_ms=5))))
    for bad in ({"capture": "2026-12-05T01:00:00"}, {"capture": TS.isoformat(), "bogus_ms": 1},
                {"capture": TS.isoformat(), "queued_ms": -7_200_000}):
        with pytest.raises(DecodeError):
            decode(json.dumps({**good, "timings": bad}), Arrival)
