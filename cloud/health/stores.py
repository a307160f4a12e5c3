"""The brand's stores: the register store health (peer groups, local hours) and the API read.

Store health's attributes of a store (region, city tier, format, time zone) are columns of the
same table (``cloud.health.schema``, version 6); the API lists stores and registers new ones here.
"""

from __future__ import annotations

from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.db.database import IntegrityError
from cloud.errors import Conflict


class StoreExists(Conflict):
    code = "store_exists"


def listing(db: Database, *, only: str | None, limit: int, offset: int) -> list[dict]:
    """Stores by id (``only``: just that one, for a key scoped to a store)."""
    where, args = ("WHERE id = ?", [only]) if only else ("", [])
    return db.query(f"SELECT id, brand, name, city, created FROM stores {where} ORDER BY id LIMIT ? OFFSET ?",
                    (*args, limit, offset))


def add(db: Database, *, id: str, brand: str, name: str, city: str | None) -> dict:
    """Register a store; the stored row (``created`` now). Raises StoreExists."""
    created = utcnow()
    store = {"id": id, "brand": brand, "name": name, "city": city, "created": created}
    try:
        db.execute("INSERT INTO stores (id, brand, name, city, created) VALUES (?, ?, ?, ?, ?)",
                   (id, brand, name, city, iso(created)))
    except IntegrityError:
        raise StoreExists(f"store {id} exists") from None
    return store
