"""The guide card: what an assistant reads at a glance when someone walks in.

Everything on it is in Chinese and ready to say out loud: how to address the member, what to
recommend and why, and a short sales script (话术) shaped by the member's tier. A visitor gets a
card too, so the screen can count and greet them, but never a profile or a recommendation built
on a guess.
"""

from __future__ import annotations

import re
from datetime import timedelta

from cloud.matching import Match
from cloud.store import Member, Product, Store
from protocol.messages import Arrival, GuideCard, MemberSummary, Recommendation, new_id, now

_HONORIFIC = {"female": "女士", "male": "先生"}
_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 端木 独孤 南宫 西门 轩辕 百里".split()
)
_HAN_NAME = re.compile(r"^[\u4e00-\u9fff]{2,5}$")
_TIER_LINES = {
    "钻石会员": "感谢您一直以来的厚爱，今天由我专门为您服务。",
    "金卡会员": "感谢您一直以来的支持，金卡专享礼遇今天同样为您准备好了。",
    "银卡会员": "很高兴再次见到您，今天的会员积分可以为您加倍累计。",
}
_DEFAULT_TIER_LINE = "很高兴为您服务。"
VISITOR_SCRIPT = "您好，欢迎光临！请问今天想看看哪一类商品？我可以为您介绍本店的热销款和新品。"


def title_for(name: str, gender: str | None) -> str:
    """王芳 + female -> 王女士; without a known gender or a Chinese name, the name itself."""
    honorific = _HONORIFIC.get(gender or "")
    if honorific is None or not _HAN_NAME.match(name):
        return name
    surname = name[:2] if name[:2] in _COMPOUND_SURNAMES else name[0]
    return surname + honorific


class CardBuilder:
    def __init__(self, store: Store, *, ttl_s: int, recommendations: int = 3) -> None:
        self._store = store
        self._ttl = timedelta(seconds=ttl_s)
        self._recommendations = recommendations

    def build(self, arrival: Arrival, match: Match, visit_id: str) -> GuideCard:
        summary, picks, script = None, [], VISITOR_SCRIPT
        if match.member is not None:
            summary = MemberSummary(
                member_id=match.member.id, name=match.member.name,
                title=title_for(match.member.name, match.member.gender), tier=match.member.tier,
                tags=match.member.tags, visits=self._store.visit_count(match.member.id, arrival.brand),
            )
            picks = self._recommend(match.member)
            script = _script(summary, match.member, picks)
        made = now()
        return GuideCard(
            card_id=new_id(), visit_id=visit_id, arrival_event_id=arrival.event_id, brand=arrival.brand,
            store=arrival.store, ts=made, arrival_ts=arrival.ts, member=summary, confidence=match.confidence,
            recommendations=picks, script=script, expires_at=made + self._ttl,
        )

    def _recommend(self, member: Member) -> list[Recommendation]:
        """The member's preferred categories' most popular products first, then best sellers."""
        preferred = (
            self._store.best_sellers(self._recommendations, categories=member.categories)
            if member.categories else []
        )
        chosen = {p.sku for p in preferred}
        fill = [p for p in self._store.best_sellers(2 * self._recommendations) if p.sku not in chosen]
        picks = [(p, f"偏好品类：{p.category}") for p in preferred]
        picks += [(p, _general_reason(p)) for p in fill]
        return [
            Recommendation(sku=p.sku, name=p.name, price=p.price, reason=reason)
            for p, reason in picks[: self._recommendations]
        ]


def _general_reason(product: Product) -> str:
    return "新品上市" if product.is_new else "本店热销"


def _script(summary: MemberSummary, member: Member, picks: list[Recommendation]) -> str:
    parts = [
        f"{summary.title}您好，欢迎光临！",
        f"您是我们的{summary.tier}，{_TIER_LINES.get(summary.tier, _DEFAULT_TIER_LINE)}",
        f"这是您第{summary.visits + 1}次光临我们的门店。" if summary.visits else "欢迎您第一次到店体验。",
    ]
    if picks:
        names = "、".join(p.name for p in picks)
        lead = f"知道您喜欢{'、'.join(member.categories)}，" if member.categories else ""
        parts.append(f"{lead}今天为您推荐：{names}。")
    return "".join(parts)
