"""What assistants did with the cards, and the negative evidence "not this person" carries.

Every action is stored once (``feedback_id``) against the visit and card it names, with the member
and confidence the card was shown with. A ``not_this_person`` is a wrong match: besides being
stored, it increments the member's doubt counter, and the matcher then demands
``DOUBT_STEP`` more similarity per doubt (at most ``DOUBT_MAX``) before naming that member again:
an enrolment photo that attracts strangers loses trust without anyone deleting it.

Visit truth: a ``not_this_person`` also turns the visit into a visitor visit (``member_id``
cleared, whom it was taken for kept in ``corrected_member_id`` with the reason), so the member's
visit counts, segments, profile and store health (which all read ``visits.member_id``) no longer
see it; the health rollup re-rolls that hour because the feedback is new. Every such correction,
and every ``served``/``sold`` on a member card (the assistant confirmed the person), is a labelled
outcome in ``match_labels`` (visit, member, score, label, store, device, ts): the ground truth the
per-store recognition calibration reads. A confirmed member visit may also teach the gallery the
arrival's face, and a "not this person" takes back what it taught (``cloud.faces.learning``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from cloud.arrivals import joining, till
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from cloud.faces import learning
from protocol.messages import Feedback

DOUBT_STEP = 0.02
DOUBT_MAX = 0.10

#: "confirmed": stored, and it was the 是 that made an uncertain visit the member's visit: the ingest
#: then sends the member's full card to the screen that asked (``cloud.arrivals.ingest``)
FeedbackOutcome = Literal["stored", "confirmed", "duplicate", "unknown_visit"]
Label = Literal["not_this_person", "confirmed", "rejected"]
#: the assistant's answer to an uncertain card ("可能是 王女士？请确认"): 是 / 不是
ANSWERS = frozenset({"confirmed", "rejected"})
#: actions on a member card that confirm the person was who the card said
CONFIRMING = frozenset({"served", "sold"})


def record(db: Database, feedback: Feedback) -> FeedbackOutcome:
    outcome: FeedbackOutcome = "stored"
    with db.transaction() as tx:
        visit = tx.one("SELECT member_id, confidence, corrected_member_id, corrected_reason, brand, device, "
                       "arrival_event_id FROM visits "
                       "WHERE id = ? AND store = ? AND card_id = ?",
                       (feedback.visit_id, feedback.store, feedback.card_id))
        if visit is None:
            return "unknown_visit"
        inserted = tx.execute(
            "INSERT INTO feedback (feedback_id, brand, store, screen, card_id, visit_id, member_id, confidence, "
            "action, assistant, amount, receipt, ts, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (feedback.feedback_id, feedback.brand, feedback.store, feedback.screen, feedback.card_id,
             feedback.visit_id, visit["member_id"], visit["confidence"], feedback.action, feedback.assistant,
             feedback.amount, feedback.receipt if feedback.action == "sold" else None, iso(feedback.ts),
             iso(utcnow())))
        if not inserted:
            return "duplicate"
        if feedback.action == "invited":  # 邀请入会 on a visitor's card: the QR code's token
            joining.invite(tx, feedback, visit)
        if feedback.action == "sold" and feedback.receipt:  # the till may have sent the order already
            till.confirm_receipt(tx, store=feedback.store, receipt=feedback.receipt, feedback_id=feedback.feedback_id,
                                 visit_id=feedback.visit_id, assistant=feedback.assistant)
        if feedback.action == "not_this_person" and visit["member_id"] is not None:
            tx.execute(
                "INSERT INTO member_doubts (member_id, not_this_person, updated) VALUES (?, 1, ?) "
                "ON CONFLICT (member_id) DO UPDATE SET not_this_person = member_doubts.not_this_person + 1, "
                "updated = excluded.updated", (visit["member_id"], iso(utcnow())))
            tx.execute("UPDATE visits SET member_id = NULL, corrected_member_id = ?, corrected_reason = ?, "
                       "corrected_ts = ? WHERE id = ?",
                       (visit["member_id"], f"not_this_person:{feedback.assistant or 'assistant'}",
                        iso(feedback.ts), feedback.visit_id))
            _label(tx, feedback, visit, visit["member_id"], "not_this_person")
            learning.unlearn(tx, feedback.visit_id)
        elif feedback.action in CONFIRMING and visit["member_id"] is not None:
            _label(tx, feedback, visit, visit["member_id"], "confirmed")
            learning.learn(tx, feedback.visit_id, visit["member_id"])  # bounded: cloud.faces.learning
        elif (feedback.action in ANSWERS and visit["member_id"] is None and visit["corrected_member_id"] is not None
              and visit["corrected_reason"] == "uncertain"):
            candidate, who = visit["corrected_member_id"], feedback.assistant or "assistant"
            if feedback.action == "confirmed":  # 是: a member visit from now on
                tx.execute("UPDATE visits SET member_id = ?, corrected_member_id = NULL, corrected_reason = ?, "
                           "corrected_ts = ? WHERE id = ?", (candidate, f"confirmed:{who}", iso(feedback.ts),
                                                             feedback.visit_id))
                outcome = "confirmed"
            else:  # 不是: stays a visitor visit; whom it was taken for stays on it, like a "不是本人"
                tx.execute("UPDATE visits SET corrected_reason = ?, corrected_ts = ? WHERE id = ?",
                           (f"rejected:{who}", iso(feedback.ts), feedback.visit_id))
            _label(tx, feedback, visit, candidate, "confirmed" if feedback.action == "confirmed" else "rejected")
    return outcome


def _label(tx: Tx, feedback: Feedback, visit: dict, member_id: str, label: Label) -> None:
    tx.execute(
        "INSERT INTO match_labels (visit_id, label, member_id, score, brand, store, device, feedback_id, ts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (feedback.visit_id, label, member_id, visit["confidence"], visit["brand"], feedback.store, visit["device"],
         feedback.feedback_id, iso(feedback.ts)))


def labels(db: Database, store: str | None = None, *, since: datetime | None = None) -> list[dict]:
    """Labelled match outcomes (oldest first), for the recognition calibration: each with the visit,
    the member the card named, the cosine score it was shown with, the label, store, device and ts."""
    where, args = ["1 = 1"], []
    if store is not None:
        where.append("store = ?")
        args.append(store)
    if since is not None:
        where.append("ts >= ?")
        args.append(iso(since))
    return db.query(f"SELECT visit_id, member_id, score, label, brand, store, device, feedback_id, ts FROM match_labels "
                    f"WHERE {' AND '.join(where)} ORDER BY ts, visit_id", args)


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
