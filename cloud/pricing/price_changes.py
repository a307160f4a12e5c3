"""The markdown price changes made, read back (``cloud.pricing.markdown_runner`` writes them)."""

from __future__ import annotations

from cloud.db import Database


def made_on(db: Database, store: str, day: str) -> list[dict]:
    """The price changes made in a store on its local ``day``, in the order they were made."""
    return db.query(
        "SELECT sku, ts, period, old_price, new_price, stock, labels FROM price_changes WHERE store = ? AND day = ? "
        "ORDER BY id", (store, day))
