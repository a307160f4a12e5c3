"""The guide card: what an assistant reads at a glance when someone walks in.

Everything on it is in Chinese and ready to say out loud: how to address the member, what to
recommend and why (``cloud/guide/recommend``), and a sales script (话术) chosen by situation, with HQ's
A/B variants, from ``cloud/guide/sales_scripts``. A visitor gets a
card too, so the screen can count and greet them, but never a profile or a recommendation built
on a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloud.arrivals import visits
from cloud.cdp import profile as profiles
from cloud.cdp import survivorship, tags
from cloud.cdp.members import Member
from cloud.db import Database, Gather, Read
from cloud.faces import thumbnails
from cloud.faces.matching import Match
from cloud.guide.greeting import title_for
from cloud.guide.recommend import service as recommend
from cloud.guide.recommend.history import person_lines_read
from cloud.guide.recommend.rank import Pick
from cloud.guide.recommend.reasons import Lang
from cloud.guide.sales_scripts.outcomes import record_shown
from cloud.guide.sales_scripts.service import script_for
from cloud.guide.sales_scripts.situations import in_words
from protocol.messages import (
    Arrival,
    Candidate,
    Evidence,
    GuideCard,
    LastPurchase,
    MemberSummary,
    Recommendation,
    StageTimes,
    new_id,
    now,
)

#: Recommendations on a card (the screen draws two; the script may name the third).
CARD_RECOMMENDATIONS = 3
#: What the card names of the last order: the assistant mentions one or two, never reads a receipt.
LAST_PURCHASE_ITEMS = 3
VISITOR_SCRIPT = "您好，欢迎光临！请问今天想看看哪一类商品？我可以为您介绍本店的热销款和新品。"
#: An uncertain card greets like a visitor until the assistant confirms who it is.
UNCERTAIN_SCRIPT = "先确认顾客身份：可以先问候，请顾客出示会员码或报手机号后四位。"


def history(person: dict, last_items: list[str], *, visit_id: str) -> dict[str, object]:
    """The card's history fields from a ``cloud.cdp.profile.profile()`` dict: lifetime value (none
    while the CDP holds no order: "累计 ¥0" would misstate a CRM 金卡会员 whose orders were never
    imported, and says nothing of a prospect), the previous visit (not ``visit_id``, the one this
    card is for), the last paid order with what was in it (``last_items``, ``last_purchase``), and
    the top categories by spend (the member's declared ones while they have no orders)."""
    orders = person["orders"]
    last_order = next((o for o in orders["recent"] if o["status"] == "paid" and o["paid"] > 0), None)
    earlier = [v for v in person["visits"]["recent"] if v["id"] != visit_id]
    stats = person["stats"] or {}
    return {
        "lifetime_value": max(0.0, float(orders["lifetime_value"])) if orders["count"] else None,
        "last_visit": datetime.fromisoformat(earlier[0]["ts"]) if earlier else None,
        "last_purchase": LastPurchase(ts=datetime.fromtimestamp(last_order["ts"], UTC), items=last_items,
                                      amount=last_order["paid"]) if last_order else None,
        "preferences": list(stats.get("top_categories") or person["preferences"])[:5],
    }


def last_purchase(records: list[str]) -> Read[list[str]]:
    """What the card names of the person's newest paid order: the one ``history`` finds first among
    the profile's recent orders, which are in the same order (newest first, the id breaking a tie),
    so it is read with the card's other reads instead of after the profile."""
    marks = ", ".join("?" for _ in records)
    return Read(
        "SELECT COALESCE(p.name, l.sku) AS name FROM order_lines l LEFT JOIN products p ON p.sku = l.sku "
        f"WHERE l.order_id = (SELECT id FROM orders WHERE member_id IN ({marks}) AND status = 'paid' AND paid > 0 "
        "ORDER BY ts DESC, id DESC LIMIT 1) AND l.qty > 0 AND l.amount > 0 ORDER BY l.amount DESC, l.sku LIMIT ?",
        (*records, LAST_PURCHASE_ITEMS), _names)


def _names(rows: list[dict]) -> list[str]:
    return [row["name"] for row in rows]


#: tags on a card: the screen draws a strip, the assistant reads the first few
CARD_TAGS = 8


def card_tags(shown: list[str], person: dict, own: list[str]) -> list[str]:
    """The rule tags HQ marked for display (``shown``: ``cloud.cdp.tags.displayed``), highest priority
    first, then the member's own tags."""
    shown = list(shown)
    for tag in person.get("member_tags") or own:
        if tag not in shown:
            shown.append(tag)
    return shown[:CARD_TAGS]


def known_facts(person: dict) -> dict[str, object]:
    """What the CDP knows beyond the record: value tier and lifecycle in words, points and birthday
    month once known (absent fields stay None: an older screen ignores them, a newer one skips them)."""
    stats = person.get("stats") or {}
    points = (person.get("points") or {}).get("balance")
    birthday = str(person.get("birthday") or "")
    month = int(birthday[5:7]) if len(birthday) >= 7 and birthday[5:7].isdigit() else None
    return {"value_tier": in_words(stats.get("value_tier")), "lifecycle": in_words(stats.get("lifecycle")),
            "points": int(points) if points is not None and points >= 0 else None,
            "birthday_month": month if month is not None and 1 <= month <= 12 else None}


@dataclass(frozen=True)
class Advice:
    """What the card tells the assistant about one member in one store: the same for the card and
    for HQ's preview routes (``GET /v1/members/{id}/recommendations`` and ``/script``)."""

    person: dict  # cloud.cdp.profile.profile()
    picks: list[Pick]
    script: str
    template_id: str
    variant: str


def advise(db: Database, member: Member, store: str, at: datetime, *, limit: int, lang: Lang = "zh") -> Advice:
    reads = PersonReads(db, member)
    reads.gather.run(db)
    return reads.advice(db, member, store, at, limit=limit, lang=lang)


class PersonReads:
    """What a card reads about one member, declared in one ``Gather`` so they run together once the
    person is known (one round trip on PostgreSQL instead of one each: on a loaded server each was a
    wait of its own on every member arrival). A caller adds its own reads before ``gather.run``."""

    def __init__(self, db: Database, member: Member) -> None:
        # the records as this arrival's match read them (a Member lives one arrival or one request)
        records = member.records
        if records is None:
            with db.transaction() as tx:
                records = survivorship.person_records(tx, member.id, survivorship.rules(db))
        self.records = [r["id"] for r in records.rows]
        self.gather = Gather()
        self.person = profiles.profile_reads(self.gather, member.id, records, recent=3)
        self.lines = self.gather.add(person_lines_read(member.id))

    def advice(self, db: Database, member: Member, store: str, at: datetime, *, limit: int,
               lang: Lang = "zh") -> Advice:
        """The recommendations and script, once ``gather`` has run (the model and the templates are
        the process's, not read per card)."""
        person = self.person()
        picks = recommend.picks_for(db, self.lines(), store, at, limit=limit, declared=member.categories)
        script, template_id, variant = script_for(person, picks, lang, db=db, now=at)
        return Advice(person, picks, script, template_id, variant)


@dataclass(frozen=True)
class Door:
    """The door moment a card is about: the arrival's event, where and when it was captured."""

    arrival_event_id: str
    brand: str
    store: str
    ts: datetime

    @classmethod
    def of(cls, arrival: Arrival) -> Door:
        return cls(arrival.event_id, arrival.brand, arrival.store, arrival.ts)


class CardBuilder:
    def __init__(self, db: Database, *, ttl_s: int, recommendations: int = CARD_RECOMMENDATIONS) -> None:
        self._db = db
        self._ttl = timedelta(seconds=ttl_s)
        self._recommendations = recommendations

    def build(self, arrival: Arrival, match: Match, visit_id: str, timings: StageTimes | None = None,
              evidence: Evidence | None = None) -> GuideCard:
        """``evidence``: the face and Wi-Fi fused (``cloud.arrivals.fusion``), for a member or uncertain card."""
        door = Door.of(arrival)
        if match.member is not None:
            return self.member_card(door, match.member, match.confidence, visit_id, timings=timings,
                                    evidence=evidence)
        candidate, script = None, VISITOR_SCRIPT
        if match.reason == "uncertain" and match.candidate is not None:
            # issue 18: only the question and the enrolled photo beside the live crop, never the profile
            title = title_for(match.candidate.name, match.candidate.gender) or "会员"
            candidate = Candidate(member_id=match.candidate.id, title=title, prompt=f"可能是 {title}？请确认",
                                  enrolled_photo=thumbnails.card_photo(self._db, match.candidate.id))
            script = UNCERTAIN_SCRIPT
        return self._card(door, visit_id, None, match.confidence, [], script, timings, candidate=candidate,
                          evidence=evidence if candidate is not None else None)

    def joined(self, visit: dict, member: Member) -> GuideCard:
        """The member card that replaces a visitor's card once the visitor joined on their phone
        (``cloud.arrivals.joining``): same visit and arrival, so the screen swaps it in place; the
        person proved their phone, so the match is certain."""
        door = Door(visit["arrival_event_id"], visit["brand"], visit["store"], datetime.fromisoformat(visit["ts"]))
        return self.member_card(door, member, 1.0, visit["id"])

    def member_card(self, door: Door, member: Member, confidence: float, visit_id: str, *,
                    timings: StageTimes | None = None, evidence: Evidence | None = None) -> GuideCard:
        """The member's full card: profile, recommendations and script. Made for a face matched at the
        door, and later for an uncertain one that an assistant's 是 or the member's phone confirmed
        (``cloud.arrivals.ingest``); the caller has checked the member's face consent."""
        made = now()
        reads = PersonReads(self._db, member)
        shown = reads.gather.add(tags.displayed(member.id))
        visit_count = reads.gather.add(visits.visit_count_read(member.id, door.brand))
        photo = reads.gather.add(thumbnails.card_photo_read(member.id))
        last_items = reads.gather.add(last_purchase(reads.records))
        reads.gather.run(self._db)
        advice = reads.advice(self._db, member, door.store, made, limit=self._recommendations)
        summary = MemberSummary(
            member_id=member.id, name=member.name, tier=member.tier,
            title=title_for(member.name, member.gender) or "会员",  # neither name nor gender known
            tags=card_tags(shown(), advice.person, member.tags), visits=visit_count(), enrolled_photo=photo(),
            **history(advice.person, last_items(), visit_id=visit_id), **known_facts(advice.person),
        )
        card = self._card(door, visit_id, summary, confidence, recommend.as_recommendations(advice.picks),
                          advice.script, timings, made=made, evidence=evidence)
        record_shown(self._db, card_id=card.card_id, person_id=member.id, template_id=advice.template_id,
                     variant=advice.variant, ts=made)
        return card

    def _card(self, door: Door, visit_id: str, summary: MemberSummary | None, confidence: float,
              recs: list[Recommendation], script: str, timings: StageTimes | None, *,
              candidate: Candidate | None = None, made: datetime | None = None,
              evidence: Evidence | None = None) -> GuideCard:
        made = made or now()
        return GuideCard(
            card_id=new_id(), visit_id=visit_id, arrival_event_id=door.arrival_event_id, brand=door.brand,
            store=door.store, ts=made, arrival_ts=door.ts, member=summary, confidence=confidence,
            recommendations=recs, script=script, expires_at=made + self._ttl, timings=timings, candidate=candidate,
            evidence=evidence,
        )
