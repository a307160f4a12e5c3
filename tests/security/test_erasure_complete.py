"""Issue 14, finding 8: erasure left personal data, replayed over HTTP with a real broker and the
guide screen's own MQTT feed and board.

Quarantined raw import rows kept the phone and buyer name (readable at
``GET /v1/imports/{id}/quarantine``), ``script_shown`` kept the person id beside the card id (so
visits re-identified), and guide screens were never told. Now nothing in any table names the
person (audit and consent rows keep a pseudonym), the store's screens drop the person's cards
and acknowledge, as the edge boxes do, and ``GET /v1/erasures/{id}`` lists every place.
"""

# ruff: noqa: F811 (the cloud fixtures are imported by name, then taken as test arguments)
from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from uuid import uuid4

from cloud.api import auth
from cloud.arrivals import visits
from cloud.arrivals.visits import Visit
from cloud.fleet import devices
from cloud.guide.sales_scripts import outcomes
from cloud.guide.sales_scripts.templates import BUILTIN
from protocol import transport
from protocol.messages import GuideCard
from tests.cloud.conftest import db_location, face_engine, pg_database, start_cloud  # noqa: F401 (fixtures)

PHONE, NICK = "13800138000", "nick_wangfang"
TMALL = ("订单编号,买家会员名,收货人手机号,付款时间,商品编码,类目,购买数量,商品单价,实付金额,订单状态,币种\n"
         f"T1,{NICK},+86 138-0013-8000,2025-03-01 20:15:00,SKU1,护肤,1,199,199,交易成功,CNY\n"
         f"T2,{NICK},+86 138 0013 8000,not a time,SKU1,护肤,1,199,199,交易成功,CNY\n")


def _everything(runtime) -> str:
    """Every row of every table but the command outbox, as text (the outbox carries the ids the
    devices need until they acknowledge)."""
    tables = runtime.db.query("SELECT name FROM sqlite_master WHERE type = 'table'") if "sqlite" in str(
        type(runtime.db)).lower() else runtime.db.query(
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'")
    dump = []
    for table in sorted(t["name"] for t in tables):
        if table not in ("commands", "schema_migrations"):
            dump += [f"{table}: {row}" for row in runtime.db.query(f'SELECT * FROM "{table}"')]
    return "\n".join(dump)


def test_erasure_clears_every_place_and_the_screens_drop_the_cards(start_cloud, mosquitto) -> None:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    from kiosk.guide_screen.board import Board
    from kiosk.guide_screen.feed import CardFeed

    app = QApplication.instance() or QApplication(["erasure-test"])
    client, runtime = start_cloud(broker_url=mosquitto.url)
    hq = {"X-API-Key": auth.create_key(runtime.db, name="Zhou HQ", role="hq_admin").key}
    brand = f"b{uuid4().hex[:6]}"
    assert client.post("/v1/stores", headers=hq, json={"id": "s1", "brand": brand, "name": "旗舰店"}).status_code == 201
    devices.register_device(runtime.db, brand, "s1", "edge-01", "edge")
    devices.register_device(runtime.db, brand, "s1", "kiosk-main", "kiosk")
    imported = client.post("/v1/imports?channel=tmall", headers=hq, files={"file": ("t.csv", TMALL.encode())}).json()
    assert sum(imported["quarantined"].values()) == 1
    person = runtime.db.scalar("SELECT id FROM members WHERE source = 'tmall'")
    card_id = uuid4().hex
    visits.record_visit(runtime.db, Visit(id=uuid4().hex, brand=brand, store="s1", member_id=person, confidence=0.8,
                                          ts=datetime.now(UTC), arrival_event_id="arrival-1", device="edge-01",
                                          camera="door", card_id=card_id))
    outcomes.record_shown(runtime.db, card_id=card_id, person_id=person, template_id=BUILTIN[0].id, variant="A",
                          ts=datetime.now(UTC))
    assert client.put(f"/v1/members/{person}/consent", headers=hq, json={"face": False}).status_code == 200
    quarantine = client.get(f"/v1/imports/{imported['import_id']}/quarantine", headers=hq).text
    assert NICK in quarantine  # before: the raw row names them

    # the store's guide screen, with the person's card on it
    feed = CardFeed(transport.BrokerUrl.parse(mosquitto.url), brand, "s1", "main")
    board = Board()
    now = datetime.now(UTC)
    card = GuideCard.model_validate({
        "card_id": card_id, "ts": now, "visit_id": uuid4().hex, "arrival_event_id": "arrival-1", "brand": brand,
        "store": "s1", "arrival_ts": now, "expires_at": datetime(2099, 1, 1, tzinfo=UTC), "confidence": 0.8,
        "member": {"member_id": person, "name": "王芳", "title": "王女士", "tier": "普通会员"}})
    board.offer(card, datetime.now(UTC))
    dropped: list[int] = []

    def on_erase(command) -> None:
        dropped.append(len(board.forget(command.member_ids)))
        feed.acknowledge(command, dropped[-1])

    feed.erase_received.connect(on_erase)
    feed.start()
    try:
        deadline = time.monotonic() + 10
        while not feed.connected and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.05)
        time.sleep(0.3)  # the erase subscription's SUBACK
        erased = client.delete(f"/v1/members/{person}", headers=hq)
        assert erased.status_code == 200, erased.text
        receipt_id = erased.json()["erasure_id"]
        deadline = time.monotonic() + 20
        receipt: dict = {}
        while time.monotonic() < deadline:
            app.processEvents()
            receipt = client.get(f"/v1/erasures/{receipt_id}", headers=hq).json()
            if any(d["device"] == "kiosk-main" and d["state"] == "done" for d in receipt["devices"]):
                break
            time.sleep(0.1)
    finally:
        feed.stop()

    assert dropped == [1] and board.cards == []
    kiosk = next(d for d in receipt["devices"] if d["device"] == "kiosk-main")
    assert kiosk["state"] == "done" and kiosk["role"] == "kiosk" and kiosk["detail"] == "dropped 1 cards"
    assert {d["device"] for d in receipt["devices"]} == {"edge-01", "kiosk-main"}
    cloud = receipt["cloud"]
    assert cloud["quarantine_rows_cleared"] == 1 and cloud["script_outcomes_unlinked"] == 1
    assert cloud["consent_rows_pseudonymised"] == 1  # the withdrawal above: when, where, who, kept under a pseudonym
    assert "Zhou HQ" in receipt["actor"]

    # nothing anywhere names them: not their id, their phone (as written or normalised), their nick
    everything = _everything(runtime)
    for trace in (person, PHONE, "138-0013-8000", "138 0013 8000", NICK):
        assert trace not in everything, trace
    assert NICK not in client.get(f"/v1/imports/{imported['import_id']}/quarantine", headers=hq).text
    assert runtime.db.scalar("SELECT COUNT(*) FROM script_shown WHERE card_id = ?", (card_id,)) == 1  # the A/B count stays
    assert client.get(f"/v1/erasures/{uuid4().hex}", headers=hq).status_code == 404
