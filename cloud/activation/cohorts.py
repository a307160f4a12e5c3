"""Effect tracking (效果通), first part: a campaign's audience as a cohort followed over 30/60/90/180
days from launch, the treatment group against its holdout (the matched control: same strata, drawn
at random). Per group and horizon: persons, the share who bought, orders and revenue (LTV) per head,
and the channel mix of their orders. Segment and order-source cohorts are not built yet."""

from __future__ import annotations

from datetime import datetime, timedelta

from cloud.activation.campaigns import CampaignState, get
from cloud.db import Database
from cloud.errors import NotFound

HORIZONS = (30, 60, 90, 180)


def cohort(db: Database, cohort_id: str) -> dict:
    kind, _, ref = cohort_id.partition(":")
    if kind != "campaign" or not ref:
        raise NotFound(f"no cohort {cohort_id} (campaign:<id> cohorts only, for now)", code="unknown_cohort")
    campaign = get(db, ref)
    if not campaign["launched_at"]:
        raise CampaignState(f"campaign {ref} has not been launched")
    start = datetime.fromisoformat(campaign["launched_at"])
    sizes = dict(db.rows("SELECT grp, COUNT(*) FROM campaign_audience WHERE campaign_id = ? GROUP BY grp", (ref,)))
    horizons = []
    for days in HORIZONS:
        window = (int(start.timestamp()), int((start + timedelta(days=days)).timestamp()))
        rows = db.query(
            "SELECT a.grp, o.channel, COUNT(DISTINCT a.person_id) AS buyers, COUNT(*) AS orders, SUM(o.paid) AS paid "
            "FROM campaign_audience a JOIN members m ON COALESCE(m.merged_into, m.id) = a.person_id "
            "JOIN orders o ON o.member_id = m.id WHERE a.campaign_id = ? AND o.ts >= ? AND o.ts < ? AND o.paid > 0 "
            "AND o.refund_of IS NULL GROUP BY a.grp, o.channel", (ref, *window))
        buyers = dict(db.rows(
            "SELECT a.grp, COUNT(DISTINCT a.person_id) FROM campaign_audience a JOIN members m "
            "ON COALESCE(m.merged_into, m.id) = a.person_id JOIN orders o ON o.member_id = m.id "
            "WHERE a.campaign_id = ? AND o.ts >= ? AND o.ts < ? AND o.paid > 0 AND o.refund_of IS NULL GROUP BY a.grp",
            (ref, *window)))
        groups = {}
        for grp in ("treatment", "control"):
            n = int(sizes.get(grp, 0))
            mine = [r for r in rows if r["grp"] == grp]
            orders = sum(int(r["orders"]) for r in mine)
            paid = sum(float(r["paid"] or 0) for r in mine)
            groups[grp] = {"persons": n, "buyer_rate": round(int(buyers.get(grp, 0)) / n, 5) if n else None,
                           "orders_per_head": round(orders / n, 4) if n else None,
                           "ltv_per_head": round(paid / n, 2) if n else None,
                           "channel_mix": {r["channel"]: round(int(r["orders"]) / orders, 4) for r in mine} if orders else {}}
        horizons.append({"days": days, "complete": start + timedelta(days=days) <= datetime.now(start.tzinfo),
                         **groups})
    return {"id": cohort_id, "campaign": campaign["name"], "start": campaign["launched_at"], "horizons": horizons}
