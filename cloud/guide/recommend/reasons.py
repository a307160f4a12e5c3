"""The one-line reason an assistant can say, in Chinese (default) or English."""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]
Kind = Literal["repurchase", "together", "new", "favourite", "preferred", "popular"]

REASONS: dict[Kind, dict[Lang, str]] = {
    "repurchase": {"zh": "{days}天前购买了{bought}，您通常每{cycle}天回购一次",
                   "en": "bought {bought} {days} days ago; you usually buy every {cycle} days"},
    "together": {"zh": "购买{anchor}的顾客常一起购买", "en": "often bought together with {anchor}"},
    "new": {"zh": "{category}新品，在您常选的价位", "en": "new in {category}, in your usual price range"},
    "favourite": {"zh": "您常买的{category}热销款", "en": "a best seller in {category}, which you often buy"},
    "preferred": {"zh": "偏好品类：{category}", "en": "in {category}, a category you told us you like"},
    "popular": {"zh": "本店热销", "en": "a best seller in this store"},
}


def reason(kind: Kind, facts: dict[str, object], lang: Lang = "zh") -> str:
    return REASONS[kind][lang].format(**facts)[:200]
