"""A member card's reads about the person gathered and run together (``cloud.db.Gather``): one
pipeline on PostgreSQL, the same answers as asked one by one, on both engines."""

from __future__ import annotations

from typing import Any

import pytest

from cloud.arrivals.cards import CardBuilder
from cloud.cdp import members
from cloud.db import Database, Gather, Read, Tx
from cloud.faces.matching import Match
from protocol.messages import new_id
from tests.cloud.test_cloud_cards import _arrival
from tests.recommend.history import order, product


class PersonStatements:
    """Statements that name the person, run on their own or inside a gather (``Tx.reads``)."""

    def __init__(self, person: str) -> None:
        self.person = person
        self.alone: list[str] = []
        self.gathers: list[int] = []  # reads in each gather that name the person
        self._gathering = False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        execute, reads = Tx.execute, Tx.reads

        def counted_execute(tx: Tx, sql: str, params: Any = ()) -> int:
            if not self._gathering and self.person in tuple(params):
                self.alone.append(sql)
            return execute(tx, sql, params)

        def counted_reads(tx: Tx, *statements: tuple[str, Any]) -> list[list[dict[str, Any]]]:
            self.gathers.append(sum(self.person in tuple(params) for _, params in statements))
            self._gathering = True
            try:
                return reads(tx, *statements)
            finally:
                self._gathering = False

        monkeypatch.setattr(Tx, "execute", counted_execute)
        monkeypatch.setattr(Tx, "reads", counted_reads)


@pytest.fixture
def wang(db: Database) -> members.Member:
    member = members.add_member(db, name="王芳", phone="13800000019", gender="female", tier="金卡", tags=[],
                                categories=["护肤"], face_consent=True)
    product(db, "T-1", "修护精华露 50ml", "护肤", 1280.0)
    product(db, "T-2", "保湿面霜", "护肤", 680.0)
    return member


def test_a_member_card_reads_the_person_in_one_gather(db: Database, wang: members.Member,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    order(db, wang.id, 3, [("T-1", "护肤", 1280.0)])
    builder = CardBuilder(db, ttl_s=60)
    counted = PersonStatements(wang.id)
    counted.install(monkeypatch)

    card = builder.build(_arrival(), Match(wang, 0.8, "member"), new_id())

    assert card.member is not None and card.member.last_purchase is not None
    # profile, points, consent history, purchase lines, tags, visit count, photo, last order's lines...
    assert len(counted.gathers) == 1 and counted.gathers[0] >= 8
    # ...and on its own only the shown script's log, a write that needs the script the reads chose
    assert len(counted.alone) == 1 and counted.alone[0].startswith("INSERT INTO script_shown")


def test_two_paid_orders_at_the_same_second_name_the_one_the_profile_lists_first(db: Database,
                                                                                wang: members.Member) -> None:
    first = order(db, wang.id, 2, [("T-1", "护肤", 1280.0)])
    second = order(db, wang.id, 2, [("T-2", "护肤", 680.0)])  # the same ts: the id breaks the tie

    summary = CardBuilder(db, ttl_s=60).build(_arrival(), Match(wang, 0.8, "member"), new_id()).member

    assert summary is not None and summary.last_purchase is not None
    newest = max(first, second)
    assert summary.last_purchase.items == ["保湿面霜" if newest == second else "修护精华露 50ml"]
    assert summary.last_purchase.amount == pytest.approx(680.0 if newest == second else 1280.0)


def test_a_gathered_read_answers_as_it_does_alone_and_only_once_run(db: Database, wang: members.Member) -> None:
    count = Read("SELECT COUNT(*) AS n FROM members WHERE id = ?", (wang.id,), lambda rows: int(rows[0]["n"]))
    names = Read.rows("SELECT name FROM members WHERE id = ?", (wang.id,)).then(lambda rows: [r["name"] for r in rows])
    gather = Gather()
    counted, named = gather.add(count), gather.add(names)
    with pytest.raises(RuntimeError):
        counted()

    gather.run(db)

    assert (counted(), named()) == (count.run(db), names.run(db)) == (1, ["王芳"])
