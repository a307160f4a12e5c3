"""A generated brand for the campaign benchmark and tests, landed through the brand's own entry points.

Persons with a phone and a CRM member card, a home store (some stores in a time zone where it is
night now), SMS consent for most, and an order history drawn so that the CDP's own tags
(``cloud.cdp.tags``) compute the intended lifecycle stage and value tier: nothing is planted into
``person_stats``, which a brand never writes. The stores arrive as a stores file and the members
as a CRM list (``import_master`` / ``import_file``, what ``instore cloud import``,
``POST /v1/master/stores`` and ``POST /v1/imports`` call), the history and the campaign window's
orders through the order stream (``till.land``, the call behind ``POST /v1/orders``), SMS consent
through the consent API's function. OneID links the till's buyer records to the CRM records, so the
campaign's persons are read back as OneID heads after the landing, with the stage and tier the tags
computed.

The planted true effect of the campaign is per lifecycle stage (``PLANTED``), keyed by the computed
stage, and applied by ``outcomes`` after the sends: a person converts (an order in the window) with
the stage's base rate, plus the planted uplift if the message reached them.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from cloud.activation.consent import Rules, in_quiet_hours, set_consent
from cloud.cdp import segments
from cloud.cdp.imports.stream import MAX_BATCH
from cloud.db import Database
from cloud.synthetic.drawn import card
from cloud.synthetic.exports import Import, write_csv
from cloud.synthetic.landing import import_files, land_orders

#: lifecycle stage -> (base conversion in the window, planted uplift when messaged)
PLANTED = {"active": (0.20, 0.06), "repurchase_due": (0.12, 0.10), "dormant": (0.04, 0.05)}
TIERS = ("high", "medium", "low")
DAY = 86400
#: the window's orders fall within this many seconds of the launch: the order stream refuses an
#: order more than a day ahead of its clock (``cleaning.timestamp``), and the run cannot wait a week
WINDOW_S = 20 * 3600
_ZONES = ("Asia/Shanghai", "Asia/Urumqi", "Europe/London", "America/Los_Angeles", "Pacific/Auckland",
          "America/New_York", "Asia/Tokyo", "Europe/Berlin")
_CATEGORIES = ("护肤", "彩妆", "香水", "面膜")


@dataclass(frozen=True)
class History:
    """A person's paid orders as drawn: how many, days since the last one, days between them, and
    their total in yuan (each a (low, high) range drawn uniformly)."""

    orders: int
    since: tuple[float, float]
    gap: tuple[float, float]
    total: tuple[float, float]


#: (stage, tier) -> a history ``cloud.cdp.tags`` computes as that stage and tier, with the default
#: windows (``cdp.lifecycle.Windows``: active 90 days, dormant 180, new 30) and the RFM cut points
#: before the first nightly batch (recency 30/90/180/365 days, orders 1/2/3/5, money
#: 200/500/1000/3000 yuan; tier high from 12 points of 15, medium from 8). Every range keeps days
#: away from a boundary, so a stage does not move while the brand lands.
HISTORIES = {
    # active: the last order recent, within the person's own cycle (or a single order older than "new")
    ("active", "high"): History(3, (3, 25), (40, 80), (1100, 2800)),  # r5 f3 m4
    ("active", "medium"): History(2, (3, 25), (40, 80), (220, 480)),  # r5 f2 m2
    ("active", "low"): History(1, (40, 80), (0, 0), (60, 190)),  # r4 f1 m1
    # repurchase due: the time since the last order passed the person's median gap, not yet dormant
    ("repurchase_due", "high"): History(4, (50, 85), (20, 40), (1100, 2800)),  # r4 f4 m4
    ("repurchase_due", "medium"): History(2, (50, 85), (20, 40), (520, 980)),  # r4 f2 m3
    ("repurchase_due", "low"): History(2, (100, 170), (20, 40), (60, 190)),  # r3 f2 m1
    # dormant: past the active window with a cycle longer than that, or past the dormant window
    ("dormant", "high"): History(4, (100, 150), (160, 200), (3200, 6000)),  # r3 f4 m5
    ("dormant", "medium"): History(2, (100, 150), (160, 200), (1100, 2800)),  # r3 f2 m4
    ("dormant", "low"): History(1, (200, 330), (0, 0), (60, 450)),  # r2 f1 m2
}


@dataclass(frozen=True)
class Buyer:
    """How the brand's systems know a person: the member card the till reads, the phone Tmall has,
    the home store."""

    card: str
    phone: str
    store: str


@dataclass
class CampaignBrand:
    """The landed brand, keyed by OneID person (the head of each person's records after the landing)."""

    segment_id: str
    persons: int
    night_persons: int
    without_consent: int
    phones: dict[str, str]  # phone -> person
    consented: set[str]
    stage: dict[str, str]  # person -> lifecycle stage, as the tags computed it
    tier: dict[str, str]  # person -> value tier, as the tags computed it
    buyers: dict[str, Buyer]
    as_drawn: dict[str, float]  # the share of persons whose computed stage (tier) is the drawn one
    seconds: dict[str, float]  # where the generation's time went


def _stores(now: datetime, rules: Rules) -> list[tuple[str, str]]:
    """Eight stores where it is day now, two where it is night (when some zone is in quiet hours)."""
    day_zones = [z for z in _ZONES if not in_quiet_hours(now, z, rules)]
    night_zones = [z for z in _ZONES if in_quiet_hours(now, z, rules)]
    stores = [(f"day-{i}", day_zones[i % len(day_zones)]) for i in range(8)]
    return stores + [(f"night-{i}", night_zones[i % len(night_zones)]) for i in range(2 if night_zones else 0)]


def _history(rng: np.random.Generator, drawn: History, now: int) -> list[tuple[int, float]]:
    """One person's paid orders (Unix seconds, yuan), oldest first."""
    last = now - int(rng.uniform(*drawn.since) * DAY)
    times = [last]
    for _ in range(drawn.orders - 1):
        times.append(times[-1] - int(rng.uniform(*drawn.gap) * DAY))
    shares = rng.dirichlet(np.full(drawn.orders, 4.0))
    total = rng.uniform(*drawn.total)
    amounts = [round(total * s, 2) for s in shares]
    amounts[-1] = round(total - sum(amounts[:-1]), 2)  # the total stays inside its money band
    return list(zip(times[::-1], amounts))


def _order(number: str, ts: int, paid: float, category: str, *, store: str | None, member: dict) -> dict:
    """An order as a till or a channel posts it (``cloud.cdp.imports.stream``), one line."""
    return {"order_no": number, "store": store, "ts": datetime.fromtimestamp(ts, UTC).isoformat(), "paid": paid,
            "member": member, "lines": [{"sku": f"SKU-{category}", "category": category, "qty": 1, "price": paid}]}


def generate(db: Database, *, persons: int, seed: int = 11, now: datetime, no_consent_share: float = 0.05,
             night_share: float = 0.08) -> CampaignBrand:
    """``persons`` persons landed as the module says, their stage and tier drawn with ``HISTORIES``;
    ``no_consent_share`` of them never gave SMS consent, ``night_share`` live by a store where ``now``
    is in quiet hours."""
    rng = np.random.default_rng(seed)
    rules = Rules()
    stores = _stores(now, rules)
    day_stores, night_stores = stores[:8], stores[8:]
    stages = rng.choice(list(PLANTED), size=persons, p=[0.5, 0.3, 0.2])
    tiers = rng.choice(TIERS, size=persons, p=[0.2, 0.5, 0.3])
    night = rng.random(persons) < (night_share if night_stores else 0)
    consent = rng.random(persons) >= no_consent_share
    buyers = [Buyer(card(i), f"139{i:08d}", night_stores[i % len(night_stores)][0] if night[i]
                    else day_stores[i % len(day_stores)][0]) for i in range(persons)]
    t_now = int(now.timestamp())
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="campaign-brand-") as tmp:
        out = Path(tmp)
        write_csv(out / "stores.csv", ("门店编码", "门店名称", "品牌", "城市", "时区"),
                  [(s, s, "bench", "上海", z) for s, z in stores])
        # every card is older than its holder's first order: OneID heads a person by the earliest record
        write_csv(out / "crm_members.csv", ("会员卡号", "手机号", "姓名", "性别", "会员等级", "开卡门店", "开卡日期"),
                  [(b.card, b.phone, f"王{i % 97}", "女" if i % 3 else "男", "金卡", b.store,
                    (now - timedelta(days=800 + i % 400)).date().isoformat()) for i, b in enumerate(buyers)])
        import_files(db, [Import(out / "stores.csv", kind="stores"), Import(out / "crm_members.csv", channel="members")])
    seconds["files"] = time.perf_counter() - started

    started = time.perf_counter()
    history = []
    for i, b in enumerate(buyers):
        drawn = HISTORIES[(str(stages[i]), str(tiers[i]))]
        history += [_order(f"H{i:07d}-{k}", ts, paid, _CATEGORIES[(i + k) % len(_CATEGORIES)], store=b.store,
                           member={"card": b.card}) for k, (ts, paid) in enumerate(_history(rng, drawn, t_now))]
    history.sort(key=lambda o: o["ts"])
    land_orders(db, "pos", history, actor="generate:campaign", batch=MAX_BATCH)  # a brand's backfill
    seconds["history"] = time.perf_counter() - started

    person_of = dict(db.rows("SELECT source_key, COALESCE(merged_into, id) FROM members WHERE source = 'members'"))
    heads = [person_of[f"member_card:{b.card}"] for b in buyers]
    computed = {p: (lifecycle, tier) for p, lifecycle, tier in db.rows(
        "SELECT member_id, lifecycle, value_tier FROM person_stats")}
    started = time.perf_counter()
    for i, person in enumerate(heads):
        if consent[i]:
            set_consent(db, person, "sms", True, source="crm", actor="generate", store=buyers[i].store)
    seconds["consent"] = time.perf_counter() - started
    segment = segments.save(db, "bench: everyone", segments.Condition.parse({"lifecycle": list(PLANTED)}),
                            actor="bench")
    stage = {p: computed[p][0] for p in heads}
    tier = {p: computed[p][1] for p in heads}
    return CampaignBrand(
        segment_id=segment["id"], persons=persons, night_persons=int(night.sum()),
        without_consent=int((~consent).sum()), phones={b.phone: p for b, p in zip(buyers, heads)},
        consented={p for i, p in enumerate(heads) if consent[i]}, stage=stage, tier=tier,
        buyers=dict(zip(heads, buyers)),
        as_drawn={"stage": float(np.mean([stage[p] == stages[i] for i, p in enumerate(heads)])),
                  "tier": float(np.mean([tier[p] == tiers[i] for i, p in enumerate(heads)]))},
        seconds={k: round(v, 2) for k, v in seconds.items()})


def outcomes(db: Database, brand: CampaignBrand, *, campaign_id: str, seed: int = 12, launched: datetime,
             exact: bool = False) -> float:
    """Plant the orders of the window, posted through the order stream (half at the home store's
    till by member card, half on Tmall by phone); returns the true intention-to-treat uplift (the
    planted effect averaged over the treatment group, 0 for those the message did not reach).

    Each person converts with the stage's base rate plus the uplift if reached, drawn from the
    person's own uniform (persons in card order, so the draws do not depend on the record ids OneID
    gave them). ``exact``: in each cell of stratum x group x reached, exactly the planted share
    converts (those with the lowest uniforms): no sampling noise, so the estimate must equal the
    planted effect up to rounding whatever the holdout drew; without it the estimate carries the
    sampling error a real campaign has (the benchmark's ``uplift_error``)."""
    rng = np.random.default_rng(seed)
    audience = {p: (grp, stratum) for p, grp, stratum in db.rows(
        "SELECT person_id, grp, stratum FROM campaign_audience WHERE campaign_id = ?", (campaign_id,))}
    reached = {r[0] for r in db.rows("SELECT person_id FROM marketing_sends WHERE campaign_id = ? AND status IN "
                                     "('sent', 'delivered')", (campaign_id,))}
    persons = sorted(audience, key=lambda p: brand.buyers[p].card)
    u = rng.random(len(persons))
    in_store = rng.random(len(persons)) < 0.5
    when = int(launched.timestamp()) + rng.integers(60, WINDOW_S, len(persons))
    amount = rng.integers(99, 999, len(persons)).astype(float)
    chance = np.array([PLANTED[brand.stage[p]][0] + (PLANTED[brand.stage[p]][1] if p in reached else 0.0)
                       for p in persons])
    converts = u < chance
    if exact:
        cells: dict[tuple[str, str, bool], list[int]] = {}
        for k, p in enumerate(persons):
            cells.setdefault((*audience[p], p in reached), []).append(k)
        for members in cells.values():
            ranked = sorted(members, key=lambda k: u[k])
            converts[members] = False
            converts[ranked[:round(len(members) * chance[members[0]])]] = True
    treatment = [p for p in persons if audience[p][0] == "treatment"]
    effect = sum(PLANTED[brand.stage[p]][1] for p in treatment if p in reached)
    posted: dict[str, list[dict]] = {"pos": [], "tmall": []}
    for k in np.flatnonzero(converts).tolist():
        b = brand.buyers[persons[k]]
        if in_store[k]:
            posted["pos"].append(_order(f"W-{campaign_id}-{b.card}", int(when[k]), float(amount[k]), _CATEGORIES[0],
                                        store=b.store, member={"card": b.card}))
        else:
            posted["tmall"].append(_order(f"T-{campaign_id}-{b.card}", int(when[k]), float(amount[k]), _CATEGORIES[0],
                                          store=None, member={"phone": b.phone}))
    for channel, orders in posted.items():
        land_orders(db, channel, orders, actor="generate:campaign")
    return effect / len(treatment) if treatment else 0.0
