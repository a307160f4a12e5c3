"""Fuzz the segment language: any JSON-shaped definition compiles to SQL or is refused with a
reason, never anything else; and every compiled one runs on SQLite (count, page, split).

The database holds a small synthetic brand (orders, lines, visits, tags), so compiled conditions
meet real rows, NULLs and joins, not an empty schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cloud.cdp import segments, tags
from cloud.cdp.segments import Condition
from cloud.db import Database
from cloud.runtime import open_cdp
from cloud.synthetic.brand import generate
from tests.fuzz.jsonish import JSON_JUNK, from_json_schema, mutated

SCHEMA = from_json_schema(Condition.model_json_schema())
#: Values this brand really has, so some conditions select people instead of nobody.
KNOWN = st.sampled_from(["护肤", "彩妆", "st-0000", "st-0001", "tmall", "jd", "pos", "wechat", "active", "high"])
DEFINITIONS = st.one_of(JSON_JUNK, SCHEMA, mutated(SCHEMA),
                        st.dictionaries(st.sampled_from(["store", "channel"]), KNOWN, min_size=1, max_size=1))
AS_OF = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture(scope="module")
def brand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = open_cdp(str(Path(tmp_path_factory.mktemp("segments")) / "cdp.db"))
    generate(db, persons=80, stores=3, end=AS_OF)
    tags.refresh(db, as_of=AS_OF)
    yield db
    db.close()


def compile_or_refuse(definition: object) -> Condition | None:
    """The condition, or None after checking the refusal names each problem and where it is."""
    try:
        return Condition.of(definition)
    except ValidationError as exc:
        assert exc.errors(), definition
        for error in exc.errors():
            assert error["msg"].strip(), error
        return None


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(DEFINITIONS, st.sampled_from([None, "st-0001"]))
def test_any_definition_compiles_and_runs_or_is_refused(brand: Database, definition: object, scope: str | None) -> None:
    condition = compile_or_refuse(definition)
    if condition is None:
        return
    total = segments.count(brand, condition, as_of=AS_OF, store=scope)
    rows = segments.page(brand, condition, limit=5, offset=0, as_of=AS_OF, store=scope)
    assert 0 <= len(rows) <= min(total, 5)
    split = segments.split_counts(brand, condition, salt="fuzz", split=(50, 50), as_of=AS_OF, store=scope)
    assert sum(split.values()) == total
    assert Condition.of(condition.dump()) == condition  # a stored segment reloads as the same condition


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(DEFINITIONS, st.sampled_from([None, "st-0001"]))
def test_any_definition_long_run(brand: Database, definition: object, scope: str | None) -> None:
    test_any_definition_compiles_and_runs_or_is_refused.hypothesis.inner_test(brand, definition, scope)
