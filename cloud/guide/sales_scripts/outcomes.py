"""Which template and variant each card showed, and what the assistants did next, per variant.

Outcomes are the guide screen's ``Feedback`` actions (table ``feedback``, by card id); each card
counts once per action however often the action was sent.
"""

from __future__ import annotations

from datetime import datetime

from cloud.clock import iso
from cloud.db import Database
from cloud.guide.sales_scripts.templates import BUILTIN, get_template

ACTIONS = ("greeted", "served", "sold", "not_this_person")


def record_shown(db: Database, *, card_id: str, person_id: str, template_id: str, variant: str,
                 ts: datetime) -> None:
    """Remember the script a card carried (what ``script_for`` returned); once per card."""
    template = next((t for t in BUILTIN if t.id == template_id), None) or get_template(db, template_id)
    situation, lang = template.situation, template.lang
    db.execute("INSERT INTO script_shown (card_id, person_id, template_id, variant, situation, lang, ts) "
               "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
               (card_id, person_id, template_id, variant, situation, lang, iso(ts)))


def outcomes(db: Database, *, situation: str | None = None) -> list[dict]:
    """Per template and variant: cards shown, cards with each action, and the sold amount."""
    where, params = ("WHERE s.situation = ?", (situation,)) if situation else ("", ())
    with db.transaction() as tx:
        shown = tx.rows(f"SELECT s.template_id, s.variant, s.situation, s.lang, COUNT(*) FROM script_shown s {where} "
                        "GROUP BY s.template_id, s.variant, s.situation, s.lang "
                        "ORDER BY s.situation, s.lang, s.template_id, s.variant", params)
        acted = tx.rows(f"SELECT s.template_id, s.variant, f.action, COUNT(DISTINCT f.card_id), "
                        f"COALESCE(SUM(f.amount), 0) FROM script_shown s JOIN feedback f ON f.card_id = s.card_id "
                        f"{where} GROUP BY s.template_id, s.variant, f.action", params)
    counts = {(t, v, a): (n, amount) for t, v, a, n, amount in acted}
    return [
        {"template_id": t, "variant": v, "situation": s, "lang": lang, "shown": n,
         **{a: counts.get((t, v, a), (0, 0))[0] for a in ACTIONS},
         "sold_amount": round(float(counts.get((t, v, "sold"), (0, 0.0))[1]), 2)}
        for t, v, s, lang, n in shown
    ]
