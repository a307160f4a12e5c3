"""The screen's rules without Qt: visitors only counted, nobody twice, newest first, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kiosk.guide_screen.board import Board, Outcome


def test_a_visitor_is_counted_once_per_visit_and_never_listed(cards):
    board = Board()
    visitor = cards.visitor()
    now = datetime.now(UTC)
    assert board.offer(visitor, now) is Outcome.VISITOR
    assert board.offer(cards.visitor(visit_id=visitor.visit_id), now) is Outcome.DUPLICATE
    assert board.offer(cards.visitor(), now) is Outcome.VISITOR
    assert board.visitors_today == 2
    assert board.cards == []


def test_a_redelivered_card_changes_nothing(cards):
    board = Board()
    card = cards.member(0)
    now = datetime.now(UTC)
    assert board.offer(card, now) is Outcome.SHOWN
    assert board.offer(card, now) is Outcome.DUPLICATE
    assert board.cards == [card]


def test_a_newer_card_for_the_same_member_replaces_the_old_one(cards):
    board = Board()
    now = datetime.now(UTC)
    first, other, again = cards.member(0, age_s=30), cards.member(1, age_s=20), cards.member(0, age_s=1)
    for card in (first, other, again):
        assert board.offer(card, now) is Outcome.SHOWN
    assert board.cards == [again, other]


def test_newest_arrival_first_and_the_oldest_fall_off(cards):
    board = Board(capacity=3)
    now = datetime.now(UTC)
    sent = [cards.member(i, age_s=10 * i) for i in range(4)]  # four different members
    for card in reversed(sent[:3]):
        board.offer(card, now)
    assert board.cards == sent[:3]
    assert board.offer(sent[3], now) is Outcome.CROWDED_OUT  # older than everything on screen


def test_expired_cards_are_refused_and_taken_off(cards):
    board = Board()
    now = datetime.now(UTC)
    assert board.offer(cards.member(0, ttl_s=-1), now) is Outcome.EXPIRED
    short = cards.member(1, ttl_s=5)
    board.offer(short, now)
    assert board.expire(now) == []
    assert board.expire(now + timedelta(seconds=6)) == [short]
    assert board.cards == []


def test_the_visitor_count_restarts_at_local_midnight(cards):
    board = Board()
    midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    late = midnight + timedelta(days=1) - timedelta(minutes=1)
    board.offer(cards.visitor(ttl_s=3 * 86400), late)
    assert board.visitors_today == 1
    board.tick(late + timedelta(minutes=2))
    assert board.visitors_today == 0
