"""Fuzz the codec: whatever bytes arrive, ``decode`` returns a model or raises one DecodeError.

Every message type of the contract is found at run time (each ``protocol`` module is imported and
``Message`` subclasses with a ``type`` tag collected), then fed arbitrary bytes, JSON-shaped junk,
schema-shaped payloads and mutations of them. A decoded message must survive ``encode`` and decode
to the same model again: a payload the cloud accepted must be one it can pass on.
"""

from __future__ import annotations

import importlib
import json
import pkgutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protocol
from protocol.codec import MAX_PAYLOAD_BYTES, DecodeError, _checked, _validated, decode, encode
from protocol.messages import Message
from tests.fuzz.jsonish import JSON_JUNK, dump, from_json_schema, mutated

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def message_types() -> list[type[Message]]:
    """Every concrete message of the contract: imported, not listed, so new ones are fuzzed too."""
    for module in pkgutil.walk_packages(protocol.__path__, "protocol."):
        importlib.import_module(module.name)
    found, todo = [], list(Message.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        tag = cls.model_fields.get("type")
        if tag is not None and isinstance(tag.default, str):
            found.append(cls)
    return sorted(set(found), key=lambda c: c.__name__)


TYPES = message_types()


def check(payload: bytes, expected: type[Message] | None) -> None:
    """The whole property: a model of the expected type that round-trips, or a DecodeError with a reason;
    and whatever the codec's one-pass parse accepts, its field-by-field checks accept as the same model
    (the fast path widens nothing)."""
    fast = _validated(payload, expected) if len(payload) <= MAX_PAYLOAD_BYTES else None
    if fast is not None:
        assert _checked(payload, expected) == fast, f"the two paths disagree on {payload[:200]!r}"
    try:
        message = decode(payload, expected) if expected else decode(payload)
    except DecodeError as exc:
        assert isinstance(exc.reason, str) and exc.reason.strip(), f"empty reason for {payload[:200]!r}"
        assert exc.field is None or (isinstance(exc.field, str) and exc.field), repr(exc.field)
        return
    assert isinstance(message, expected or Message)
    again = encode(message)
    assert decode(again, type(message)) == message


def test_every_message_type_is_found() -> None:
    names = {t.__name__ for t in TYPES}
    assert {"Arrival", "GuideCard", "Feedback", "DeviceState", "Telemetry", "ConfigDesired", "EraseCommand",
            "CommandAck", "LabelCommand", "WifiPresence", "WifiFootfall", "FaceCrop"} <= names


@FUZZ
@given(st.binary(max_size=512), st.sampled_from([None, *TYPES]))
def test_arbitrary_bytes(payload: bytes, expected: type[Message] | None) -> None:
    check(payload, expected)


@FUZZ
@given(JSON_JUNK, st.sampled_from([None, *TYPES]))
def test_json_shaped_junk(value: object, expected: type[Message] | None) -> None:
    check(dump(value), expected)


PATHOLOGICAL = {
    "deep array": "[" * 40_000,
    "deep object": '{"v": 1, "a": ' * 5000,
    "giant number": "1" * 5000,
    "giant version": '{"v": ' + "9" * 5000 + "}",
    "lone surrogates": '{"v": 1, "type": "feedback", "assistant": "' + "\\ud800" * 10 + '"}',
    "boolean version": '{"v": true, "type": "feedback"}',
    "float version": '{"v": 1.0, "type": "feedback"}',
    "byte order mark": "\ufeff{}",
    "oversize": " " * (MAX_PAYLOAD_BYTES + 1),
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
@pytest.mark.parametrize("expected", [None, *TYPES], ids=lambda t: t.__name__ if t else "any")
def test_pathological_json(text: str, expected: type[Message] | None) -> None:
    """Deep nesting, giant numbers, lone surrogates, booleans posing as versions, a BOM, oversize."""
    check(text.encode("utf-8", "surrogatepass"), expected)


@pytest.mark.parametrize("kind", TYPES, ids=lambda t: t.__name__)
@FUZZ
@given(data=st.data())
def test_schema_shaped_and_mutated(kind: type[Message], data: st.DataObject) -> None:
    valid = from_json_schema(kind.model_json_schema())
    payload = data.draw(st.one_of(valid, mutated(valid)))
    check(dump(payload), data.draw(st.sampled_from([None, kind])))


@pytest.mark.parametrize("kind", TYPES, ids=lambda t: t.__name__)
def test_schema_shaped_data_reaches_a_model(kind: type[Message]) -> None:
    """The generator is good enough to produce decodable messages, so mutations start from valid ones."""
    valid = from_json_schema(kind.model_json_schema())
    decoded = 0

    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(valid)
    def count(payload: dict) -> None:
        nonlocal decoded
        try:
            decode(json.dumps(payload), kind)
            decoded += 1
        except DecodeError:
            pass

    count()
    assert decoded > 0, f"no schema-shaped {kind.__name__} decoded: the generator misses a constraint"
