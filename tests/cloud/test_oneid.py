"""OneID on both engines: priorities, limits, blocklist, soft evidence, split, replay."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from cloud.cdp import members, oneid, verification
from cloud.db import Database

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _record(db: Database, key: str, identifiers: list[tuple[str, str]], *, minute: int = 0,
            resolve: bool = True) -> str:
    """A source record created ``minute`` minutes after T0, with its identifiers."""
    with db.transaction() as tx:
        tx.execute("INSERT INTO members (id, source, source_key, created) VALUES (?, 'test', ?, ?)",
                   (key, key, (T0 + timedelta(minutes=minute)).isoformat()))
        oneid.add_identifiers(tx, key, identifiers)
        if resolve:
            oneid.resolve_around(tx, [key], actor="test")
    return key


def _person(db: Database, record: str) -> str | None:
    return members.person_id(db, record)


def _persons(db: Database) -> int:
    return int(db.scalar("SELECT COUNT(*) FROM members WHERE merged_into IS NULL"))


def test_shared_phone_links_records_into_the_earliest_records_person(db: Database) -> None:
    a = _record(db, "crm1", [("member_card", "MC1"), ("phone", "13800000001")])
    b = _record(db, "tmall1", [("tmall_buyer", "nick"), ("phone", "+86 138 0000 0001".replace(" ", "")[3:])],
                minute=5)

    assert _person(db, b) == a
    graph = oneid.graph(db, a)
    assert {r["id"] for r in graph["records"]} == {a, b}
    link = next(link for link in graph["links"] if link["status"] == "active")
    assert (link["kind"], link["value"], link["rule"]) == ("phone", "13800000001", "phone")


def test_priorities_decide_which_link_wins_and_replay_follows_a_rule_change(db: Database) -> None:
    # unionid (100) links r2+r3 first; the phone link r1-r2 would then give one person two member
    # cards (limit 1): the phone is contested, the link waits for review and nothing moves.
    r1 = _record(db, "r1", [("phone", "13800000002"), ("member_card", "K1")], resolve=False)
    r2 = _record(db, "r2", [("phone", "13800000002"), ("unionid", "U")], minute=1, resolve=False)
    r3 = _record(db, "r3", [("unionid", "U"), ("member_card", "K2")], minute=2, resolve=False)
    oneid.rebuild(db, actor="test")

    assert _person(db, r3) == r2 and _person(db, r1) == r1
    held = [link for link in oneid.graph(db, r1)["links"] if link["status"] == "review"]
    assert held and held[0]["reason"] == "conflict:limit:member_card"
    queued = db.query("SELECT kind, value, status FROM identity_conflicts")
    assert queued == [{"kind": "phone", "value": "13800000002", "status": "open"}]

    with db.transaction() as tx:
        phone = oneid.rules(tx)["phone"]
        oneid.set_rule(tx, oneid.Rule(**{**phone.__dict__, "priority": 110}))
    result = oneid.rebuild(db, actor="test")

    assert _person(db, r2) == r1 and _person(db, r3) == r3
    assert result.changed_persons
    actions = [row["action"] for row in db.query("SELECT action FROM audit ORDER BY id")]
    assert "merge" in actions and "split" in actions


def test_a_placeholder_phone_does_not_merge_a_thousand_people(db: Database) -> None:
    with db.transaction() as tx:
        for i in range(1000):
            tx.execute("INSERT INTO members (id, source, source_key, created) VALUES (?, 'tmall', ?, ?)",
                       (f"p{i}", f"p{i}", T0.isoformat()))
        blocklist = oneid.Blocklist.load(tx)
        for i in range(1000):
            oneid.add_identifiers(tx, f"p{i}", [("phone", "00000000000"), ("tmall_buyer", f"nick{i}")],
                                  blocklist=blocklist)
    oneid.rebuild(db, actor="test")

    assert _persons(db) == 1000
    assert db.scalar("SELECT COUNT(DISTINCT blocked) FROM identifiers WHERE kind = 'phone'") == 1
    assert db.scalar("SELECT blocked FROM identifiers WHERE kind = 'phone' LIMIT 1") == "placeholder"


def test_masked_and_too_common_values_link_nobody(db: Database) -> None:
    _record(db, "m1", [("phone", "138****1234")])
    _record(db, "m2", [("phone", "138****1234")], minute=1)
    for i in range(25):  # a valid-looking phone on 25 accounts: over the phone rule's max_share (20)
        _record(db, f"s{i}", [("phone", "13912345678")], minute=2 + i, resolve=False)
    result = oneid.rebuild(db, actor="test")

    assert _persons(db) == 27
    reasons = {r[0] for r in db.rows("SELECT reason FROM links WHERE status = 'rejected'")}
    assert reasons == {"value_too_common"}
    assert result.links == 0


def test_a_shared_device_mac_never_merges_two_people_but_is_a_sighting(db: Database) -> None:
    a = _record(db, "a", [("phone", "13800000003"), ("mac", "hash-of-shared-ipad")])
    b = _record(db, "b", [("phone", "13800000004"), ("mac", "hash-of-shared-ipad")], minute=1)
    oneid.add_sighting(db, a, kind="mac", value="hash-of-shared-ipad", score=0.6, store="sh-001", ts=T0)
    oneid.rebuild(db, actor="test")

    assert _person(db, a) == a and _person(db, b) == b
    assert oneid.graph(db, a)["sightings"][0]["kind"] == "mac"
    with pytest.raises(oneid.IdentityError):
        oneid.add_sighting(db, a, kind="phone", value="x", score=1.0, store=None, ts=T0)


def test_split_undoes_a_merge_survives_replay_and_the_audit_shows_both(db: Database) -> None:
    a = _record(db, "a", [("phone", "13800000005")])
    b = _record(db, "b", [("phone", "13800000005"), ("unionid", "UB")], minute=1)
    assert _person(db, b) == a
    link = next(link for link in oneid.graph(db, a)["links"] if link["status"] == "active")

    oneid.split_link(db, link["id"], actor="hq", reason="family members share a phone")

    assert _person(db, b) == b and _person(db, a) == a
    oneid.rebuild(db, actor="replay")
    assert _person(db, b) == b  # the cannot-link pair holds in every replay
    audit = db.query("SELECT action, person_id, detail FROM audit ORDER BY id")
    assert [r["action"] for r in audit if r["action"] in ("merge", "split_link", "split")][:3] == [
        "merge", "split_link", "split"]
    assert json.loads(audit[0]["detail"])["absorbed"] == [b]

    oneid.merge(db, a, b, actor="hq", reason="confirmed at the counter")
    assert _person(db, b) == a
    with pytest.raises(oneid.IdentityError) as refused:
        oneid.merge(db, a, b, actor="hq", reason="again")
    assert refused.value.code == "already_merged"


def test_a_manual_merge_that_breaks_a_limit_is_refused(db: Database) -> None:
    a = _record(db, "a", [("member_card", "C1")])
    b = _record(db, "b", [("member_card", "C2")], minute=1)

    with pytest.raises(oneid.IdentityError) as refused:
        oneid.merge(db, a, b, actor="hq", reason="looks alike")

    assert refused.value.code == "merge_refused" and "limit:member_card" in str(refused.value)
    assert _person(db, b) == b


def test_a_sign_up_with_a_channel_buyers_phone_stays_apart_until_verified(db: Database) -> None:
    buyer = _record(db, "tmall-buyer", [("tmall_buyer", "nick"), ("phone", "13800000006")])
    member = members.add_member(db, name="王芳", phone="13800000006", gender="female", tier="金卡会员", tags=[],
                              categories=[], face_consent=True)

    assert member.id != buyer and member.verified is False and member.face_consent is True
    assert members.member(db, buyer).face_consent is False  # the buyer never consented
    oneid.rebuild(db, actor="test")  # a replay does not release the held identifiers either
    assert _person(db, member.id) == member.id

    sent: list[dict] = []

    class Sms:
        def send(self, phone: str, template: str, params: dict, *, out_id: str | None = None) -> None:
            sent.append({"phone": phone, **params})

    pending = verification.start(db, member.id, sms=Sms(), template="T", actor="test", store=None)  # type: ignore[arg-type]
    assert verification.confirm(db, member.id, pending.id, sent[-1]["code"], actor="test") == buyer
    assert sent[-1]["phone"] == "13800000006"
    assert members.member(db, member.id).id == buyer  # the person keeps the earliest record's id
    assert members.member(db, buyer).face_consent is True  # given by the person who proved the phone


def test_a_blocklist_change_is_replayed_by_the_next_rebuild(db: Database) -> None:
    a = _record(db, "a", [("phone", "13812345678")])
    b = _record(db, "b", [("phone", "13812345678")], minute=1)
    assert _person(db, b) == a

    oneid.add_block(db, "phone", r"^13812345678$", "shop_phone")
    oneid.rebuild(db, actor="replay")

    assert _person(db, b) == b
    assert {r[0] for r in db.rows("SELECT blocked FROM identifiers")} == {"shop_phone"}
    with pytest.raises(oneid.IdentityError):
        oneid.add_block(db, "phone", "(unclosed", "bad")


def test_a_rebuild_that_merges_a_loaded_brand_restates_the_planners_statistics(db: Database) -> None:
    """Statistics taken before anything merged (every ``merged_into`` empty) led SQLite to read one
    person's records by scanning every record; the rebuild that merged them re-reads them."""
    with db.transaction() as tx:
        blocklist = oneid.Blocklist.load(tx)
        for i in range(400):  # 200 pairs sharing a phone
            tx.execute("INSERT INTO members (id, source, source_key, created) VALUES (?, 'crm', ?, ?)",
                       (f"r{i:03d}", f"r{i:03d}", (T0 + timedelta(minutes=i)).isoformat()))
            oneid.add_identifiers(tx, f"r{i:03d}", [("phone", f"1380000{i // 2:04d}")], blocklist=blocklist)
    db.execute("ANALYZE")

    result = oneid.rebuild(db, actor="test")

    assert result.moved == 200 and _persons(db) == 200
    if db.dialect.name == "sqlite":
        plan = db.rows("EXPLAIN QUERY PLAN SELECT id FROM members WHERE id = ? OR merged_into = ?", ("r001", "r001"))
        assert not any(step[-1].startswith("SCAN members") for step in plan), plan
    else:
        assert db.scalar("SELECT null_frac FROM pg_stats WHERE tablename = 'members' AND attname = 'merged_into'") < 1


def test_a_replay_over_dense_conflicts_moves_nobody_and_keeps_every_link(db: Database,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild finds the shared values in its own walk of every identifier and skips the limit
    checks a group's values cannot break: over shared phones, shared cards, manual links and
    cannot-link pairs, replaying it must reproduce its own persons, links and review queue exactly.
    The first rebuild hands its links to the engine a few at a time while the union-find goes on (as a
    large one does in lists of thousands), the replay all at its end: the same links either way."""
    rng = random.Random(7)
    records = [f"r{i:03d}" for i in range(300)]
    with db.transaction() as tx:
        blocklist = oneid.Blocklist.load(tx)
        for record in records:
            tx.execute("INSERT INTO members (id, source, source_key, created) VALUES (?, 'crm', ?, ?)",
                       (record, record, (T0 + timedelta(minutes=rng.randrange(500))).isoformat()))
            pairs = [("phone", f"1380000{rng.randrange(140):04d}")]
            pairs += [("member_card", f"C{rng.randrange(250)}")] if rng.random() < 0.5 else []
            pairs += [("unionid", f"U{rng.randrange(120)}")] if rng.random() < 0.3 else []
            oneid.add_identifiers(tx, record, pairs, blocklist=blocklist)
        for rule in ("manual", "review") * 5:
            a, b = rng.sample(records, 2)
            tx.execute("INSERT INTO links (a, b, kind, value, rule, priority, status, reason, created, actor) "
                       "VALUES (?, ?, 'manual', '', ?, 1000, 'active', '', '', 'test')", (a, b, rule))
            tx.execute("INSERT INTO cannot_link (a, b, created, actor) VALUES (?, ?, '', 'test') ON CONFLICT DO NOTHING",
                       tuple(rng.sample(records, 2)))

    def state() -> tuple[list[tuple], ...]:
        return tuple(sorted(db.rows(sql)) for sql in (
            "SELECT id, merged_into FROM members",
            "SELECT a, b, kind, value, rule, status, reason FROM links",
            "SELECT kind, value, reason, sides, floating, status FROM identity_conflicts"))

    monkeypatch.setattr(oneid, "_LINKS_SENT_TOGETHER", 3)
    first = oneid.rebuild(db, actor="test")
    before = state()
    monkeypatch.setattr(oneid, "_LINKS_SENT_TOGETHER", 10**9)
    replay = oneid.rebuild(db, actor="test")

    assert first.moved > 0 and first.rejected > 0 and before[2]  # merges, refusals and conflicts to keep
    assert replay.moved == 0 and not replay.changed_persons
    assert state() == before
