"""Master data's tables (version 10): what a brand's catalogue, store, HR, finance and stock
systems export, where the features that read them look.

The features' own tables gain the columns the brand's files carry: ``products`` (guide; version 1,
member price from health's version 6) its barcode, brand, category path and shelf life; ``stores``
(health) opening hours, floor area, entrances and cameras; ``assistants`` (health) a role. New:
``shifts`` (who works where when), ``store_day_targets`` (sales, traffic and conversion targets per
store and day; their monthly sums are written to health's ``store_targets``), ``stock_movements``
(intraday receipts, sales, waste, transfers) and ``stock_batches`` (a delivery of a product with its
expiry date; for perishables the earliest unexpired batch sets pricing's ``perishables``).
"""

from __future__ import annotations

from cloud.db.migrations import Migration, Schema

STATEMENTS: tuple[str, ...] = (
    "ALTER TABLE products ADD COLUMN barcode TEXT",
    "ALTER TABLE products ADD COLUMN brand TEXT",
    "ALTER TABLE products ADD COLUMN category_path TEXT",
    "ALTER TABLE products ADD COLUMN shelf_life_days BIGINT",
    "CREATE INDEX products_barcode ON products (barcode)",
    "ALTER TABLE stores ADD COLUMN opening_hours TEXT",
    "ALTER TABLE stores ADD COLUMN area_m2 DOUBLE PRECISION",
    "ALTER TABLE stores ADD COLUMN entrances BIGINT",
    "ALTER TABLE stores ADD COLUMN cameras BIGINT",
    "ALTER TABLE assistants ADD COLUMN role TEXT",
    """CREATE TABLE shifts (
        assistant TEXT NOT NULL, store TEXT NOT NULL, day TEXT NOT NULL, start_time TEXT NOT NULL,
        end_time TEXT NOT NULL, import_id BIGINT, PRIMARY KEY (assistant, day, start_time))""",
    "CREATE INDEX shifts_store_day ON shifts (store, day)",
    """CREATE TABLE store_day_targets (
        store TEXT NOT NULL, day TEXT NOT NULL, sales DOUBLE PRECISION NOT NULL, traffic BIGINT,
        conversion DOUBLE PRECISION, import_id BIGINT, PRIMARY KEY (store, day))""",
    """CREATE TABLE stock_movements (
        id {serial_pk}, store TEXT NOT NULL, sku TEXT NOT NULL, ts TEXT NOT NULL, day TEXT NOT NULL,
        kind TEXT NOT NULL, qty BIGINT NOT NULL, batch TEXT, ref TEXT NOT NULL, import_id BIGINT)""",
    "CREATE UNIQUE INDEX stock_movements_ref ON stock_movements (store, ref)",
    "CREATE INDEX stock_movements_sku ON stock_movements (store, sku, ts)",
    """CREATE TABLE stock_batches (
        store TEXT NOT NULL, sku TEXT NOT NULL, batch TEXT NOT NULL, received_on TEXT, expires_on TEXT,
        qty BIGINT NOT NULL, import_id BIGINT, PRIMARY KEY (store, sku, batch))""",
    "CREATE INDEX stock_batches_expiry ON stock_batches (store, expires_on)",
)

SCHEMA = Schema("masterdata", (
    Migration(10, "master data: catalogue, store and staff columns, shifts, day targets, stock movements and batches",
              STATEMENTS),
))
