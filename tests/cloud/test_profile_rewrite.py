"""A change of the survivorship rules rewrites the stored profiles in batches, resumably."""

from __future__ import annotations

from cloud.cdp import profile_rewrite, survivorship
from cloud.db import Database
from cloud.runtime import open_cdp

PERSONS = 7


def _brand(db: Database) -> None:
    """Seven persons, each a CRM record named 甲 and a later WeChat record named 乙 merged into it."""
    with db.transaction() as tx:
        for i in range(PERSONS):
            tx.execute("INSERT INTO members (id, source, source_key, name, created) VALUES (?, 'members', ?, '甲', "
                       "'2026-01-01')", (f"p{i}", f"c{i}"))
            tx.execute("INSERT INTO members (id, source, source_key, name, created, merged_into) "
                       "VALUES (?, 'wechat', ?, '乙', '2026-02-01', ?)", (f"w{i}", f"u{i}", f"p{i}"))
        survivorship.store(tx)


def _stored_names(db: Database) -> dict[str, str]:
    return dict(db.rows("SELECT member_id, name FROM person_profiles"))


def test_a_rule_change_is_written_a_batch_at_a_time_and_resumes(db: Database, db_location: str) -> None:
    _brand(db)
    assert set(_stored_names(db).values()) == {"甲"}  # the CRM record ranks first
    _, queued = profile_rewrite.change_rules(db, source_priority=["wechat", "members"], rules=None, actor="hq")
    assert (queued["status"], queued["done"], queued["total"]) == ("running", 0, PERSONS)
    assert set(_stored_names(db).values()) == {"甲"}  # stored profiles keep the old values until the job runs

    assert profile_rewrite.run_batch(db, size=3) == 3
    names = _stored_names(db)
    assert [names[f"p{i}"] for i in range(PERSONS)] == ["乙"] * 3 + ["甲"] * 4  # in id order
    assert profile_rewrite.rewrite(db, queued["id"])["done"] == 3

    # a restart: another process on the same database carries on after the last committed batch
    reopened = open_cdp(db_location, sample_catalogue=False)
    try:
        assert profile_rewrite.run(reopened, size=3) == PERSONS - 3
        progress = profile_rewrite.rewrite(reopened, queued["id"])
        assert (progress["status"], progress["done"]) == ("done", PERSONS) and progress["finished"]
        assert set(_stored_names(reopened).values()) == {"乙"}
        assert profile_rewrite.run_batch(reopened) is None  # nothing left to do
    finally:
        reopened.close()


def test_a_second_change_supersedes_the_running_rewrite(db: Database) -> None:
    _brand(db)
    _, first = profile_rewrite.change_rules(db, source_priority=["wechat", "members"], rules=None, actor="hq")
    assert profile_rewrite.run_batch(db, size=2) == 2
    _, second = profile_rewrite.change_rules(db, source_priority=None, rules={"name": "first_non_empty"}, actor="hq")
    assert profile_rewrite.rewrite(db, first["id"])["status"] == "superseded"
    assert profile_rewrite.latest(db)["id"] == second["id"]
    assert second["rules"]["rules"]["name"] == "first_non_empty"
    assert profile_rewrite.run(db, size=3) == PERSONS  # from the first person again
    # wechat first but name by the record observed first: the CRM record's
    assert set(_stored_names(db).values()) == {"甲"}
    assert profile_rewrite.rewrite(db, second["id"])["status"] == "done"
