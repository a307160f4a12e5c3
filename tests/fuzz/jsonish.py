"""Hypothesis strategies shared by the fuzzers: JSON-shaped junk, schema-shaped data, mutations.

``from_json_schema`` turns a pydantic model's JSON schema into data that mostly passes it, so a
fuzzer reaches the deep validation paths (model validators, embeddings, nested settings) instead
of bouncing off the first missing field; ``mutated`` then breaks such data one step at a time.
Everything is derived from the schemas at run time: a message type added tomorrow is fuzzed
without touching this file.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
from hypothesis import strategies as st

from protocol.codec import EARLIEST, LATEST
from protocol.embedding import Embedding

#: Unicode including lone surrogates and control characters: JSON can carry both.
_ANY_CHAR = st.characters(codec=None, categories=None)
NASTY_TEXT = st.text(_ANY_CHAR, max_size=40)
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    NASTY_TEXT,
    st.sampled_from(["", "0", "1", "true", "null", "arrival", "instore/v1/+/#", "2026-11-22T10:00:00+00:00"]),
)
JSON_JUNK = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(NASTY_TEXT | st.sampled_from(["v", "type", "ts"]),
                                                                inner, max_size=5),
    max_leaves=20,
)

_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])
_EMBEDDING = st.builds(
    lambda seed, dim, dtype: Embedding.from_vector(np.random.default_rng(seed).standard_normal(dim), dtype)
    .model_dump(mode="json"),
    st.integers(0, 2**32 - 1), st.sampled_from([128, 512]), st.sampled_from(["f16", "i8"]),
)
#: Schema names whose validity JSON schema cannot express; built from the real thing instead.
SPECIAL = {"Embedding": _EMBEDDING}


def dump(value: Any) -> bytes:
    """JSON bytes of ``value`` as a sender would write them (NaN and lone surrogates included)."""
    return json.dumps(value, allow_nan=True).encode()


def from_json_schema(schema: dict, defs: dict | None = None) -> st.SearchStrategy[Any]:
    """Data shaped by a pydantic JSON schema (the subset pydantic emits for our models)."""
    if defs is None:
        defs = {"$memo": {}, **schema.get("$defs", {})}
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        memo = defs["$memo"]  # one strategy per definition, so recursive schemas stay finite
        if name not in memo:
            memo[name] = SPECIAL[name] if name in SPECIAL else st.deferred(lambda: from_json_schema(defs[name], defs))
        return memo[name]
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_json_schema(s, defs) for s in schema[key]])
    if "allOf" in schema:
        return from_json_schema(schema["allOf"][0], defs)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return _object(schema, defs)
    if kind == "array":
        return _array(schema, defs)
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        low = _bound(schema, "minimum", "exclusiveMinimum", 1, -(2**40))
        high = _bound(schema, "maximum", "exclusiveMaximum", -1, 2**40)
        step = schema.get("multipleOf", 1)
        return st.integers(-(-low // step), high // step).map(lambda n: n * step)
    if kind == "number":
        return st.floats(_bound(schema, "minimum", "exclusiveMinimum", 1e-9, -1e9),
                         _bound(schema, "maximum", "exclusiveMaximum", -1e-9, 1e9), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return JSON_JUNK


def _bound(schema: dict, inclusive: str, exclusive: str, step: float, default: float) -> Any:
    if inclusive in schema:
        return schema[inclusive]
    if exclusive in schema:
        return schema[exclusive] + step
    return default


def _object(schema: dict, defs: dict) -> st.SearchStrategy[dict]:
    properties = schema.get("properties", {})
    # A constant with a default (a message's "v" and type tag) is optional to pydantic but the
    # codec's envelope requires it: always present, so the data gets past the envelope.
    required = set(schema.get("required", ())) | {k for k, v in properties.items() if "const" in v}
    if not properties and isinstance(schema.get("additionalProperties"), dict):
        values = from_json_schema(schema["additionalProperties"], defs)
        return st.dictionaries(st.text(string.ascii_lowercase + "_", min_size=1, max_size=12), values, max_size=4)
    fixed = {k: from_json_schema(v, defs) for k, v in properties.items() if k in required}
    optional = {k: from_json_schema(v, defs) for k, v in properties.items() if k not in required}
    return st.fixed_dictionaries(fixed, optional=optional)


def _array(schema: dict, defs: dict) -> st.SearchStrategy[list]:
    if "prefixItems" in schema:
        return st.tuples(*(from_json_schema(s, defs) for s in schema["prefixItems"])).map(list)
    items = from_json_schema(schema.get("items", {}), defs)
    low = schema.get("minItems", 0)
    return st.lists(items, min_size=low, max_size=min(schema.get("maxItems", low + 3), low + 3))


def _string(schema: dict) -> st.SearchStrategy[str]:
    if schema.get("format") == "date-time":  # within the codec's window: outside it is a fixed case
        return st.datetimes(_naive(EARLIEST + timedelta(days=1)), _naive(LATEST - timedelta(days=1)),
                            timezones=_ZONES).map(lambda ts: ts.isoformat())
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", 30), 30)
    if "pattern" in schema:  # our patterns are character classes: repeating a match still matches
        top = schema.get("maxLength", 64)
        return st.from_regex(schema["pattern"], fullmatch=True).filter(bool).map(
            lambda s: (s * (low // len(s) + 1))[:top] if len(s) < low else s[:top])
    return st.text(_ANY_CHAR, min_size=low, max_size=max(low, high))


def _naive(ts: datetime) -> datetime:
    return ts.replace(tzinfo=None)


def _set_path(data: Any, path: list, value: Any) -> Any:
    """A copy of ``data`` with the element at ``path`` replaced (or removed when value is _DROP)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        copy = dict(data)
        if rest or value is not _DROP:
            copy[head] = _set_path(data[head], rest, value)
        else:
            copy.pop(head)
        return copy
    copy = list(data)
    if rest or value is not _DROP:
        copy[head] = _set_path(data[head], rest, value)
    else:
        copy.pop(head)
    return copy


_DROP = object()


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """Valid-shaped data with one to three local breakages: a value swapped for junk, a key
    dropped, an unknown key added, a string cut or doubled."""
    data = draw(valid)
    for _ in range(draw(st.integers(1, 3))):
        path = list(draw(st.sampled_from(_paths(data))))
        action = draw(st.sampled_from(["junk", "drop", "extra", "stretch"]))
        if action == "drop" and path:
            data = _set_path(data, path, _DROP)
        elif action == "extra" and isinstance(data, dict):
            data = {**data, draw(NASTY_TEXT): draw(JSON_JUNK)}
        elif action == "stretch":
            current = _get(data, path)
            if isinstance(current, str):
                data = _set_path(data, path, draw(st.sampled_from([current * 40, current[:1], current + "\x00"])))
        else:
            data = _set_path(data, path, draw(JSON_JUNK))
    return data


def _get(data: Any, path: list) -> Any:
    for step in path:
        data = data[step]
    return data
