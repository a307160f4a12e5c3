"""What assistants did with the cards, and the negative evidence "not this person" carries.

Every action is stored once (``feedback_id``) against the visit and card it names, with the member
and confidence the card was shown with. A ``not_this_person`` is a wrong match: besides being
stored, it increments the member's doubt counter, and the matcher then demands
``DOUBT_STEP`` more similarity per doubt (at most ``DOUBT_MAX``) before naming that member again:
an enrolment photo that attracts strangers loses trust without anyone deleting it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from cloud.db import Database
from cloud.clock import iso, utcnow
from protocol.messages import Feedback

DOUBT_STEP = 0.02
DOUBT_MAX = 0.10

FeedbackOutcome = Literal["stored", "duplicate", "unknown_visit"]


def record(db: Database, feedback: Feedback) -> FeedbackOutcome:
    with db.transaction() as tx:
        visit = tx.one("SELECT member_id, confidence FROM visits WHERE id = ? AND store = ? AND card_id = ?",
                       (feedback.visit_id, feedback.store, feedback.card_id))
        if visit is None:
            return "unknown_visit"
        inserted = tx.execute(
            "INSERT INTO feedback (feedback_id, brand, store, screen, card_id, visit_id, member_id, confidence, "
            "action, assistant, amount, ts, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (feedback.feedback_id, feedback.brand, feedback.store, feedback.screen, feedback.card_id,
             feedback.visit_id, visit["member_id"], visit["confidence"], feedback.action, feedback.assistant,
             feedback.amount, iso(feedback.ts), iso(utcnow())))
        if not inserted:
            return "duplicate"
        if feedback.action == "not_this_person" and visit["member_id"] is not None:
            tx.execute(
                "INSERT INTO member_doubts (member_id, not_this_person, updated) VALUES (?, 1, ?) "
                "ON CONFLICT (member_id) DO UPDATE SET not_this_person = member_doubts.not_this_person + 1, "
                "updated = excluded.updated", (visit["member_id"], iso(utcnow())))
    return "stored"


def threshold_penalty(db: Database, person: str) -> float:
    """Extra similarity the matcher demands for this person, from their "not this person" count."""
    return min(DOUBT_MAX, DOUBT_STEP * doubts(db, person))


def doubts(db: Database, person: str) -> int:
    return int(db.scalar("SELECT not_this_person FROM member_doubts WHERE member_id = ?", (person,)) or 0)


def listing(db: Database, store: str, start: datetime | None, end: datetime | None, *, limit: int,
            offset: int) -> list[dict]:
    where, args = ["store = ?"], [store]
    if start is not None:
        where.append("ts >= ?")
        args.append(iso(start))
    if end is not None:
        where.append("ts < ?")
        args.append(iso(end))
    return db.query(
        f"SELECT feedback_id, screen, card_id, visit_id, member_id, confidence, action, assistant, amount, ts "
        f"FROM feedback WHERE {' AND '.join(where)} ORDER BY ts DESC, feedback_id LIMIT ? OFFSET ?",
        (*args, limit, offset))
