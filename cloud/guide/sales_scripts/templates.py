"""Script templates: validation when saved, built-in defaults, and the store HQ edits.

A template is plain text with ``{placeholder}`` fields from ``FIELDS`` only: no attribute or index
access, no conversion, no format spec (``{{`` and ``}}`` are literal braces). Anything else is
refused with a ``TemplateError`` naming what is wrong when it is saved, so filling one at arrival
time cannot fail. A (situation, language) pair may have variant A and B live at once: an A/B test.
"""

from __future__ import annotations

from datetime import UTC, datetime
from string import Formatter
from typing import Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field

from cloud.db import Database, Tx
from cloud.db.config_cache import cached, changed
from cloud.db.database import IntegrityError
from cloud.errors import Invalid, NotFound
from cloud.guide.recommend.reasons import Lang

#: What a template may say, each filled from the profile or the recommendations.
FIELDS: dict[str, str] = {
    "title": "how to address the member (王女士 / Ms. Wang)",
    "name": "the member's name",
    "tier": "membership tier (金卡会员)",
    "value_tier": "RFM value tier, in words",
    "lifecycle": "lifecycle stage, in words",
    "ltv": "lifetime value in yuan, rounded",
    "orders": "number of paid orders",
    "visits": "earlier recognised store visits",
    "days_away": "days since the last purchase or visit",
    "last_contact": "what that last contact was, truthfully: 光临 (a store visit or store order) or 下单 (online)",
    "welcome": "欢迎再次光临 when they have been in a store before, else 欢迎光临",
    "top_category": "the category they spend most on",
    "recs": "names of the recommended items",
    "rec1": "the first recommended item",
    "rec1_reason": "why the first item",
    "due_item": "the item due for repurchase",
    "due_days": "days since it was bought",
    "cycle_days": "their usual repurchase cycle in days",
    "birthday_month": "birthday month (needs a birthday in the profile)",
    "points": "points expiring soon (needs points in the profile)",
    "points_expire_on": "when those points expire",
}
SITUATIONS = ("birthday_month", "points_expiring", "dormant_return", "repurchase_due", "tier_high", "lifecycle_new",
              "lifecycle_prospect", "lifecycle_unknown", "tier_medium", "lifecycle_active", "tier_low", "default")
Situation = Literal["birthday_month", "points_expiring", "dormant_return", "repurchase_due", "tier_high",
                    "lifecycle_new", "lifecycle_prospect", "lifecycle_unknown", "tier_medium", "lifecycle_active",
                    "tier_low", "default"]
Variant = Literal["A", "B"]


class TemplateError(Invalid):
    """A template HQ cannot save: unknown or unsafe placeholders, a clash with a live variant."""

    code = "invalid_template"


class UnknownTemplate(NotFound):
    """No script template with that id."""

    code = "unknown_template"


def placeholders(text: str) -> set[str]:
    """The fields ``text`` uses; a ``TemplateError`` for anything but a plain known field."""
    found: set[str] = set()
    try:
        parsed = list(Formatter().parse(text))
    except ValueError as exc:  # a lone '{' or '}'
        raise TemplateError(f"malformed template: {exc} (write {{{{ or }}}} for a literal brace)") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in FIELDS:
            raise TemplateError(f"unknown placeholder {{{field}}}; known: {', '.join(sorted(FIELDS))}")
        if spec or conversion:
            raise TemplateError(f"placeholder {{{field}}} may not carry a format spec or conversion")
        found.add(field)
    return found


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    situation: Situation
    lang: Lang
    variant: Variant = "A"
    text: str = Field(min_length=1, max_length=1000)
    active: bool = True
    builtin: bool = False

    @property
    def fields(self) -> set[str]:
        return placeholders(self.text)


def _builtin(situation: Situation, zh: str, en: str) -> list[Template]:
    return [Template(id=f"builtin-{situation}-{lang}", situation=situation, lang=lang, text=text, builtin=True)
            for lang, text in (("zh", zh), ("en", en))]


BUILTIN: tuple[Template, ...] = tuple(t for pair in (
    _builtin("birthday_month", "{title}您好，欢迎光临！这个月是您的生日月，祝您生日快乐，生日礼遇今天可以为您安排。今天为您推荐：{recs}。",
             "Welcome, {title}! Happy birthday month: your birthday treat is ready today. Picked for you: {recs}."),
    _builtin("points_expiring", "{title}您好，欢迎光临！您有{points}积分将于{points_expire_on}到期，今天可以抵扣使用。为您推荐：{recs}。",
             "Welcome, {title}! {points} of your points expire on {points_expire_on}; you can use them today. "
             "Picked for you: {recs}."),
    _builtin("dormant_return",
             "{title}您好，好久不见，欢迎回来！距离您上次{last_contact}已有{days_away}天，最近上了不少新品，给您介绍一下：{recs}。",
             "Welcome back, {title}! It has been {days_away} days. A lot is new since then: {recs}."),
    _builtin("repurchase_due", "{title}您好，欢迎光临！您{due_days}天前购买的{due_item}差不多该用完了（您通常每{cycle_days}天回购一次），"
             "需要为您再准备一份吗？另外为您推荐：{recs}。",
             "Welcome, {title}! You bought {due_item} {due_days} days ago and usually buy every {cycle_days} days: "
             "shall I get you another? Also picked for you: {recs}."),
    _builtin("tier_high", "{title}您好，欢迎光临！感谢您一直以来的厚爱，今天由我专门为您服务。知道您喜欢{top_category}，为您推荐：{recs}。",
             "Welcome, {title}! Thank you for being with us; I will look after you personally today. "
             "Since you like {top_category}: {recs}."),
    _builtin("lifecycle_new", "{title}您好，{welcome}！上次您选了{top_category}，用得还习惯吗？今天为您推荐：{recs}。",
             "Welcome back, {title}! How are you finding your {top_category}? Picked for you today: {recs}."),
    _builtin("lifecycle_prospect", "{title}您好，欢迎光临！您是我们的{tier}，第一次购物有会员礼遇。本店热销：{recs}。",
             "Welcome, {title}! As a member your first purchase comes with a welcome gift. Our best sellers: {recs}."),
    # a member whose tier says they bought, none of it in the CDP: thanked as one, promised no first-purchase gift
    _builtin("lifecycle_unknown", "{title}您好，欢迎光临！您是我们的{tier}，感谢您一直以来的支持。今天为您推荐：{recs}。",
             "Welcome, {title}! Thank you for being a member with us. Picked for you today: {recs}."),
    _builtin("tier_medium", "{title}您好，欢迎光临！很高兴再次见到您，今天的会员积分可以为您加倍累计。为您推荐：{recs}。",
             "Welcome back, {title}! Good to see you again. Picked for you: {recs}."),
    _builtin("lifecycle_active", "{title}您好，欢迎光临！为您推荐：{rec1}（{rec1_reason}）。",
             "Welcome, {title}! Picked for you: {rec1} ({rec1_reason})."),
    _builtin("tier_low", "{title}您好，欢迎光临！很高兴为您服务，今天为您推荐：{recs}。",
             "Welcome, {title}! Happy to help. Picked for you: {recs}."),
    _builtin("default", "{title}您好，欢迎光临！很高兴为您服务。", "Welcome, {title}! Happy to help you today."),
) for t in pair)
for _template in BUILTIN:  # a typo in a default must fail at import, not at an arrival
    placeholders(_template.text)


# the store ----------------------------------------------------------------------------------------

def _row(row: dict) -> Template:
    return Template(id=row["id"], situation=row["situation"], lang=row["lang"], variant=row["variant"],
                    text=row["text"], active=bool(row["active"]))


def list_templates(db: Database | Tx, *, situation: str | None = None, lang: str | None = None,
                   builtin: bool = True) -> list[Template]:
    """HQ's templates (and the built-in defaults, marked ``builtin``), by situation, language, variant."""
    where = [(sql, v) for sql, v in (("situation = ?", situation), ("lang = ?", lang)) if v is not None]
    rows = db.query(f"SELECT * FROM script_templates WHERE {' AND '.join(['1 = 1'] + [sql for sql, _ in where])} "
                    "ORDER BY situation, lang, variant", [v for _, v in where])
    found = [_row(r) for r in rows]
    if builtin:
        found += [t for t in BUILTIN if situation in (None, t.situation) and lang in (None, t.lang)]
    return found


def get_template(db: Database | Tx, template_id: str) -> Template:
    row = db.one("SELECT * FROM script_templates WHERE id = ?", (template_id,))
    if row is None:
        raise UnknownTemplate(f"no script template {template_id}")
    return _row(row)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def create_template(db: Database, *, situation: str, lang: str, text: str, variant: str = "A",
                    active: bool = True, actor: str = "api") -> Template:
    """A new template; refused (``TemplateError``) if its text is unsafe or the variant already exists."""
    template = Template(id=uuid4().hex, situation=situation, lang=lang, variant=variant, text=text, active=active)
    template.fields  # noqa: B018 - validates the placeholders
    now = _now()
    try:
        db.execute("INSERT INTO script_templates (id, situation, lang, variant, text, active, created, updated, actor) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (template.id, situation, lang, variant, text, active, now, now, actor))
    except IntegrityError:
        raise TemplateError(f"variant {variant} of {situation}/{lang} exists already: update it instead") from None
    changed(db, hq_templates)
    return template


def update_template(db: Database, template_id: str, *, text: str | None = None, active: bool | None = None,
                    actor: str = "api") -> Template:
    with db.transaction() as tx:
        current = get_template(tx, template_id)
        updated = current.model_copy(update={k: v for k, v in (("text", text), ("active", active)) if v is not None})
        updated = Template.model_validate(updated.model_dump())  # re-check length and type
        updated.fields  # noqa: B018 - validates the placeholders
        tx.execute("UPDATE script_templates SET text = ?, active = ?, updated = ?, actor = ? WHERE id = ?",
                   (updated.text, updated.active, _now(), actor, template_id))
    changed(db, hq_templates)
    return updated


def hq_templates(db: Database) -> list[Template]:
    """Every template HQ wrote (the built-in ones left out)."""
    return list_templates(db, builtin=False)


def live(db: Database | None, situation: str, lang: str) -> list[Template]:
    """HQ's active variants of a situation's template (none without a database), read through
    ``cloud.db.config_cache``: a card reads them on every member arrival; a change reaches every
    process within seconds."""
    if db is None:
        return []
    return [t for t in cached(db, hq_templates) if t.active and t.situation == situation and t.lang == lang]


def builtin(situation: str, lang: str) -> list[Template]:
    return [t for t in BUILTIN if t.situation == situation and t.lang == lang]
