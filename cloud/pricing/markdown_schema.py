"""Version 9 of pricing's tables (``cloud.pricing.schema``): perishables' expiry dates and the
markdown price changes made.

``perishables``: per store and product, the last selling day of the stock on the shelf and the
floor price (the stock itself and the sales rate come from ``stock_days``, migration 6).
``price_changes``: every price the markdown runner put on a product's labels, with the store-local
day and pricing period it was made in (the per-day limit is checked against these rows), the
list price and the stock at the time, so markdown losses can be read back per store and day.
"""

STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE perishables (
        store TEXT NOT NULL, sku TEXT NOT NULL, expires_on TEXT NOT NULL, floor_price DOUBLE PRECISION NOT NULL,
        updated TEXT NOT NULL, actor TEXT NOT NULL, PRIMARY KEY (store, sku))""",
    """CREATE TABLE price_changes (
        id {serial_pk}, store TEXT NOT NULL, sku TEXT NOT NULL, ts TEXT NOT NULL, day TEXT NOT NULL,
        period BIGINT NOT NULL, expires_on TEXT NOT NULL, list_price DOUBLE PRECISION NOT NULL,
        old_price DOUBLE PRECISION NOT NULL, new_price DOUBLE PRECISION NOT NULL, stock BIGINT NOT NULL,
        labels BIGINT NOT NULL, reason TEXT NOT NULL)""",
    "CREATE INDEX price_changes_sku ON price_changes (store, sku, day)",
    "CREATE INDEX price_changes_day ON price_changes (store, day)",
)
