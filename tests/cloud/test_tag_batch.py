"""The nightly tag batch (``tags.refresh(db)``) reads the whole brand in a few scans; the refresh an
import or a merge runs (``tags.refresh(db, persons)``) reads only its persons' records. Both must
write the same stats, profiles and tags, or a person's tags would depend on which one ran last."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud.cdp import survivorship, tags
from cloud.cdp.segments import Condition
from cloud.cdp.survivorship import PROFILE_COLUMNS, SEGMENT_STATS
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


def test_each_profile_row_carries_its_persons_stats_as_written(db: Database) -> None:
    """Segments read the stats they test from the profile row (``survivorship.SEGMENT_STATS``), so
    every path that writes ``person_stats`` must leave the same values there: the nightly batch, the
    per-person refresh after a merge, and a profile stored again on its own (a sign-up's)."""
    copied = ", ".join(f"pp.{c}" for c in SEGMENT_STATS)
    source = ", ".join(f"s.{c}" for c in SEGMENT_STATS)

    def differing() -> list[tuple]:
        return db.rows(f"SELECT p.id, {copied}, {source} FROM members p "
                       "LEFT JOIN person_profiles pp ON pp.member_id = p.id "
                       "LEFT JOIN person_stats s ON s.member_id = p.id WHERE p.merged_into IS NULL "
                       f"AND NOT (({copied}) IS NOT DISTINCT FROM ({source}))")

    load_for_benchmark(db, persons=200, stores=5, seed=5, end=AS_OF)
    tags.refresh(db, as_of=AS_OF)
    assert db.scalar("SELECT COUNT(*) FROM person_profiles WHERE lifecycle IS NOT NULL") > 100
    assert differing() == []

    buyer = db.scalar("SELECT member_id FROM person_stats WHERE orders > 1 ORDER BY member_id LIMIT 1")
    with db.transaction() as tx:  # the person's stats change (the next refresh); the copy follows it
        tx.execute("DELETE FROM order_lines WHERE member_id IN (SELECT id FROM members WHERE id = ? OR merged_into = ?)",
                   (buyer, buyer))
        tx.execute("DELETE FROM orders WHERE member_id IN (SELECT id FROM members WHERE id = ? OR merged_into = ?)",
                   (buyer, buyer))
    tags.refresh(db, [buyer], as_of=AS_OF)
    assert db.one("SELECT orders, lifecycle FROM person_profiles WHERE member_id = ?", (buyer,)) == {
        "orders": 0, "lifecycle": "prospect"}
    with db.transaction() as tx:
        survivorship.store(tx, [buyer])  # stored again alone: the stats come along
    assert differing() == []
