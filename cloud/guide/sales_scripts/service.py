"""Pick and fill the script for one card, and remember which template and variant it showed.

For each situation that applies (most specific first) the live variants of that situation's
template in the language are looked up; with two variants the person's id decides which one, by
the same hash the segment A/B splits use (``cloud.cdp.segments.variant``, salted per situation and
language), so a member always hears the same variant. A template whose fields this person lacks
(no recommendation, no repurchase due) gives way to that situation's built-in one, then to the
next situation; the built-in ``default`` needs only the title, so there is always a script.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from cloud.cdp.lifecycle import Windows, current_windows
from cloud.cdp.segments import variant
from cloud.db import Database
from cloud.guide.recommend.rank import Pick
from cloud.guide.recommend.reasons import Lang
from cloud.guide.sales_scripts.situations import situations, values
from cloud.guide.sales_scripts.templates import Template, TemplateError, builtin, live
from protocol.messages import Recommendation


def choose(variants: Sequence[Template], person_id: str) -> Template:
    """One of the live variants: deterministic per person; a 50/50 split when A and B are both live."""
    if len(variants) == 1:
        return variants[0]
    by_variant: dict[str, Template] = {t.variant: t for t in variants}
    return by_variant[variant(person_id, f"script:{variants[0].situation}:{variants[0].lang}", (50, 50))]


def script_for(profile: Mapping, recs: Sequence[Pick | Recommendation], lang: Lang = "zh", *,
               db: Database | None = None, now: datetime | None = None) -> tuple[str, str, str]:
    """(script text, template id, variant). Without ``db`` only the built-in templates are used."""
    now = now or datetime.now(UTC)
    filled = values(profile, recs, lang, now)
    dormant_days = (current_windows(db) if db is not None else Windows()).dormant_days
    for situation in situations(profile, filled, now, dormant_days=dormant_days):
        hq = live(db, situation, lang)
        for template in ([choose(hq, str(profile.get("id", "")))] if hq else []) + builtin(situation, lang):
            try:
                if template.fields <= filled.keys():
                    return template.text.format_map(filled)[:2000], template.id, template.variant
            except (TemplateError, KeyError, IndexError, ValueError):  # a row written around create/update
                continue
    raise AssertionError("the built-in default template needs only the title")  # pragma: no cover
