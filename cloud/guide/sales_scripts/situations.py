"""Which situations apply to a person now, and the values a template may use.

The profile is ``cloud.cdp.profile.profile(db, person)``'s dict. Two situations need data the schema
does not hold yet: ``birthday_month`` reads an optional ``birthday`` (ISO date) and
``points_expiring`` an optional ``points`` (``{"expiring": int, "expires_on": ISO date}``) from the
profile: the points ledger (``cloud.loyalty.balances``) fills it with the points expiring within its
notice period, and a birthday comes from the CRM's member facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from cloud.guide.greeting import title_for
from cloud.guide.recommend.rank import Pick
from cloud.guide.recommend.reasons import Lang
from cloud.guide.sales_scripts.templates import SITUATIONS
from protocol.messages import Recommendation

DAY_S = 86400
POINTS_NOTICE_DAYS = 30
_WORDS = {
    "zh": {"high": "高价值会员", "medium": "中价值会员", "low": "潜力会员", "prospect": "潜在顾客", "new": "新顾客",
           "active": "活跃顾客", "repurchase_due": "待回购顾客", "dormant": "沉睡顾客", "churned": "流失顾客"},
    "en": {"high": "high value", "medium": "medium value", "low": "growing", "prospect": "prospect", "new": "new",
           "active": "active", "repurchase_due": "due to repurchase", "dormant": "dormant", "churned": "lapsed"},
}
_JOIN = {"zh": "、", "en": ", "}


def in_words(value: str | None, lang: Lang = "zh") -> str | None:
    """A value tier or lifecycle stage as the assistant says it (high -> 高价值会员), None if unknown."""
    return _WORDS[lang].get(value or "")
_HONORIFIC_EN = {"female": "Ms.", "male": "Mr."}


def _title(profile: Mapping, lang: Lang) -> str:
    name, gender = profile.get("name") or "", profile.get("gender")
    if lang == "zh":
        return title_for(name, gender)  # "" without name or gender: "{title}您好" reads 您好
    honorific = _HONORIFIC_EN.get(gender or "")
    return f"{honorific} {name}" if honorific and name else name or "there"


def _days_away(profile: Mapping, now: datetime) -> int | None:
    """Days since the later of the last paid order and the last recognised visit before this one."""
    stats = profile.get("stats") or {}
    times = [stats["last_ts"]] if stats.get("last_ts") else []
    times += [datetime.fromisoformat(v["ts"]).timestamp() for v in (profile.get("visits") or {}).get("recent", [])
              if datetime.fromisoformat(v["ts"]) < now]
    return int((now.timestamp() - max(times)) // DAY_S) if times else None


def _last_contact(profile: Mapping, lang: Lang, now: datetime) -> str | None:
    """What the member's latest contact with the brand was, in words that are true: a store visit or
    a store (POS) order is "光临"; any other order (Tmall, JD, WeChat...) is "购物", never "光临"."""
    latest: tuple[float, bool] | None = None
    stats = profile.get("stats") or {}
    if stats.get("last_ts"):
        latest = (float(stats["last_ts"]), False)
    for order in (profile.get("orders") or {}).get("recent", []):
        if order.get("status", "paid") == "paid" and order.get("ts") is not None and order["ts"] < now.timestamp():
            in_store = order.get("channel") == "pos" or bool(order.get("store"))
            latest = max(latest or (float("-inf"), False), (float(order["ts"]), in_store))
    for visit in (profile.get("visits") or {}).get("recent", []):
        at = datetime.fromisoformat(visit["ts"])
        if at < now:
            latest = max(latest or (float("-inf"), False), (at.timestamp(), True))
    if latest is None:
        return None
    return {"zh": ("光临", "购物"), "en": ("visit", "order")}[lang][0 if latest[1] else 1]


def _been_in_store(profile: Mapping, now: datetime) -> bool:
    """A recognised visit before this one, or a store (POS) order: "欢迎再次光临" is true."""
    if any(datetime.fromisoformat(v["ts"]) < now for v in (profile.get("visits") or {}).get("recent", [])):
        return True
    return any(o.get("channel") == "pos" or o.get("store") for o in (profile.get("orders") or {}).get("recent", []))


def _date(value: object) -> date | None:
    """A date from the profile's optional fields; a malformed one counts as absent, never as a crash."""
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def values(profile: Mapping, recs: Sequence[Pick | Recommendation], lang: Lang, now: datetime) -> dict[str, str]:
    """Every field this person has a value for; a template needing a missing one does not apply."""
    stats = profile.get("stats") or {}
    words = _WORDS[lang]
    found: dict[str, object] = {
        "title": _title(profile, lang), "name": profile.get("name"), "tier": profile.get("tier"),
        "value_tier": words.get(stats.get("value_tier") or ""), "lifecycle": words.get(stats.get("lifecycle") or ""),
        "ltv": round((profile.get("orders") or {}).get("lifetime_value") or stats.get("ltv") or 0),
        "orders": stats.get("orders"), "visits": (profile.get("visits") or {}).get("count"),
        "days_away": _days_away(profile, now), "last_contact": _last_contact(profile, lang, now),
        "welcome": {"zh": ("欢迎再次光临", "欢迎光临"), "en": ("Welcome back", "Welcome")}[lang][
            0 if _been_in_store(profile, now) else 1],
        "top_category": (stats.get("top_categories") or [None])[0],
    }
    if recs:
        found["recs"] = _JOIN[lang].join(r.name for r in recs)
        found["rec1"] = recs[0].name
        found["rec1_reason"] = recs[0].reason(lang) if isinstance(recs[0], Pick) else recs[0].reason
    due = next((r for r in recs if isinstance(r, Pick) and r.kind == "repurchase"), None)
    if due is not None:
        found.update(due_item=due.facts["bought"], due_days=due.facts["days"], cycle_days=due.facts["cycle"])
    birthday = _date(profile.get("birthday"))
    if birthday:
        found["birthday_month"] = birthday.month
    points = profile.get("points") or {}
    expires = _date(points.get("expires_on"))
    if points.get("expiring") and expires:
        found.update(points=points["expiring"], points_expire_on=expires.isoformat())
    # the title may be empty (no name, no gender): "{title}您好" then reads 您好
    return {k: str(v) for k, v in found.items() if v is not None and (v != "" or k == "title")}


def situations(profile: Mapping, filled: Mapping[str, str], now: datetime, *, dormant_days: int) -> list[str]:
    """The situations that apply, most specific first (``default`` always last)."""
    stats = profile.get("stats") or {}
    found: list[str] = []
    if filled.get("birthday_month") == str(now.month):
        found.append("birthday_month")
    if "points" in filled and date.fromisoformat(filled["points_expire_on"]) <= now.date() + timedelta(POINTS_NOTICE_DAYS):
        found.append("points_expiring")
    if int(filled.get("days_away", -1)) >= dormant_days:
        found.append("dormant_return")
    if "due_item" in filled or stats.get("lifecycle") == "repurchase_due":
        found.append("repurchase_due")
    tier, stage = stats.get("value_tier"), stats.get("lifecycle") or "prospect"
    candidates = {f"tier_{tier}", f"lifecycle_{stage}"}
    found += [s for s in SITUATIONS if s in candidates]  # the value tier's and the stage's, in priority order
    return [*found, "default"]
