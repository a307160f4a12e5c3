"""Campaigns: a saved segment, a channel, an approved template, a start time and a holdout.

``launch`` freezes the audience: every person of the segment lands in ``treatment`` or ``control``
by a deterministic hash of (campaign salt, person), stratified by value tier and lifecycle (within a
stratum persons are ordered by their hash and the first ``round(n * holdout)`` are held out, so each
stratum has its share). Treatment persons get one ``marketing_sends`` row each (key
``<campaign>:<person>``), which ``cloud.activation.sender`` works through. ``results`` compares
orders (online and in store) of both groups within the window after launch: conversion and revenue
per head, the uplift per stratum and overall (post-stratified) with a 95% confidence interval. It is
an intention-to-treat comparison: treatment persons whom a check kept from messaging still count.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from cloud.activation import guide_task
from cloud.activation.consent import CHANNELS, check_send_channel
from cloud.cdp import segments
from cloud.clock import iso, utcnow
from cloud.db import Database, Tx
from cloud.errors import Conflict, Invalid, NotFound
from cloud.loyalty import coupons

STATUSES = ("draft", "running", "paused", "done")


class UnknownCampaign(NotFound):
    code = "unknown_campaign"


class CampaignState(Conflict):
    code = "campaign_state"


def create_template(db: Database, *, channel: str, code: str, body: str, params: list[str], actor: str) -> dict:
    """A message template; on the ``coupon`` channel ``code`` is loyalty's coupon template."""
    check_send_channel(channel)
    if channel == "coupon":
        coupons.template(db, code)  # raises UnknownTemplate
    template = {"id": uuid.uuid4().hex[:12], "channel": channel, "code": code, "body": body, "params": params,
                "approved": False, "approved_by": None}
    db.execute("INSERT INTO marketing_templates (id, channel, code, body, params, approved, created, created_by) "
               "VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
               (template["id"], channel, code, body, json.dumps(params, ensure_ascii=False), iso(utcnow()), actor))
    return template


def approve_template(db: Database, template_id: str, *, actor: str) -> dict:
    if db.execute("UPDATE marketing_templates SET approved = 1, approved_by = ? WHERE id = ?", (actor, template_id)) == 0:
        raise NotFound(f"no template {template_id}", code="unknown_template")
    return template(db, template_id)


def template(db: Database, template_id: str) -> dict:
    row = db.one("SELECT * FROM marketing_templates WHERE id = ?", (template_id,))
    if row is None:
        raise NotFound(f"no template {template_id}", code="unknown_template")
    return {**row, "params": json.loads(row["params"]), "approved": bool(row["approved"])}


def create(db: Database, *, name: str, segment_id: str, channel: str, template_id: str, holdout_pct: float = 10.0,
           window_days: int = 14, start_at: datetime | None = None, quiet_start: int = 21, quiet_end: int = 9,
           weekly_cap: int = 2, actor: str) -> dict:
    check_send_channel(channel)
    segments.saved(db, segment_id)  # raises UnknownSegment
    t = template(db, template_id)
    if t["channel"] != channel:
        raise Invalid(f"template {template_id} is for {t['channel']}, not {channel}", code="template_channel")
    if not 0 <= holdout_pct < 100 or not 1 <= window_days <= 365:
        raise Invalid("holdout is 0-99 % and the window 1-365 days", code="invalid_campaign")
    if not (0 <= quiet_start <= 23 and 0 <= quiet_end <= 23) or weekly_cap < 1:
        raise Invalid("quiet hours are 0-23 and the weekly cap at least 1", code="invalid_campaign")
    campaign_id = uuid.uuid4().hex[:16]
    with db.transaction() as tx:
        insert(tx, campaign_id, name=name, segment_id=segment_id, channel=channel, template_id=template_id,
               holdout_pct=holdout_pct, window_days=window_days, start_at=start_at, quiet_start=quiet_start,
               quiet_end=quiet_end, weekly_cap=weekly_cap, actor=actor)
    return get(db, campaign_id)


def insert(tx: Tx, campaign_id: str, *, name: str, segment_id: str, channel: str, template_id: str,
           holdout_pct: float, window_days: int, start_at: datetime | None, quiet_start: int, quiet_end: int,
           weekly_cap: int, actor: str, journey_id: str | None = None) -> None:
    """A draft campaign row; a journey's send step is one too (``journey_id``), so the sender treats
    both alike."""
    now = utcnow()
    tx.execute(
        "INSERT INTO campaigns (id, name, segment_id, channel, template_id, holdout_pct, window_days, start_at, "
        "quiet_start, quiet_end, weekly_cap, status, salt, created, created_by, journey_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?, ?)",
        (campaign_id, name, segment_id, channel, template_id, holdout_pct, window_days, iso(start_at or now),
         quiet_start, quiet_end, weekly_cap, secrets.token_hex(8), iso(now), actor, journey_id))


def get(db: Database, campaign_id: str) -> dict:
    row = db.one("SELECT * FROM campaigns WHERE id = ?", (campaign_id,))
    if row is None:
        raise UnknownCampaign(f"no campaign {campaign_id}")
    counts = dict(db.rows("SELECT status, COUNT(*) FROM marketing_sends WHERE campaign_id = ? GROUP BY status",
                          (campaign_id,)))
    reasons = dict(db.rows("SELECT reason, COUNT(*) FROM marketing_sends WHERE campaign_id = ? AND status = 'skipped' "
                           "GROUP BY reason", (campaign_id,)))
    return {**{k: v for k, v in row.items() if k != "salt"}, "sends": counts, "skipped": reasons}


def listing(db: Database) -> list[dict]:
    """Campaigns an HQ user made (a journey's send steps are listed with their journey)."""
    return db.query("SELECT id, name, channel, status, audience, control, created FROM campaigns "
                    "WHERE journey_id IS NULL ORDER BY created DESC")


def _hash(salt: str, person: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{person}".encode()).digest()[:8], "big")


def assign(persons_strata: dict[str, str], salt: str, holdout_pct: float) -> dict[str, str]:
    """Deterministic, stratified holdout: within each stratum the persons with the lowest hashes
    (``round(n * holdout)`` of them) are the control group."""
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for person, stratum in persons_strata.items():
        by_stratum[stratum].append(person)
    groups: dict[str, str] = {}
    for members in by_stratum.values():
        members.sort(key=lambda p: _hash(salt, p))
        held = round(len(members) * holdout_pct / 100)
        for i, person in enumerate(members):
            groups[person] = "control" if i < held else "treatment"
    return groups


def launch(db: Database, campaign_id: str, *, now: datetime | None = None) -> dict:
    now = now or utcnow()
    campaign = get(db, campaign_id)
    if campaign["status"] == "paused":
        db.execute("UPDATE campaigns SET status = 'running' WHERE id = ?", (campaign_id,))
        return get(db, campaign_id)
    if campaign["status"] != "draft":
        raise CampaignState(f"campaign {campaign_id} is {campaign['status']}")
    if not template(db, campaign["template_id"])["approved"]:
        raise CampaignState("the campaign's template is not approved", code="template_not_approved")
    salt = str(db.scalar("SELECT salt FROM campaigns WHERE id = ?", (campaign_id,)))
    _, condition = segments.saved(db, campaign["segment_id"])
    ts = iso(now)
    with db.transaction() as tx:
        persons = segments.matching_persons(tx, condition, as_of=now)
        strata: dict[str, str] = {p: "-|-" for p in persons}
        for start in range(0, len(persons), 500):
            chunk = persons[start:start + 500]
            for person, tier, stage in tx.rows(
                    f"SELECT member_id, value_tier, lifecycle FROM person_stats WHERE member_id IN "
                    f"({', '.join('?' for _ in chunk)})", chunk):
                strata[person] = f"{tier or '-'}|{stage or '-'}"
        groups = assign(strata, salt, float(campaign["holdout_pct"]))
        tx.copy("campaign_audience", ("campaign_id", "person_id", "grp", "stratum"),
                [(campaign_id, p, groups[p], strata[p]) for p in persons])
        start_at = max(campaign["start_at"], ts)
        tx.copy("marketing_sends", ("key", "campaign_id", "person_id", "channel", "status", "attempts", "due", "updated"),
                [(f"{campaign_id}:{p}", campaign_id, p, campaign["channel"], "pending", 0, start_at, ts)
                 for p in persons if groups[p] == "treatment"])
        control = sum(1 for g in groups.values() if g == "control")
        tx.execute("UPDATE campaigns SET status = 'running', launched_at = ?, audience = ?, control = ? WHERE id = ?",
                   (ts, len(persons), control, campaign_id))
    return get(db, campaign_id)


def pause(db: Database, campaign_id: str) -> dict:
    campaign = get(db, campaign_id)
    if campaign["status"] != "running":
        raise CampaignState(f"campaign {campaign_id} is {campaign['status']}, not running")
    db.execute("UPDATE campaigns SET status = 'paused' WHERE id = ?", (campaign_id,))
    return get(db, campaign_id)


def diff(pt: float, nt: int, pc: float, nc: int) -> tuple[float, float]:
    """Difference of two proportions and its standard error."""
    return pt - pc, math.sqrt(pt * (1 - pt) / nt + pc * (1 - pc) / nc)


def results(db: Database, campaign_id: str) -> dict:
    campaign = get(db, campaign_id)
    if not campaign["launched_at"]:
        raise CampaignState(f"campaign {campaign_id} has not been launched")
    launched = datetime.fromisoformat(campaign["launched_at"])
    window = (int(launched.timestamp()), int((launched + timedelta(days=int(campaign["window_days"]))).timestamp()))
    rows = db.query(
        "SELECT a.grp, a.stratum, COUNT(*) AS n, COALESCE(SUM(x.conv), 0) AS conv, COALESCE(SUM(x.rev), 0) AS rev "
        "FROM campaign_audience a LEFT JOIN ("
        "  SELECT COALESCE(m.merged_into, m.id) AS person, 1 AS conv, SUM(o.paid) AS rev FROM orders o "
        "  JOIN members m ON m.id = o.member_id WHERE o.ts >= ? AND o.ts < ? AND o.paid > 0 AND o.refund_of IS NULL "
        "  GROUP BY COALESCE(m.merged_into, m.id)) x ON x.person = a.person_id "
        "WHERE a.campaign_id = ? GROUP BY a.grp, a.stratum", (*window, campaign_id))
    channels = db.query(
        "SELECT a.grp, o.channel, COUNT(*) AS orders, SUM(o.paid) AS paid FROM campaign_audience a "
        "JOIN members m ON COALESCE(m.merged_into, m.id) = a.person_id JOIN orders o ON o.member_id = m.id "
        "WHERE a.campaign_id = ? AND o.ts >= ? AND o.ts < ? AND o.paid > 0 AND o.refund_of IS NULL "
        "GROUP BY a.grp, o.channel ORDER BY a.grp, o.channel", (campaign_id, *window))
    cells: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        cells[r["stratum"]][r["grp"]] = {"n": int(r["n"]), "converted": int(r["conv"]), "revenue": float(r["rev"])}
    totals: dict[str, dict[str, Any]] = {g: {"n": 0, "converted": 0, "revenue": 0.0} for g in ("treatment", "control")}
    strata_out, weight_total, estimate, variance = [], 0, 0.0, 0.0
    for stratum, groups in sorted(cells.items()):
        for g, cell in groups.items():
            for k in totals[g]:
                totals[g][k] += cell[k]
        t, c = groups.get("treatment"), groups.get("control")
        entry: dict = {"stratum": stratum, "treatment": t, "control": c, "uplift": None}
        if t and c and t["n"] and c["n"]:
            d, se = diff(t["converted"] / t["n"], t["n"], c["converted"] / c["n"], c["n"])
            entry["uplift"] = {"estimate": round(d, 5), "ci95": [round(d - 1.96 * se, 5), round(d + 1.96 * se, 5)]}
            w = t["n"] + c["n"]
            weight_total += w
            estimate += w * d
            variance += w * w * se * se
        strata_out.append(entry)
    for total in totals.values():
        total["rate"] = round(total["converted"] / total["n"], 5) if total["n"] else None
        total["revenue_per_head"] = round(total["revenue"] / total["n"], 2) if total["n"] else None
    overall = None
    if weight_total:
        est, se = estimate / weight_total, math.sqrt(variance) / weight_total
        overall = {"estimate": round(est, 5), "se": round(se, 5), "ci95": [round(est - 1.96 * se, 5),
                                                                            round(est + 1.96 * se, 5)],
                   "method": "post-stratified difference in conversion (intention to treat), normal 95% interval"}
    tt, cc = totals["treatment"], totals["control"]
    revenue_uplift = (tt["revenue_per_head"] - cc["revenue_per_head"]) if tt["n"] and cc["n"] else None
    return {"campaign": campaign, "window": {"from": campaign["launched_at"],
                                             "to": iso(launched + timedelta(days=int(campaign["window_days"])))},
            "groups": totals, "uplift": overall,
            "revenue_per_head_uplift": round(revenue_uplift, 2) if revenue_uplift is not None else None,
            "strata": strata_out, "orders_by_channel": channels,
            "coupons": coupons.totals(db, f"campaign:{campaign_id}:"), "tasks": guide_task.totals(db, campaign_id)}


__all__ = ["CHANNELS", "STATUSES", "assign", "create", "create_template", "approve_template", "launch", "pause",
           "results", "get", "listing", "template", "insert", "diff"]
