"""The product catalogue the guide recommends from.

Until a brand's own catalogue is imported, the cloud seeds a small sample on its first start
(``seed_sample``), so that a fresh install and the demo show products on the card.
"""

from __future__ import annotations

import json
from pathlib import Path

from cloud.db import Database

SAMPLE_CATALOGUE = Path(__file__).resolve().parents[1] / "synthetic" / "catalog_sample.json"


def seed_sample(db: Database, catalogue: Path = SAMPLE_CATALOGUE) -> None:
    """Write the sample catalogue into an empty products table; a catalogue already there stays."""
    with db.transaction() as tx:
        if tx.scalar("SELECT COUNT(*) FROM products"):
            return
        products = json.loads(catalogue.read_text(encoding="utf-8"))
        tx.executemany(
            "INSERT INTO products (sku, name, category, price, popularity, is_new) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [(p["sku"], p["name"], p["category"], p["price"], p["popularity"], p["is_new"]) for p in products],
        )
