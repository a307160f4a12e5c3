"""Hand-made purchase histories written straight into the CDP tables."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

from cloud.cdp import members
from cloud.cdp.imports.canonical import order_id
from cloud.db import Database

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
DAY = 86400
_orders = count()


def product(db: Database, sku: str, name: str, category: str, price: float, *, is_new: bool = False) -> None:
    db.execute("INSERT INTO products (sku, name, category, price, popularity, is_new) VALUES (?, ?, ?, ?, 50, ?)",
                     (sku, name, category, price, is_new))


def member(db: Database, phone: str, name: str = "王芳") -> str:
    return members.add_member(db, name=name, phone=phone, gender="female", tier="金卡会员", tags=[], categories=[],
                            face_consent=False).id


def order(db: Database, member_id: str | None, days_ago: float, lines: list[tuple[str, str, float]], *,
          shop: str = "st-1") -> str:
    """One paid order ``days_ago`` before NOW with (sku, category, price) lines."""
    number = f"t{next(_orders)}"
    oid = order_id("pos", number, shop)
    ts = int(NOW.timestamp() - days_ago * DAY)
    with db.transaction() as tx:
        tx.execute("INSERT INTO orders (id, channel, order_no, store, member_id, ts, paid, status) "
                   "VALUES (?, 'pos', ?, ?, ?, ?, ?, 'paid')",
                   (oid, number, shop, member_id, ts, sum(p for *_, p in lines)))
        tx.executemany("INSERT INTO order_lines (order_id, member_id, channel, store, ts, sku, category, qty, price, amount) "
                       "VALUES (?, ?, 'pos', ?, ?, ?, ?, 1, ?, ?)",
                       [(oid, member_id, shop, ts, sku, category, price, price) for sku, category, price in lines])
    return oid
