"""The codec: round trips, and every way a payload can be wrong yields a DecodeError naming why."""

from __future__ import annotations

import base64
import json
import os
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from protocol.codec import MAX_PAYLOAD_BYTES, DecodeError, decode, encode
from protocol.embedding import Embedding
from protocol.messages import (
    Arrival,
    DeviceState,
    FaceQuality,
    Feedback,
    FloorAssistant,
    GuideCard,
    MemberSummary,
    Recommendation,
    StaffFloor,
    StaffSign,
    StageTimes,
    new_id,
)

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def arrival(**overrides) -> Arrival:
    fields = dict(
        event_id=new_id(), ts=NOW, brand="demo", store="s1", device="edge1", camera="cam1", track_id="t1",
        embedding=Embedding.from_vector(np.random.default_rng(1).standard_normal(128)),
        quality=FaceQuality(det_score=0.9, face_px=120, bbox=(10, 20, 130, 160)),
        model_pack="scrfd500m-mbf",
    )
    return Arrival(**(fields | overrides))


def card(member: MemberSummary | None) -> GuideCard:
    return GuideCard(
        card_id=new_id(), ts=NOW, visit_id="visit0001", arrival_event_id="event0001", brand="demo", store="s1", arrival_ts=NOW,
        member=member, confidence=0.71 if member else 0.2,
        recommendations=[Recommendation(sku="SKU-1", name="精华液", price=399.0, reason="偏好品类：护肤")] if member else [],
        script="王女士您好，欢迎光临！" if member else "欢迎光临", expires_at=NOW + timedelta(minutes=2),
    )


MESSAGES = [
    arrival(),
    card(MemberSummary(member_id="m1", name="王芳", title="王女士", tier="金卡会员", tags=["高价值"])),
    card(None),
    DeviceState(brand="demo", store="s1", device="edge1", role="edge", state="offline", ts=NOW),
    Feedback(feedback_id=new_id(), card_id="card00001", visit_id="visit0001", brand="demo", store="s1", screen="main",
             action="sold", amount=399.0, ts=NOW),
    StaffSign(sign_id=new_id(), brand="demo", store="s1", screen="main", assistant="s1-a1", action="sign_in", ts=NOW),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.type)
def test_round_trip(message):
    assert decode(encode(message)) == message
    assert decode(encode(message), type(message)) == message


def test_chinese_text_survives():
    payload = encode(MESSAGES[1])
    assert decode(payload).member.name == "王芳"


@pytest.mark.parametrize("dtype", ["f16", "i8"])
def test_embedding_is_compact_and_close(dtype):
    vec = np.random.default_rng(2).standard_normal(512).astype(np.float32)
    emb = Embedding.from_vector(vec, dtype)
    restored = emb.to_vector()
    unit = vec / np.linalg.norm(vec)
    assert float(unit @ restored) > 0.999
    assert len(emb.data) <= 512 * 2 * 4 / 3 + 4  # base64 of 2 bytes per value at most


def mutate(message, **changes) -> bytes:
    """The message's JSON with ``a__b__0__c`` set to a value (or deleted: ``KeyError``); a digit indexes a list."""
    data = json.loads(encode(message))
    for path, value in changes.items():
        node = data
        keys = [int(key) if key.isdigit() else key for key in path.split("__")]
        for key in keys[:-1]:
            node = node[key]
        if value is KeyError:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    "payload, field",
    [
        (b"", None),
        (b"\xff\xfe\x00garbage", None),
        (b"[1, 2, 3]", None),
        (b'"just a string"', None),
        (b"{not json", None),
        (mutate(arrival(), v=KeyError), "v"),
        (mutate(arrival(), v=2), "v"),
        (mutate(arrival(), v="1"), "v"),
        (mutate(arrival(), type="teleport"), "type"),
        (mutate(arrival(), event_id=KeyError), "arrival.event_id"),
        (mutate(arrival(), store=KeyError), "arrival.store"),
        (mutate(arrival(), ts=KeyError), "arrival.ts"),
        (mutate(arrival(), store="s1/#"), "arrival.store"),
        (mutate(arrival(), ts="yesterday"), "arrival.ts"),
        (mutate(arrival(), ts="2026-11-22T10:00:00"), "arrival.ts"),  # naive time is ambiguous
        (mutate(arrival(), ts="0001-01-01T00:00:00+08:00"), "arrival.ts"),  # no UTC time exists
        (mutate(arrival(), ts="9999-12-31T23:59:59-05:30"), "arrival.ts"),
        (mutate(arrival(), ts="1999-12-31T23:59:59+00:00"), "arrival.ts"),  # outside 2000-2099
        (mutate(arrival(), quality__det_score=1.5), "arrival.quality.det_score"),
        (mutate(arrival(), surprise=1), "arrival.surprise"),
        (mutate(arrival(), embedding__data="!!!notbase64"), "arrival.embedding"),
        (mutate(arrival(), embedding__dim=64), "arrival.embedding"),
        (mutate(arrival(), embedding__dim=100000), "arrival.embedding.dim"),
        (mutate(arrival(), embedding__dtype="f64"), "arrival.embedding.dtype"),
        (mutate(arrival(), embedding__data=base64.b64encode(b"\x00" * 256).decode()), "arrival.embedding"),
        (mutate(arrival(), embedding__data=base64.b64encode(np.full(128, np.nan, "<f2").tobytes()).decode()), "arrival.embedding"),
        (mutate(MESSAGES[5], action="clock_in"), "staff_sign.action"),
        (mutate(MESSAGES[5], assistant=""), "staff_sign.assistant"),
        (mutate(MESSAGES[5], sign_id=KeyError), "staff_sign.sign_id"),
    ],
)
def test_rejections_name_the_field(payload, field):
    with pytest.raises(DecodeError) as err:
        decode(payload)
    assert err.value.field == field
    assert err.value.reason


FLOOR = StaffFloor(brand="demo", store="s1", sign_id=new_id(), ts=NOW, until=NOW + timedelta(hours=14), assistants=[
    FloorAssistant(assistant="s1-a1", name="王静", since=NOW - timedelta(hours=1), screen="main"),
    FloorAssistant(assistant="小李", name=None, since=NOW, screen="door")])  # a name the staff file does not list


def test_the_floor_round_trips_with_its_chinese_names():
    assert decode(encode(FLOOR), StaffFloor) == FLOOR
    assert [a.name for a in decode(encode(FLOOR), StaffFloor).assistants] == ["王静", None]


@pytest.mark.parametrize(("payload", "field"), [
    (mutate(FLOOR, assistants__0__assistant=""), "assistants.0.assistant"),
    (mutate(FLOOR, assistants__1__screen="a/#"), "assistants.1.screen"),
    (mutate(FLOOR, assistants__0__since="2026-11-22T09:00:00"), "assistants.0.since"),
    (mutate(FLOOR, assistants__0__name=KeyError), "assistants.0.name"),
    (mutate(FLOOR, until=KeyError), "until"),
    (mutate(FLOOR, sign_id=KeyError), "sign_id"),  # None when no sign sent it, but never left out
    (mutate(FLOOR, store="s1/+"), "store"),
])
def test_a_bad_floor_names_its_field(payload, field):
    with pytest.raises(DecodeError) as err:
        decode(payload, StaffFloor)
    assert err.value.field == field


@pytest.mark.parametrize("where", ["member.last_visit", "member.last_purchase.ts", "timings.capture", "expires_at"])
def test_a_time_out_of_range_is_found_at_any_depth(where):
    """The time check walks only the fields whose type can hold a time, and still every one of them."""
    data = json.loads(encode(card(MemberSummary(member_id="m1", name="王芳", title="王女士", tier="金卡会员")).model_copy(
        update={"timings": StageTimes(capture=NOW)})))
    data["member"]["last_purchase"] = {"ts": NOW.isoformat(), "items": [], "amount": 1.0}
    node, *path = data, *where.split(".")
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = "1999-12-31T23:59:59+00:00"
    for expected, prefix in ((GuideCard, ""), (None, "guide_card.")):
        with pytest.raises(DecodeError) as err:
            decode(json.dumps(data), expected)
        assert err.value.field == prefix + where
        assert "outside 2000-2099" in err.value.reason


def test_expected_type_is_enforced():
    with pytest.raises(DecodeError) as err:
        decode(encode(MESSAGES[3]), Arrival)
    assert err.value.field == "type"


def test_oversized_payload_is_rejected_before_parsing():
    huge = b'{"v": 1, "pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    with pytest.raises(DecodeError, match="exceeds"):
        decode(huge)


def test_huge_embedding_is_rejected():
    big = Embedding.from_vector(np.ones(2048)).model_dump()
    data = json.loads(encode(arrival()))
    data["embedding"] = big | {"dim": 4096, "data": base64.b64encode(b"\x01\x3c" * 4096).decode()}
    with pytest.raises(DecodeError) as err:
        decode(json.dumps(data).encode())
    assert err.value.field.startswith("arrival.embedding")


@pytest.mark.parametrize("cut", [1, 10, 100, 300, -1])
def test_truncated_payloads(cut):
    payload = encode(arrival())
    with pytest.raises(DecodeError):
        decode(payload[:cut])


def test_random_bytes_never_escape_as_anything_but_decode_error():
    rng = random.Random(7)
    valid = encode(arrival())
    for _ in range(2000):
        choice = rng.random()
        if choice < 0.3:
            payload = os.urandom(rng.randint(0, 300))
        elif choice < 0.7:  # flip bytes of a valid message
            payload = bytearray(valid)
            for _ in range(rng.randint(1, 8)):
                payload[rng.randrange(len(payload))] = rng.randrange(256)
            payload = bytes(payload)
        else:  # splice a valid message
            a, b = sorted(rng.randrange(len(valid)) for _ in range(2))
            payload = valid[:a] + valid[b:]
        try:
            decode(payload)
        except DecodeError as exc:
            assert str(exc)
