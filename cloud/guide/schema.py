"""The guide's tables: the product catalogue recommendations draw from, and (version 4,
``cloud.guide.sales_scripts.schema``) sales script templates and which one each card showed.
"""

from __future__ import annotations

from cloud.db.migrations import Migration, Schema
from cloud.guide.sales_scripts import schema as script_schema

SCHEMA = Schema("guide", (
    Migration(1, "product catalogue", (
        """CREATE TABLE products (
        sku TEXT PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, price DOUBLE PRECISION NOT NULL,
        popularity BIGINT NOT NULL, is_new BIGINT NOT NULL)""",
        "CREATE INDEX products_category ON products (category, popularity)",
    )),
    Migration(4, "sales script templates and outcomes", script_schema.STATEMENTS),
))
