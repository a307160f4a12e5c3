"""Effect tracking (issue 20 item 5): cohorts from a tagged order source (a livestream's order
numbers, an influencer's coupon) and from a segment on a day, each against a matched control,
followed over 30/60/90/180 days through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.cdp import segments, survivorship
from cloud.cdp.imports.canonical import order_id
from cloud.clock import iso
from cloud.db import Database
from cloud.loyalty import coupons

DAY = 86400
LIVE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _brand(db: Database) -> None:
    """40 livestream buyers (L-*), 60 other Tmall buyers the same day (T-*), all high or low tier.
    Half the livestream buyers buy again in store within 20 days; a tenth of the others do, at day 45."""
    ts = iso(LIVE - timedelta(days=300))
    persons = [f"live-{i}" for i in range(40)] + [f"other-{i}" for i in range(60)]
    t0 = int(LIVE.timestamp())
    orders = []
    with db.transaction() as tx:
        for i, p in enumerate(persons):
            tx.execute("INSERT INTO members (id, source, source_key, name, created) VALUES (?, 'crm', ?, '王芳', ?)",
                       (p, p, ts))
            tx.execute("INSERT INTO person_stats (member_id, orders, ltv, lifecycle, value_tier, top_categories, "
                       "updated) VALUES (?, 2, 400, ?, ?, '[]', ?)",
                       (p, "active" if p.startswith("live") else "dormant", "high" if i % 2 else "low", ts))
        survivorship.store(tx)  # the stats planted as the tag refresh would have stored them
        for i in range(40):
            orders.append((f"tmall:L-{i}", "tmall", f"L-{i}", None, f"live-{i}", t0 + i * 60, 199.0))
            if i % 2 == 0:
                orders.append((order_id("pos", f"R-{i}", "sh-1"), "pos", f"R-{i}", "sh-1", f"live-{i}", t0 + 20 * DAY, 299.0))
        for i in range(60):
            orders.append((f"tmall:T-{i}", "tmall", f"T-{i}", None, f"other-{i}", t0 + i * 60, 99.0))
            if i % 10 == 0:
                orders.append((order_id("pos", f"S-{i}", "sh-1"), "pos", f"S-{i}", "sh-1", f"other-{i}", t0 + 45 * DAY, 150.0))
        tx.executemany("INSERT INTO orders (id, channel, order_no, store, member_id, ts, paid, status) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, 'paid')", orders)


def test_order_source_and_segment_cohorts_against_matched_controls(start_cloud) -> None:
    client, runtime = start_cloud()
    db = runtime.db
    _brand(db)
    made = client.post("/v1/cohorts", json={"name": "3月1日直播", "channel": "tmall",
                                            "order_nos": [f"L-{i}" for i in range(40)]})
    assert made.status_code == 201
    live = client.get(f"/v1/cohorts/{made.json()['id']}").json()
    assert live["matched"] == {"cohort": 40, "control": 40}  # 20 high + 20 low tier from the other buyers
    by_days = {h["days"]: h for h in live["horizons"]}
    # the tagged order itself is the start, not a repurchase
    assert by_days[30]["cohort"]["buyer_rate"] == 0.5 and by_days[30]["cohort"]["channel_mix"] == {"pos": 1.0}
    assert by_days[30]["control"]["buyer_rate"] == 0.0 and 0 < by_days[60]["control"]["buyer_rate"] <= 0.15
    assert by_days[30]["cohort"]["ltv_per_head"] == round(20 * 299.0 / 40, 2)
    assert client.get(f"/v1/cohorts/{made.json()['id']}").json() == live  # the same control on every read
    # an influencer's coupon: the cohort is who redeemed it, followed from that order
    tpl = coupons.add_template(db, name="达人券", kind="amount_off", value=20, valid_days=30, actor="hq")
    for i in range(6):
        code = coupons.issue(db, tpl["id"], f"live-{i}", issued_by="api:influencer", now=LIVE - timedelta(days=1))["code"]
        coupons.redeem(db, code, store=None, channel="tmall", amount=199, person=f"live-{i}", order_id=f"tmall:L-{i}",
                       now=LIVE)
    coupon = client.post("/v1/cohorts", json={"name": "达人券", "coupon_template": tpl["id"]}).json()
    found = client.get(f"/v1/cohorts/{coupon['id']}").json()
    assert found["matched"] == {"cohort": 6, "control": 6} and found["horizons"][0]["cohort"]["buyer_rate"] == 0.5
    # a segment on a day, against as many persons outside it of the same value tiers
    segment = segments.save(db, "active", segments.Condition.parse({"lifecycle": ["active"]}), actor="t")
    seg = client.post("/v1/cohorts", json={"name": "活跃会员", "segment_id": segment["id"], "start": LIVE.isoformat()})
    followed = client.get(f"/v1/cohorts/{seg.json()['id']}").json()
    assert followed["matched"] == {"cohort": 40, "control": 40}
    assert {h["days"]: h["cohort"]["buyer_rate"] for h in followed["horizons"]} == {30: 1.0, 60: 1.0, 90: 1.0, 180: 1.0}
    assert {c["id"] for c in client.get("/v1/cohorts").json()} == {seg.json()["id"], coupon["id"], made.json()["id"]}
    assert client.post("/v1/cohorts", json={"name": "x", "order_nos": ["L-1"]}).status_code == 422  # no channel
    assert client.get("/v1/cohorts/nope").status_code == 404
    assert all(h["complete"] for h in followed["horizons"])


def test_a_till_receipt_names_its_store(start_cloud) -> None:
    """Issue 16: receipt numbers are per store, so R1 at s1 and R1 at s2 are two buyers' orders; a
    cohort naming s1's R1 follows only s1's buyer, and a till receipt without its store is refused."""
    client, runtime = start_cloud()
    t0, ts = int(LIVE.timestamp()), iso(LIVE - timedelta(days=300))
    with runtime.db.transaction() as tx:
        for person, store in (("buyer-s1", "s1"), ("buyer-s2", "s2")):
            tx.execute("INSERT INTO members (id, source, source_key, name, created) VALUES (?, 'crm', ?, '李娜', ?)",
                       (person, person, ts))
            tx.execute("INSERT INTO orders (id, channel, order_no, store, member_id, ts, paid, status) "
                       "VALUES (?, 'pos', 'R1', ?, ?, ?, 120.0, 'paid')", (order_id("pos", "R1", store), store, person, t0))
    made = client.post("/v1/cohorts", json={"name": "s1 R1", "channel": "pos",
                                            "order_nos": [{"order_no": "R1", "store": "s1"}]})
    assert made.status_code == 201
    assert made.json()["definition"]["order_nos"] == [{"order_no": "R1", "store": "s1"}]
    followed = client.get(f"/v1/cohorts/{made.json()['id']}").json()
    assert followed["matched"] == {"cohort": 1, "control": 1}  # s1's buyer; s2's is a same-day other buyer
    refused = client.post("/v1/cohorts", json={"name": "R1", "channel": "pos", "order_nos": ["R1"]})
    assert refused.status_code == 422 and "numbered per store" in refused.json()["detail"][0]["msg"]
    # a cohort saved before receipts named their store is refused on read, not followed wrongly
    runtime.db.execute("INSERT INTO cohorts (id, name, definition, created, created_by) VALUES (?, ?, ?, ?, ?)",
                       ("cold", "R1", '{"channel": "pos", "order_nos": ["R1"]}', ts, "t"))
    stale = client.get("/v1/cohorts/cold")
    assert stale.status_code == 409 and stale.json()["detail"]["code"] == "storeless_cohort"
