"""A generated brand for the campaign benchmark and tests: persons with a phone, a home store (some
stores in a time zone where it is night now), a value tier and lifecycle stage, SMS consent for most,
and a planted true effect of the campaign per lifecycle stage (``PLANTED``), applied by ``outcomes``
after the sends: a person converts (an order in the window) with the stage's base rate, plus the
planted uplift if the message reached them."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from cloud.activation.consent import Rules, grant_many, in_quiet_hours
from cloud.cdp import segments
from cloud.clock import iso
from cloud.db import Database

#: lifecycle stage -> (base conversion in the window, planted uplift when messaged)
PLANTED = {"active": (0.20, 0.06), "repurchase_due": (0.12, 0.10), "dormant": (0.04, 0.05)}
TIERS = ("high", "medium", "low")
_ZONES = ("Asia/Shanghai", "Asia/Urumqi", "Europe/London", "America/Los_Angeles", "Pacific/Auckland",
          "America/New_York", "Asia/Tokyo", "Europe/Berlin")


def generate(db: Database, *, persons: int, seed: int = 11, now: datetime, no_consent_share: float = 0.05,
             night_share: float = 0.08) -> dict:
    rng = np.random.default_rng(seed)
    rules = Rules()
    day_zones = [z for z in _ZONES if not in_quiet_hours(now, z, rules)]
    night_zones = [z for z in _ZONES if in_quiet_hours(now, z, rules)]
    stores = [(f"day-{i}", day_zones[i % len(day_zones)]) for i in range(8)]
    stores += [(f"night-{i}", night_zones[i % len(night_zones)]) for i in range(2 if night_zones else 0)]
    ts = iso(now - timedelta(days=400))
    stages = rng.choice(list(PLANTED), size=persons, p=[0.5, 0.3, 0.2])
    tiers = rng.choice(TIERS, size=persons, p=[0.2, 0.5, 0.3])
    night = rng.random(persons) < (night_share if night_zones else 0)
    consent = rng.random(persons) >= no_consent_share
    ids = [f"cp-{i:07d}" for i in range(persons)]
    with db.transaction() as tx:
        tx.executemany("INSERT INTO stores (id, brand, name, city, created, timezone) VALUES (?, 'bench', ?, '上海', ?, ?)",
                       [(s, s, ts, z) for s, z in stores])
        home = [stores[8 + i % (len(stores) - 8)][0] if night[i] and len(stores) > 8 else stores[i % 8][0]
                for i in range(persons)]
        tx.copy("members", ("id", "source", "source_key", "name", "gender", "tier", "created", "home_store"),
                [(p, "crm", p, f"王{i % 97}", "F" if i % 3 else "M", "金卡", ts, home[i]) for i, p in enumerate(ids)])
        tx.copy("identifiers", ("member_id", "kind", "value", "created"),
                [(p, "phone", f"139{i:08d}", ts) for i, p in enumerate(ids)])
        tx.copy("person_stats", ("member_id", "orders", "ltv", "lifecycle", "value_tier", "top_categories", "updated"),
                [(p, 3, 600.0, str(stages[i]), str(tiers[i]), "[]", ts) for i, p in enumerate(ids)])
        grant_many(tx, [p for i, p in enumerate(ids) if consent[i]], "sms", source="bench", ts=ts)
    segment = segments.save(db, "bench: everyone", segments.Condition.parse({"lifecycle": list(PLANTED)}),
                            actor="bench")
    return {"segment_id": segment["id"], "persons": persons, "night_persons": int(night.sum()),
            "without_consent": int((~consent).sum()), "phones": {f"139{i:08d}": p for i, p in enumerate(ids)},
            "consented": {p for i, p in enumerate(ids) if consent[i]}, "stage": dict(zip(ids, map(str, stages)))}


def outcomes(db: Database, *, campaign_id: str, stage: dict[str, str], seed: int = 12, launched: datetime) -> float:
    """Plant the orders of the window; returns the true intention-to-treat uplift (the planted effect
    averaged over the treatment group, 0 for those the message did not reach)."""
    rng = np.random.default_rng(seed)
    groups = dict(db.rows("SELECT person_id, grp FROM campaign_audience WHERE campaign_id = ?", (campaign_id,)))
    reached = {r[0] for r in db.rows("SELECT person_id FROM marketing_sends WHERE campaign_id = ? AND status IN "
                                     "('sent', 'delivered')", (campaign_id,))}
    orders, effect, treated = [], 0.0, 0
    t0 = int(launched.timestamp())
    for person, grp in sorted(groups.items()):
        base, lift = PLANTED[stage[person]]
        p = base + (lift if person in reached else 0.0)
        if grp == "treatment":
            treated += 1
            effect += lift if person in reached else 0.0
        if rng.random() < p:
            store = rng.random() < 0.5
            orders.append((f"o-{campaign_id}-{person}", "store" if store else "tmall", f"n-{person}",
                           "day-0" if store else None, person, t0 + int(rng.integers(60, 6 * 86400)),
                           float(rng.integers(99, 999)), "paid"))
    with db.transaction() as tx:
        tx.copy("orders", ("id", "channel", "order_no", "store", "member_id", "ts", "paid", "status"), orders)
    return effect / treated if treated else 0.0
