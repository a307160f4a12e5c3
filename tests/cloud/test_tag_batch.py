"""The nightly tag batch (``tags.refresh(db)``) reads the whole brand in a few scans; the refresh an
import or a merge runs (``tags.refresh(db, persons)``) reads only its persons' records. Both must
write the same stats, profiles and tags, or a person's tags would depend on which one ran last."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud.cdp import tags
from cloud.cdp.segments import Condition
from cloud.cdp.survivorship import PROFILE_COLUMNS
from cloud.db import Database
from cloud.synthetic.bulk import load_for_benchmark

AS_OF = datetime(2026, 12, 1, tzinfo=UTC)
STAT_COLUMNS = ", ".join(c for c in tags._STAT_COLUMNS if c != "updated")


def _written(db: Database) -> dict[str, list[tuple]]:
    profile_columns = ", ".join(c for c in PROFILE_COLUMNS if c != "updated")
    return {
        "stats": db.rows(f"SELECT {STAT_COLUMNS} FROM person_stats ORDER BY member_id"),
        "profiles": db.rows(f"SELECT {profile_columns} FROM person_profiles ORDER BY member_id"),
        "tags": db.rows("SELECT member_id, tag, value, source FROM person_tags ORDER BY member_id, tag, source"),
    }


def test_the_batch_writes_what_the_per_person_refresh_writes(db: Database) -> None:
    load_for_benchmark(db, persons=400, stores=5, seed=3, end=AS_OF)  # records linked by OneID
    tags.set_rule(db, "skincare_fan", "true", Condition.model_validate(
        {"bought": {"category": "护肤", "within_days": 90}}))
    tags.set_rule(db, "lapsed", "yes", Condition.model_validate(
        {"dim": {"name": "lifecycle", "op": "in", "value": ["dormant", "churned"]}}))
    tags.refresh(db, as_of=AS_OF)  # also cuts the RFM quintiles the per-person refresh then reuses
    batch = _written(db)
    persons = [r[0] for r in db.rows("SELECT id FROM members WHERE merged_into IS NULL ORDER BY id")]
    merged = db.scalar("SELECT COUNT(*) FROM members WHERE merged_into IS NOT NULL")
    assert merged > 0 and len(batch["stats"]) == len(batch["profiles"]) == len(persons)
    assert {(tag, source) for _, tag, _, source in batch["tags"]} >= {("skincare_fan", "rule"), ("lapsed", "rule")}

    with db.transaction() as tx:
        for table in ("person_stats", "person_profiles", "person_tags"):
            tx.execute(f"DELETE FROM {table}")
    tags.refresh(db, persons, as_of=AS_OF)
    assert _written(db) == batch
