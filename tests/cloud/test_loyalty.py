"""The points ledger (issue 21): double entry, idempotent postings, earn rules, clawback, FIFO
expiry with notice, no negative balance and no double spend under concurrent tills, on both engines."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest

from cloud.cdp import members, profile
from cloud.db import Database
from cloud.guide.sales_scripts import situations
from cloud.loyalty import balances, ledger
from cloud.runtime import open_cdp

T0 = datetime(2026, 6, 1, 10, tzinfo=UTC)


def _member(db: Database, phone: str = "13800000001", tier: str = "普通会员") -> str:
    return members.add_member(db, name="王芳", phone=phone, gender="female", tier=tier, tags=[], categories=[],
                              face_consent=False).id


def _order(db: Database, order_id: str, member: str, paid: float, *, channel: str = "pos", status: str = "paid",
           refund_of: str | None = None, at: datetime = T0, lines: list[tuple[str, float]] | None = None) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO orders (id, channel, order_no, store, member_id, ts, paid, status, refund_of) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (order_id, channel, order_id, "s1" if channel == "pos" else None, member, int(at.timestamp()),
                    paid, status, refund_of))
        for i, (category, amount) in enumerate(lines or []):
            tx.execute("INSERT INTO order_lines (order_id, member_id, channel, store, ts, sku, category, qty, price, "
                       "amount) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                       (order_id, member, channel, None, int(at.timestamp()), f"sku{i}", category, amount, amount))


def _clean(db: Database) -> None:
    found = ledger.check(db)
    assert found == {"negative_balances": 0, "unbalanced_movements": 0, "ledger_mismatch": 0, "lots_mismatch": 0,
                     "entries_sum": 0}


def test_orders_earn_by_channel_category_and_tier_and_refunds_claw_back(db: Database) -> None:
    person = _member(db)  # the tier multiplier: test_tiers_follow_twelve_months_of_spend_from_every_channel
    with db.transaction() as tx:
        tx.execute("INSERT INTO loyalty_rules (pool, channel, category, per_yuan) VALUES ('main', 'tmall', '*', 0.5)")
        tx.execute("INSERT INTO loyalty_rules (pool, channel, category, per_yuan) VALUES ('main', '*', '美妆', 2)")
    _order(db, "pos1", person, 100.0, lines=[("服装", 100.0)])
    _order(db, "tm1", person, 200.0, channel="tmall", lines=[("服装", 150.0), ("美妆", 50.0)])
    assert ledger.post_new_orders(db, now=T0) == 2
    moved = {m["source_id"]: m["points"] for m in ledger.history(db, person)}
    assert moved == {"pos1": 100, "tm1": math_floor(150 * 0.5 + 50 * 2)}
    # replaying posts nothing
    assert ledger.post_new_orders(db, now=T0) == 0
    assert ledger.post_order(db, "pos1").replayed
    # a half refund claws back half, a second refund never more than what is left
    _order(db, "r1", person, -50.0, status="refund", refund_of="pos1", at=T0 + timedelta(days=1))
    _order(db, "r2", person, -100.0, status="refund", refund_of="pos1", at=T0 + timedelta(days=2))
    ledger.post_new_orders(db, now=T0)
    moved = {m["source_id"]: m["points"] for m in ledger.history(db, person)}
    assert moved["r1"] == -50 and moved["r2"] == -50
    assert balances.balance(db, person, now=T0)["balance"] == 100 + 175 - 100
    _clean(db)


def math_floor(x: float) -> int:
    import math
    return math.floor(x + 1e-9)


def test_redemption_is_idempotent_never_negative_and_a_refund_after_spending_records_the_shortfall(db: Database) -> None:
    person = _member(db)
    _order(db, "o1", person, 100.0)
    ledger.post_order(db, "o1")
    first = ledger.redeem(db, person, 80, request_id="till1:tx1", store="s1", channel="pos")
    assert (first.points, first.balance, first.replayed) == (-80, 20, False)
    again = ledger.redeem(db, person, 80, request_id="till1:tx1", store="s1", channel="pos")
    assert again.replayed and again.id == first.id and again.balance == 20
    with pytest.raises(ledger.SourceReused):
        ledger.redeem(db, person, 5, request_id="till1:tx1")
    with pytest.raises(ledger.InsufficientPoints):
        ledger.redeem(db, person, 21, request_id="till1:tx2")
    _order(db, "r1", person, -100.0, status="refund", refund_of="o1")
    claw = ledger.post_order(db, "r1")
    assert claw.points == -20 and claw.detail["shortfall"] == 80 and claw.balance == 0
    _clean(db)


def test_expiry_is_first_in_first_out_with_notice_and_the_script_fires(db: Database) -> None:
    person = _member(db)
    now = datetime.now(UTC)
    ledger.earn(db, person, 100, source="adjustment", source_id="old", at=now - timedelta(days=350))
    ledger.earn(db, person, 50, source="adjustment", source_id="new", at=now - timedelta(days=1))
    ledger.redeem(db, person, 30, request_id="r1")  # spending takes the oldest lot first
    first_expiry = (now - timedelta(days=350) + timedelta(days=365)).date().isoformat()
    assert balances.balance(db, person) == {"balance": 120, "expiring": 70, "expires_on": first_expiry}
    notices = ledger.notify_expiring(db)
    assert [(n["person"], n["points"]) for n in notices] == [(person, 70)]
    assert ledger.notify_expiring(db) == []  # told once
    # the profile carries it, and the points_expiring script applies
    prof = profile.profile(db, person)
    assert prof["points"] == {"balance": 120, "expiring": 70, "expires_on": first_expiry}
    filled = situations.values(prof, [], "zh", now)
    assert (filled["points"], filled["points_expire_on"]) == ("70", first_expiry)
    assert situations.situations(prof, filled, now, dormant_days=90)[0] == "points_expiring"
    # past the first lot's expiry: its 70 remaining points expire, once
    later = now + timedelta(days=16)
    assert ledger.expire(db, now=later) == 1
    assert ledger.expire(db, now=later) == 0
    assert balances.balance(db, person, now=later)["balance"] == 50
    assert [m["kind"] for m in ledger.history(db, person)][:1] == ["expire"]
    _clean(db)


def test_a_code_redeems_once(db: Database) -> None:
    person = _member(db)
    ledger.earn(db, person, 100, source="adjustment", source_id="g")
    code = ledger.issue_code(db, person, 40)
    assert len(code["code"]) == 12
    moved = ledger.redeem_code(db, code["code"], store="s1", channel="guide_screen")
    assert moved.balance == 60
    # the same till asking again (a retry) gets the same spending; another till or channel is refused
    assert ledger.redeem_code(db, code["code"], store="s1", channel="guide_screen").replayed
    with pytest.raises(ledger.CodeUsed):
        ledger.redeem_code(db, code["code"], store="s1", channel="pos")
    assert balances.balance(db, person)["balance"] == 60
    with pytest.raises(ledger.UnknownCode):
        ledger.redeem_code(db, "000000000000", store="s1", channel="pos")
    expired = ledger.issue_code(db, person, 10, now=T0 - timedelta(days=1))
    with pytest.raises(ledger.UnknownCode):
        ledger.redeem_code(db, expired["code"], store="s1", channel="pos")
    _clean(db)


def test_merged_records_points_follow_the_person(db: Database) -> None:
    a, b = _member(db, "13800000001"), _member(db, "13800000002")
    ledger.earn(db, a, 30, source="adjustment", source_id="a")
    ledger.earn(db, b, 40, source="adjustment", source_id="b")
    db.execute("UPDATE members SET merged_into = ? WHERE id = ?", (a, b))
    assert balances.balance(db, a)["balance"] == 70
    assert ledger.redeem(db, a, 70, request_id="all").balance == 0
    _clean(db)


def _granted(db_location: str, points: int) -> str:
    """A member holding ``points``, made through a connection of its own."""
    db = open_cdp(db_location, sample_catalogue=False)
    try:
        person = _member(db)
        ledger.earn(db, person, points, source="adjustment", source_id="grant")
        return person
    finally:
        db.close()


def race(db_location: str, workers: list[Callable[[Database], None]]) -> None:
    """Each worker in its own thread and its own connection (processes would be the same), all
    released at once; returns when every one is done (shared by tests/cloud/test_coupons.py). A
    worker that raised fails the race: a thread's exception is otherwise only a pytest warning, and
    a deadlock the product let through (a till's redeem on PostgreSQL did) passed unseen."""
    barrier = threading.Barrier(len(workers))
    raised: list[BaseException] = []

    def run(work: Callable[[Database], None]) -> None:
        own = open_cdp(db_location, sample_catalogue=False)
        try:
            barrier.wait()
            work(own)
        except BaseException as exc:
            raised.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=run, args=(work,)) for work in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not raised, [repr(e) for e in raised]


def test_two_tills_cannot_double_spend(db_location: str) -> None:
    """Ten tills race to spend one member's points: exactly balance / 10 succeed, the balance ends at
    0 and the ledger holds."""
    person = _granted(db_location, 100)
    results: list[str] = []

    def till(n: int, own: Database) -> None:
        for k in range(5):
            try:
                ledger.redeem(own, person, 10, request_id=f"till{n}:{k}", store="s1", channel="pos")
                results.append("ok")
            except ledger.InsufficientPoints:
                results.append("short")

    race(db_location, [partial(till, n) for n in range(10)])
    db = open_cdp(db_location, sample_catalogue=False)
    try:
        assert results.count("ok") == 10 and results.count("short") == 40
        assert balances.balance(db, person)["balance"] == 0
        _clean(db)
    finally:
        db.close()


def test_a_posting_inside_a_callers_transaction_is_undone_with_it(db: Database) -> None:
    """A redemption or earn inside a caller's transaction joins it (the one-statement posting, which
    commits on its own, stands aside there), so rolling the caller back undoes the points too."""
    person = _member(db)
    ledger.earn(db, person, 100, source="adjustment", source_id="grant")
    with pytest.raises(RuntimeError), db.transaction():
        ledger.redeem(db, person, 30, request_id="inside", store="s1", channel="pos")
        ledger.earn(db, person, 10, source="order", source_id="inside-order")
        raise RuntimeError("the caller gives up")
    assert balances.balance(db, person)["balance"] == 100
    assert ledger.redeem(db, person, 30, request_id="inside", store="s1", channel="pos").replayed is False
    _clean(db)


def test_one_code_shown_at_two_stores_at_once_is_honoured_at_one(db_location: str) -> None:
    """Red team: the member's redemption code taken at two tills at once. Both used to get 200 (the
    second as a "replay" of the first), so both gave the discount while the points were spent once."""
    person = _granted(db_location, 100)
    db = open_cdp(db_location, sample_catalogue=False)
    try:
        code = ledger.issue_code(db, person, 40)["code"]
    finally:
        db.close()
    results: list[str] = []

    def till(store: str, own: Database) -> None:
        try:
            results.append("replayed" if ledger.redeem_code(own, code, store=store, channel="pos").replayed else "ok")
        except ledger.CodeUsed:
            results.append("used")

    race(db_location, [partial(till, "s1"), partial(till, "s2")])
    db = open_cdp(db_location, sample_catalogue=False)
    try:
        assert sorted(results) == ["ok", "used"]
        assert balances.balance(db, person)["balance"] == 60
        _clean(db)
    finally:
        db.close()


def test_tills_retrying_at_once_while_points_are_earned_post_each_request_once_and_lots_stay_fifo(
        db_location: str) -> None:
    """Twin tills send the same request ids at the same moment while twin online streams earn for the
    same member with the same order ids: on PostgreSQL each posting is one statement whose snapshot may predate the row lock
    it waits for (the xmin test and the unique source keep it right). Each request posts at most
    once, the balance is what was told, and lots still hold exactly the balance."""
    person = _granted(db_location, 100)
    posted: list[str] = []

    def till(n: int, own: Database) -> None:
        for k in range(8):
            try:
                moved = ledger.redeem(own, person, 7, request_id=f"pair{n % 3}:{k}", store="s1", channel="pos")
                if not moved.replayed:
                    posted.append(moved.source_id)
            except ledger.InsufficientPoints:
                pass

    def stream(own: Database) -> None:
        for k in range(15):
            ledger.earn(own, person, 5, source="order", source_id=f"web:{k}", channel="tmall")

    race(db_location, [*(partial(till, n) for n in range(6)), stream, stream])
    db = open_cdp(db_location, sample_catalogue=False)
    try:
        assert len(posted) == len(set(posted)) == db.scalar(
            "SELECT COUNT(*) FROM loyalty_movements WHERE kind = 'redeem'")
        assert balances.balance(db, person)["balance"] == 100 + 15 * 5 - 7 * len(posted)
        _clean(db)
    finally:
        db.close()


def test_the_api_shows_points_history_and_redeems_at_the_till_and_by_code(start_cloud) -> None:
    client, runtime = start_cloud()
    person = _member(runtime.db)
    _order(runtime.db, "o1", person, 300.0)
    assert client.post("/v1/loyalty/orders/o1").json()["points"] == 300
    shown = client.get(f"/v1/loyalty/members/{person}").json()
    assert (shown["balance"], shown["tier"], shown["multiplier"]) == (300, "普通会员", 1.0)
    body = {"points": 100, "request_id": "till-7:0001", "store": "s1"}
    first = client.post(f"/v1/loyalty/members/{person}/redemptions", json=body)
    assert first.status_code == 201 and first.json()["balance"] == 200
    assert client.post(f"/v1/loyalty/members/{person}/redemptions", json=body).json()["replayed"] is True
    short = client.post(f"/v1/loyalty/members/{person}/redemptions", json={**body, "request_id": "x", "points": 999})
    assert short.status_code == 409 and short.json()["detail"]["code"] == "insufficient_points"
    code = client.post(f"/v1/loyalty/members/{person}/codes", json={"points": 50}).json()["code"]
    taken = client.post(f"/v1/loyalty/codes/{code}/redemption", json={"store": "s1", "channel": "guide_screen"})
    assert taken.status_code == 200 and taken.json()["balance"] == 150
    wrong = client.post("/v1/loyalty/codes/123456789012/redemption", json={"store": "s1"})
    assert wrong.status_code == 404 and wrong.json()["detail"]["code"] == "unknown_code"
    made = client.post(f"/v1/loyalty/members/{person}/adjustments",
                       json={"points": -20, "request_id": "fix-1", "reason": "double scan"})
    assert made.status_code == 201 and made.json()["balance"] == 130
    kinds = [m["kind"] for m in client.get(f"/v1/loyalty/members/{person}/history").json()["items"]]
    assert sorted(kinds) == ["adjust", "earn", "redeem", "redeem"]
    assert client.get("/v1/loyalty/check").json()["ledger_mismatch"] == 0
    assert client.get(f"/v1/members/{person}/profile").json()["points"]["balance"] == 130


def test_tiers_follow_twelve_months_of_spend_from_every_channel(db: Database) -> None:
    from cloud.loyalty import tiers

    person = _member(db)
    now = datetime.now(UTC)
    _order(db, "tm-old", person, 9000.0, channel="tmall", at=now - timedelta(days=400))  # outside the window
    _order(db, "pos-a", person, 1500.0, at=now - timedelta(days=200))
    ledger.post_order(db, "pos-a")
    assert ledger.tier_of(db, "main", person)["tier"] == "普通会员"
    _order(db, "tm-b", person, 700.0, channel="tmall", at=now - timedelta(days=1))
    ledger.post_order(db, "tm-b")  # 2,200 over both channels: silver at once, and the next order earns x1.2
    assert ledger.tier_of(db, "main", person)["tier"] == "银卡会员"
    _order(db, "pos-c", person, 100.0, at=now)
    assert ledger.post_order(db, "pos-c").points == 120
    # a refund takes spend back; and a year on, the spend has left the window: back down
    assert tiers.recompute_all(db, now=now + timedelta(days=366)) == {"persons": 1, "upgrades": 0, "downgrades": 1}
    assert ledger.tier_of(db, "main", person)["tier"] == "普通会员"
    _clean(db)


def test_a_landed_batch_earns_what_posting_its_orders_one_by_one_would(db: Database) -> None:
    """``post_landed`` posts a batch's sales together: the same points (the tier a sale earns at is
    the one the previous sale's upgrade stored), the same clawbacks, balances and tiers as
    ``post_order`` in landing order."""
    with db.transaction() as tx:
        tx.execute("INSERT INTO loyalty_rules (pool, channel, category, per_yuan) VALUES ('main', '*', '美妆', 2)")
    now = datetime.now(UTC)
    history = [("a", 1500.0, "paid", None, [("服装", 1500.0)]), ("b", 700.0, "paid", None, [("美妆", 700.0)]),
               ("c", 100.0, "paid", None, []), ("r", 350.0, "refund", "b", []), ("d", 80.0, "paid", None, [])]
    by_order: dict[str, dict[str, tuple]] = {}
    for way, phone in (("one", "13800000011"), ("batch", "13800000012")):
        person = _member(db, phone=phone)
        ids = []
        for i, (name, paid, status, of, lines) in enumerate(history):
            _order(db, f"{way}-{name}", person, paid, status=status, refund_of=of and f"{way}-{of}",
                   at=now - timedelta(minutes=10 - i), lines=lines)
            ids.append(f"{way}-{name}")
        if way == "one":
            for order_id in ids:
                ledger.post_order(db, order_id)
        else:
            ledger.post_landed(db, db.query("SELECT * FROM orders WHERE id IN (?, ?, ?, ?, ?) ORDER BY ts", ids))
            ledger.post_landed(db, db.query("SELECT * FROM orders WHERE id IN (?, ?, ?, ?, ?) ORDER BY ts", ids))
        by_order[way] = {r["source_id"].split("-")[1]: (r["kind"], r["points"]) for r in db.query(
            "SELECT source_id, kind, points FROM loyalty_movements WHERE person = ?", (person,))}
        by_order[way]["balance"] = (balances.balance(db, person), ledger.tier_of(db, "main", person)["tier"])
    assert by_order["batch"] == by_order["one"]
    assert by_order["one"]["balance"][1] == "银卡会员" and by_order["one"]["c"][1] == 120  # upgraded by b, in the batch
    _clean(db)


def test_a_landed_batch_of_refunds_claws_back_what_posting_them_one_by_one_would(db: Database) -> None:
    """``post_landed`` posts a batch's refunds with its sales in one transaction: two refunds of one
    earlier sale (the second claims only what the first left), a refund of a sale of the same batch,
    and a balance the member had mostly spent (the shortfall recorded) give the same clawbacks,
    balance, lots and tier as ``post_order`` in landing order; landing the batch again posts nothing."""
    now = datetime.now(UTC)
    batch = [("r1", -500.0, "refund", "a"), ("c", 200.0, "paid", None), ("r2", -1000.0, "refund", "a"),
             ("r3", -100.0, "refund", "c"), ("d", 300.0, "paid", None)]
    seen: dict[str, dict] = {}
    for way, phone in (("one", "13800000021"), ("batch", "13800000022")):
        person = _member(db, phone=phone)
        _order(db, f"{way}-a", person, 1000.0, at=now - timedelta(days=3))
        ledger.post_order(db, f"{way}-a")  # an earlier batch's sale: 1,000 points
        ledger.redeem(db, person, 900, request_id=f"{way}-spent")  # 100 left
        ids = []
        for i, (name, paid, status, of) in enumerate(batch):
            _order(db, f"{way}-{name}", person, paid, status=status, refund_of=of and f"{way}-{of}",
                   at=now - timedelta(minutes=10 - i))
            ids.append(f"{way}-{name}")
        landed = db.query("SELECT * FROM orders WHERE id IN (?, ?, ?, ?, ?) ORDER BY ts", ids)
        if way == "one":
            for order_id in ids:
                ledger.post_order(db, order_id)
        else:
            ledger.post_landed(db, landed)
            ledger.post_landed(db, landed)  # re-sent: nothing posts twice
        seen[way] = {
            "movements": {r["source_id"].split("-")[1]: (r["kind"], r["points"], json.loads(r["detail"]).get("shortfall"))
                          for r in db.query("SELECT source_id, kind, points, detail FROM loyalty_movements "
                                            "WHERE person = ? AND source <> 'redemption'", (person,))},
            "lots": [r[0] for r in db.rows("SELECT l.remaining FROM loyalty_lots l JOIN loyalty_accounts a "
                                           "ON a.id = l.account_id WHERE a.owner = ? ORDER BY l.expires", (person,))],
            "balance": balances.balance(db, person)["balance"], "tier": ledger.tier_of(db, "main", person)["tier"]}
    assert seen["batch"] == seen["one"]
    # r1 claims 500 of a's 1,000 but finds 100; r2 the 500 left, finding c's 200; r3 c's 100, finding none
    assert seen["one"]["movements"] == {"a": ("earn", 1000, None), "r1": ("clawback", -100, 400),
                                        "c": ("earn", 200, None), "r2": ("clawback", -200, 300),
                                        "r3": ("clawback", 0, 100), "d": ("earn", 300, None)}
    assert seen["one"]["balance"] == 300 and seen["one"]["lots"] == [0, 0, 300]
    _clean(db)


def test_a_till_order_earns_the_moment_it_lands_without_waiting_for_the_catch_up_pass(start_cloud) -> None:
    from cloud.arrivals import till

    client, runtime = start_cloud()
    member = _member(runtime.db, phone="13800000099")
    sale = {"order_no": "R-LAND-1", "store": "s1", "ts": datetime.now(UTC).isoformat(), "paid": 320.0,
            "member": {"phone": "13800000099"}, "lines": [{"sku": "SKU-1", "qty": 1, "price": 320.0}], "type": "sale"}
    till.land(runtime.db, "pos", [sale], store="s1")  # what evt/order and POST /v1/orders both call
    assert client.get(f"/v1/loyalty/members/{member}").json()["balance"] == 320  # posted by the landing hook
    refund = {**sale, "order_no": "R-LAND-1-R", "type": "refund", "refund_of": "R-LAND-1", "paid": 120.0,
              "lines": [{"sku": "SKU-1", "qty": 1, "price": 120.0}]}
    till.land(runtime.db, "pos", [refund], store="s1")
    assert client.get(f"/v1/loyalty/members/{member}").json()["balance"] == 200
    assert ledger.post_new_orders(runtime.db) == 0  # nothing left for the catch-up pass


def test_expiry_notices_go_over_consented_channels_outside_quiet_hours(db: Database) -> None:
    from cloud.activation import consent
    from cloud.activation.expiry_notices import SMS_TEMPLATE, ExpiryNoticeSender
    from cloud.channels.notice import SmsChannel
    from cloud.channels.sms import SmsSender
    from cloud.channels.sms_sim import SimulatedSms

    told, untold = _member(db, phone="13800000071"), _member(db, phone="13800000072")
    consent.set_consent(db, told, "sms", True, source="test", actor="test")
    _order(db, "o-told", told, 120.0)
    _order(db, "o-untold", untold, 80.0)
    ledger.post_new_orders(db, now=T0)
    due = T0 + timedelta(days=350)
    assert len(ledger.notify_expiring(db, now=due)) == 2
    sms = SimulatedSms().start()
    try:
        sender = ExpiryNoticeSender(db, {"sms": SmsChannel(SmsSender(sms.url, "品牌"), "SMS_ALERT")})
        night = due.replace(hour=15)  # 23:00 in Shanghai, the home stores' default zone
        assert sender.run(now=night) == {"sent": 0, "deferred": 1, "no_consent": 1, "failed": 0, "claimed_elsewhere": 0,
                                        "unanswered": 0, "found": 0, "unknown": 0}
        assert sms.messages_to("13800000071") == []
        morning = due.replace(hour=2) + timedelta(days=1)  # 10:00 in Shanghai
        assert sender.run(now=morning) == {"sent": 1, "deferred": 0, "no_consent": 0, "failed": 0, "claimed_elsewhere": 0,
                                        "unanswered": 0, "found": 0, "unknown": 0}
        sent = sms.messages_to("13800000071")
        assert len(sent) == 1 and sent[0].template == SMS_TEMPLATE and sent[0].params["points"] == "120"
        assert sms.messages_to("13800000072") == []  # no consent: recorded, never sent
        rows = {r["person"]: r for r in db.query("SELECT person, channel, outcome, receipt FROM loyalty_notices")}
        assert (rows[told]["channel"], rows[told]["outcome"]) == ("sms", "sent") and rows[told]["receipt"]
        assert (rows[untold]["channel"], rows[untold]["outcome"]) == (None, "no_consent")
        assert sender.run(now=morning) == {"sent": 0, "deferred": 0, "no_consent": 0, "failed": 0, "claimed_elsewhere": 0,
                                        "unanswered": 0, "found": 0, "unknown": 0}  # once each
    finally:
        sms.stop()


def test_a_notice_whose_answer_was_lost_is_asked_about_not_sent_again(db: Database) -> None:
    """The provider takes the SMS but the answer is lost (the connection closes): the claim stays, and
    the run after ``STALE`` asks the provider (QuerySendDetails by the OutId) instead of sending again."""
    from cloud.activation import consent
    from cloud.activation.expiry_notices import STALE, ExpiryNoticeSender
    from cloud.channels.notice import SmsChannel
    from cloud.channels.sms import SmsSender
    from cloud.channels.sms_sim import SimulatedSms

    # the provider files a message under the (China) day it really arrived, so the run is today, 10:00 there
    now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(hour=10, minute=0, second=0, microsecond=0).astimezone(UTC)
    earned = now - timedelta(days=350)
    person = _member(db, phone="13800000073")
    consent.set_consent(db, person, "sms", True, source="test", actor="test")
    _order(db, "o-lost", person, 90.0, at=earned)
    ledger.post_new_orders(db, now=earned)
    assert len(ledger.notify_expiring(db, now=now)) == 1
    sms = SimulatedSms().start()
    sms.lose_answers = 1
    try:
        sender = ExpiryNoticeSender(db, {"sms": SmsChannel(SmsSender(sms.url, "品牌"), "SMS_ALERT")})
        first = sender.run(now=now)
        assert (first["sent"], first["unanswered"]) == (0, 1)
        assert len(sms.messages_to("13800000073")) == 1  # the provider took it; only the answer was lost
        assert sender.run(now=now)["unanswered"] == 0  # not stale yet: nobody sends it again
        later = sender.run(now=now + STALE + timedelta(seconds=1))
        assert (later["found"], later["sent"], later["unanswered"]) == (1, 0, 0)
        assert len(sms.messages_to("13800000073")) == 1  # exactly one SMS reached the server
        row = db.one("SELECT outcome, channel, receipt FROM loyalty_notices WHERE person = ?", (person,))
        assert (row["outcome"], row["channel"]) == ("sent", "sms") and row["receipt"].startswith("found:")
    finally:
        sms.stop()


def test_two_processes_sending_the_same_notices_send_each_once(db: Database) -> None:
    """A second cloud process's run that starts while the first is sending a person's notice reads
    the same due rows; the claim leaves that person to the first."""
    from cloud.activation import consent
    from cloud.activation.expiry_notices import ExpiryNoticeSender
    from cloud.channels.notice import Notice, SmsChannel
    from cloud.channels.sms import SmsSender
    from cloud.channels.sms_sim import SimulatedSms

    people = [_member(db, phone=f"1380000008{i}") for i in range(3)]
    for i, person in enumerate(people):
        consent.set_consent(db, person, "sms", True, source="test", actor="test")
        _order(db, f"o-race-{i}", person, 100.0)
    ledger.post_new_orders(db, now=T0)
    due = T0 + timedelta(days=350)
    assert len(ledger.notify_expiring(db, now=due)) == 3
    morning = due.replace(hour=2) + timedelta(days=1)  # 10:00 in Shanghai
    sms = SimulatedSms().start()
    try:
        channel = SmsChannel(SmsSender(sms.url, "品牌"), "SMS_ALERT")
        other = ExpiryNoticeSender(db, {"sms": channel})
        inner: list[dict[str, int]] = []

        class Overlapping(SmsChannel):
            def send(self, address: str, notice: Notice) -> str:
                if not inner:  # the other process runs while this one is mid-send
                    inner.append(other.run(now=morning))
                return channel.send(address, notice)

        first = ExpiryNoticeSender(db, {"sms": Overlapping(SmsSender(sms.url, "品牌"), "SMS_ALERT")})
        outer = first.run(now=morning)
        assert outer["sent"] + inner[0]["sent"] == 3 and outer["claimed_elsewhere"] == 2
        assert sorted(m.phone for m in sms.sent) == sorted(f"1380000008{i}" for i in range(3))  # each once
        outcomes = db.rows(f"SELECT outcome FROM loyalty_notices WHERE person IN ({', '.join('?' * len(people))})",
                           tuple(people))
        assert [o for (o,) in outcomes] == ["sent"] * 3
    finally:
        sms.stop()
