"""One codec for every message: JSON, schema-versioned, size-bounded.

Decoding never raises anything but ``DecodeError``, which names the offending field, so a worker
can log the reason, count the reject and carry on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin, overload

from pydantic import BaseModel, TypeAdapter, ValidationError

from protocol import SCHEMA_VERSION
from protocol.messages import AnyMessage, Message

#: Larger than any legitimate message (a 2048-d f16 embedding is ~5.5 KB of base64).
MAX_PAYLOAD_BYTES = 64 * 1024

#: Every timestamp in a message must fall in this window (UTC). Year-1 or year-9999 times with an
#: offset cannot even be converted to UTC, and arithmetic on them overflowed deep in the cloud's
#: store (OverflowError, counted as a worker error) and in the ESL gateway (fuzz finding).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

M = TypeVar("M", bound=Message)
_any = TypeAdapter(AnyMessage)


class DecodeError(ValueError):
    """A payload that is not a valid message. ``field`` is the dotted path of the culprit."""

    def __init__(self, field: str | None, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json(exclude_none=False).encode()


@overload
def decode(payload: bytes | str) -> Message: ...
@overload
def decode(payload: bytes | str, expected: type[M]) -> M: ...


def decode(payload: bytes | str, expected: type[M] | None = None) -> Message:
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise DecodeError(None, f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    message = _validated(raw, expected)
    if message is None:  # something is wrong with it: the checks below say what, one by one
        message = _checked(raw, expected)
    _check_times(message, "" if expected else message.type)  # type: ignore[attr-defined]  # pydantic's path, untyped
    return message


def _validated(raw: bytes, expected: type[M] | None) -> Message | None:
    """The message, parsed and validated in one pass of pydantic's own JSON parser, if it is valid and
    carries its ``v`` and ``type`` (their defaults would fill them in here); None for anything else.
    Most payloads are valid, and this pass costs about half of parsing with ``json`` and validating the
    dict (issue 19, tenth pass); a payload it refuses goes through ``_checked``, which accepts exactly
    what this accepts and names the reason for the rest (both parsers take a repeated key's last value
    and NaN, and refuse lone surrogates in strings only here, which then go the checked way)."""
    try:
        message = _any.validate_json(raw) if expected is None else expected.model_validate_json(raw)
    except ValidationError:
        return None
    return message if _SIGNED <= message.model_fields_set else None


_SIGNED = frozenset({"v", "type"})


def _checked(raw: bytes, expected: type[M] | None) -> Message:
    """The message, or the DecodeError of the first thing wrong with it, in order: JSON, object, schema
    version, type, then the fields."""
    try:
        data = json.loads(raw)
    except ValueError as exc:  # bad UTF-8 or JSON, and integers longer than Python converts (4300 digits)
        raise DecodeError(None, f"payload is not UTF-8 JSON: {exc}") from None
    except RecursionError:  # "[[[[..." within the size limit nests deeper than the parser recurses
        raise DecodeError(None, "payload nests too deeply to be a message") from None
    if not isinstance(data, dict):
        raise DecodeError(None, f"payload must be a JSON object, got {type(data).__name__}")
    if "v" not in data:
        raise DecodeError("v", "missing schema version")
    if data["v"] != SCHEMA_VERSION:
        raise DecodeError("v", f"unsupported schema version {data['v']!r}; this build speaks {SCHEMA_VERSION}")
    if expected is not None and data.get("type") != expected.model_fields["type"].default:
        raise DecodeError(
            "type", f"expected {expected.model_fields['type'].default!r}, got {data.get('type')!r}"
        )
    try:
        return _any.validate_python(data) if expected is None else expected.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or ("type" if first["type"].startswith("union_tag") else None)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise DecodeError(field, first["msg"] + more) from None


def plausible(moment: datetime) -> bool:
    """Whether a time falls in [EARLIEST, LATEST): what every message's times and the API's time
    parameters must do (year 1 or 9999 with an offset has no UTC time at all)."""
    try:
        return EARLIEST <= moment.astimezone(UTC) < LATEST
    except OverflowError:
        return False


def _check_times(value: Any, path: str) -> None:
    """DecodeError for the first timestamp outside [EARLIEST, LATEST), anywhere in the message: only the
    fields whose type can hold one are walked (``_timed_fields``), 2 of an arrival's 32."""
    if isinstance(value, datetime):
        if not plausible(value):
            raise DecodeError(path, f"time {value.isoformat()} is outside {EARLIEST.year}-{LATEST.year - 1}")
    elif isinstance(value, BaseModel):
        for name in _timed_fields(type(value)):
            _check_times(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_times(item, f"{path}.{index}")


@cache
def _timed_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` (in their order) whose declared type can hold a datetime, at any depth."""
    return tuple(name for name, info in model.model_fields.items() if _may_hold_time(info.annotation, {model}))


_NO_TIME = (str, int, float, bool, bytes, type(None))


def _may_hold_time(annotation: Any, seen: set[type]) -> bool:
    """Whether a value of this declared type can be or contain a datetime. Anything not recognised as
    timeless (``Any``, a type pydantic wraps such as ``AwareDatetime``, a dict) counts as one: walking a
    field too many costs a call, walking one too few would let a time through unchecked."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _may_hold_time(get_args(annotation)[0], seen)
    if origin is Literal:
        return False
    if origin is not None:  # a union, list, tuple, dict: any of its members
        return any(_may_hold_time(arg, seen) for arg in get_args(annotation) if arg is not Ellipsis)
    if isinstance(annotation, type):
        if issubclass(annotation, datetime):
            return True
        if issubclass(annotation, _NO_TIME):  # str enums too
            return False
        if issubclass(annotation, BaseModel):
            if annotation in seen:  # a model that contains itself: its times are checked where it starts
                return False
            return any(_may_hold_time(info.annotation, seen | {annotation}) for info in annotation.model_fields.values())
    return True
