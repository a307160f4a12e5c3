"""Raw rows written the way the system stores them (UTC ISO text, orders in Unix seconds), in a
store's local time (Asia/Shanghai, UTC+8), for hand-computed rollup tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cloud import clock
from cloud.db import Database

CN = timezone(timedelta(hours=8))


def local(text: str) -> datetime:
    """'2026-03-10 10:00:30' in China time."""
    return datetime.fromisoformat(text).replace(tzinfo=CN)


def add_store(db: Database, store: str, tier: str = "tier1", fmt: str = "mall") -> None:
    db.execute("INSERT INTO stores (id, brand, name, city, created, region, city_tier, format) "
               "VALUES (?, 'lumiere', ?, '上海', '2025-01-01T00:00:00+00:00', '华东', ?, ?)",
               (store, f"{store}店", tier, fmt))


def add_visit(db: Database, store: str, visit: str, at: str, member: str | None) -> None:
    ts = clock.iso_utc(local(at))
    db.execute("INSERT INTO arrivals (event_id, brand, store, device, camera, ts, received) "
               "VALUES (?, 'lumiere', ?, 'edge-01', 'door-1', ?, ?)", (f"a-{visit}", store, ts, ts))
    db.execute("INSERT INTO visits (id, brand, store, member_id, confidence, ts, arrival_event_id, device, camera, "
               "card_id) VALUES (?, 'lumiere', ?, ?, 0.8, ?, ?, 'edge-01', 'door-1', ?)",
               (visit, store, member, ts, f"a-{visit}", f"c-{visit}"))


def add_feedback(db: Database, store: str, visit: str, action: str, assistant: str, at: str,
                 amount: float | None = None, received: datetime | None = None) -> None:
    ts = clock.iso_utc(local(at))
    db.execute("INSERT INTO feedback (feedback_id, brand, store, screen, card_id, visit_id, member_id, confidence, "
               "action, assistant, amount, ts, received) VALUES (?, 'lumiere', ?, 's1', ?, ?, NULL, 0.8, ?, ?, ?, ?, ?)",
               (f"f-{visit}-{action}", store, f"c-{visit}", visit, action, assistant, amount, ts,
                clock.iso_utc(received) if received else ts))


def add_order(db: Database, order: str, store: str | None, member: str | None, at: str,
              lines: list[tuple[str, int, float]], channel: str = "pos") -> None:
    ts = int(local(at).timestamp())
    paid = sum(amount for _, _, amount in lines)
    db.execute("INSERT INTO orders (id, channel, order_no, store, member_id, ts, paid, status) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, 'paid')", (order, channel, order, store, member, ts, paid))
    for sku, qty, amount in lines:
        db.execute("INSERT INTO order_lines (order_id, member_id, channel, store, ts, sku, category, qty, price, amount) "
                   "VALUES (?, ?, ?, ?, ?, ?, '护肤', ?, ?, ?)", (order, member, channel, store, ts, sku, qty,
                                                                 amount / qty, amount))


def add_footfall(db: Database, store: str, minute: str, started: int) -> None:
    ts = clock.iso_utc(local(minute))
    db.execute("INSERT INTO footfall (brand, store, device, minute, people, passing, visits_started, distinct_macs, "
               "background, probes, event_id, received) VALUES ('lumiere', ?, 'wifi-01', ?, 1, 0, ?, 1, 0, 0, ?, ?)",
               (store, ts, started, f"ff-{store}-{minute}", ts))


def add_member(db: Database, member: str, store: str, created: str) -> None:
    db.execute("INSERT INTO members (id, source, source_key, name, home_store, created) VALUES (?, 'members', ?, ?, ?, ?)",
               (member, f"member_card:{member}", member, store, clock.iso_utc(local(created))))
