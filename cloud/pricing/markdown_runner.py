"""Perishables markdown, run: each pricing period, plan every perishable of every store and put
the new price on its shelf labels.

The planner (``cloud.pricing.markdown_planner``) is pure; this module feeds it from the database and acts on
it. Inputs per (store, product), see ``_perishables``: from the stock system's batch file
(``stock_batches``, migration 10) the earliest expiry still to come and the units left in those
batches; for products without batches, the expiry date HQ or the store set (``perishables``,
migration 9) and the latest closing stock of the daily export (``stock_days``, migration 6). The
floor price from ``perishables`` (set through the API or by the batch file), else
``DEFAULT_FLOOR_SHARE`` of the list price; the list price and name from ``products``; the sales
rate from the daily export, the stock movements or the till (``_sales_rate``); and the price now
on the labels (the last ``price_changes`` row for the same expiry date, else the list price: a
fresh batch starts at list price). ``no_stock_data`` means neither batches nor a daily export.

The day is split into ``max_changes_per_day`` pricing periods in the store's own time zone. A
change is made only downwards, never under the floor, at most once per period and at most
``max_changes_per_day`` times per store-local day (both checked against ``price_changes``, so a
restart or a second cloud process cannot exceed the limit), and only when the policy's price for
the stock left differs from the label's. Each change is one ``price_changes`` row (what the API
and the health model read back) and a redraw of the product's labels through
``cloud.pricing.shelf`` (which also shows the member price and keeps the labels right afterwards).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import paho.mqtt.client as mqtt

from cloud import clock
from cloud.db import Database
from cloud.pricing import labels, shelf
from cloud.pricing.markdown_planner import Perishable, PricePoint, plan
from cloud.pricing.shelf import Publish
from cloud.scheduler import Scheduler

log = logging.getLogger(__name__)

#: Days of stock rows the sales rate is averaged over.
RATE_DAYS = 7
#: A product that sold nothing lately still gets a plan: assume this many units a day.
MIN_SALES_RATE = 0.1
#: The planner's stock bound (``Perishable.stock``).
MAX_STOCK = 5000
#: Without a floor price from HQ, the store or the batch file, a markdown stops at half the list price.
DEFAULT_FLOOR_SHARE = 0.5
#: Stock movements that take units out of a batch, and those that bring them back.
_OUT = ("sale", "waste", "transfer_out")
_IN = ("return", "transfer_in")


@dataclass(frozen=True)
class PlanItem:
    """One perishable of one store now: its inputs, the price for this period, and why not, if none."""

    store: str
    sku: str
    name: str
    expires_on: date
    floor_price: float
    list_price: float | None = None
    current_price: float | None = None
    stock: int | None = None
    sales_rate: float | None = None
    days_to_expiry: int | None = None
    day: str = ""
    period: int = 0
    changes_today: int = 0
    max_changes_per_day: int = 0
    changed_this_period: bool = False
    price: float | None = None  # the policy's price for this period
    status: str = "planned"  # planned | no_stock_data | sold_out | expired | unknown_product
    schedule: list[PricePoint] = field(default_factory=list)

    @property
    def due(self) -> bool:
        """Whether the runner should change the label now."""
        return (self.status == "planned" and self.price is not None and self.current_price is not None
                and self.price < self.current_price and not self.changed_this_period
                and self.changes_today < self.max_changes_per_day)


def set_perishable(db: Database, store: str, sku: str, expires_on: date, floor_price: float, *, actor: str) -> None:
    """The store's stock of ``sku`` sells until ``expires_on`` (its last selling day), never under ``floor_price``."""
    db.execute(
        "INSERT INTO perishables (store, sku, expires_on, floor_price, updated, actor) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (store, sku) DO UPDATE SET expires_on = excluded.expires_on, floor_price = excluded.floor_price, "
        "updated = excluded.updated, actor = excluded.actor",
        (store, sku, expires_on.isoformat(), floor_price, datetime.now(UTC).isoformat(), actor))


def plan_store(db: Database, store: str, at: datetime, *, max_changes_per_day: int, elasticity: float) -> list[PlanItem]:
    """Every perishable of the store with the price the policy wants for the current period (no writes)."""
    tz = db.scalar("SELECT timezone FROM stores WHERE id = ?", (store,))
    local = at.astimezone(clock.zone(tz))
    today = local.date()
    periods = max(1, max_changes_per_day)
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    period = min(periods - 1, seconds * periods // 86400)
    return [_plan_one(db, store, tz, row, today, period, max_changes_per_day, elasticity)
            for row in _perishables(db, store, today)]


def _perishables(db: Database, store: str, today: date) -> list[dict]:
    """The store's perishables to price: one row per product with ``expires_on``, ``floor_price``
    (None: the default share of the list price) and ``batch_stock`` (None: read ``stock_days``).

    A product with stock batches is priced from them: the earliest expiry still to come among the
    batches with units left, and the units left in those batches (the batch file's quantity, less
    the batch's sales, waste and transfers out since that file was imported, plus its returns and
    transfers in). Without batches, the ``perishables`` row set through the API (or by a batch
    file with a floor price) gives the expiry and ``stock_days`` the stock.
    """
    floors = {r["sku"]: r for r in db.query("SELECT sku, expires_on, floor_price FROM perishables WHERE store = ?",
                                            (store,))}
    batches: dict[str, list[tuple[str, int]]] = {}
    for sku, expires_on, left in db.rows(
            f"SELECT b.sku, b.expires_on, b.qty - COALESCE((SELECT SUM(CASE WHEN m.kind IN {_OUT} THEN m.qty "
            f"WHEN m.kind IN {_IN} THEN -m.qty ELSE 0 END) FROM stock_movements m WHERE m.store = b.store "
            "AND m.sku = b.sku AND m.batch = b.batch AND m.ts > COALESCE(i.started, '')), 0) "
            "FROM stock_batches b LEFT JOIN imports i ON i.id = b.import_id "
            "WHERE b.store = ? AND b.expires_on IS NOT NULL", (store,)):
        batches.setdefault(sku, []).append((expires_on, max(0, int(left))))
    found = []
    for sku in sorted(set(floors) | set(batches)):
        floor = floors[sku]["floor_price"] if sku in floors else None
        if sku in batches:
            live = sorted(e for e, left in batches[sku] if left > 0 and e >= today.isoformat())
            expires_on = live[0] if live else max(e for e, _ in batches[sku])
            stock = sum(left for e, left in batches[sku] if e == expires_on)
            found.append({"sku": sku, "expires_on": expires_on, "floor_price": floor, "batch_stock": stock})
        else:
            found.append({"sku": sku, "expires_on": floors[sku]["expires_on"], "floor_price": floor, "batch_stock": None})
    return sorted(found, key=lambda r: (r["expires_on"], r["sku"]))


def _sales_rate(db: Database, store: str, tz: str, sku: str, today: date) -> float | None:
    """Units sold a day lately: the stock export's daily sales, else the stock system's sale
    movements, else the till's order lines, over the last ``RATE_DAYS`` days (None: no sales record)."""
    rows = db.rows("SELECT sold FROM stock_days WHERE store = ? AND sku = ? AND day <= ? ORDER BY day DESC LIMIT ?",
                   (store, sku, today.isoformat(), RATE_DAYS))
    if rows:
        return sum(int(r[0]) for r in rows) / len(rows)
    first = today - timedelta(days=RATE_DAYS - 1)
    moved = db.one("SELECT SUM(qty) AS units, MIN(day) AS since FROM stock_movements WHERE store = ? AND sku = ? "
                   "AND kind = 'sale' AND day >= ? AND day <= ?", (store, sku, first.isoformat(), today.isoformat()))
    if moved and moved["units"] is not None:
        return int(moved["units"]) / ((today - date.fromisoformat(moved["since"])).days + 1)
    start, end = clock.utc_range(first, today, tz)
    till = db.one("SELECT SUM(qty) AS units, MIN(ts) AS since FROM order_lines WHERE store = ? AND sku = ? "
                  "AND ts >= ? AND ts < ?", (store, sku, int(start.timestamp()), int(end.timestamp())))
    if till and till["units"] is not None:
        since = date.fromisoformat(clock.local_day_of_epoch(int(till["since"]), tz))
        return max(0, int(till["units"])) / ((today - since).days + 1)
    return None


def _plan_one(db: Database, store: str, tz: str, row: dict, today: date, period: int, max_changes: int,
              elasticity: float) -> PlanItem:
    expires_on = date.fromisoformat(row["expires_on"])
    product = db.one("SELECT name, price FROM products WHERE sku = ?", (row["sku"],))
    base = PlanItem(store=store, sku=row["sku"], name=(product or {}).get("name") or row["sku"], expires_on=expires_on,
                    floor_price=float(row["floor_price"] or 0.0), day=today.isoformat(), period=period)
    if product is None or product["price"] is None:
        return _with(base, status="unknown_product")
    list_price = float(product["price"])
    if row["floor_price"] is None:
        base = _with(base, floor_price=math.ceil(list_price * DEFAULT_FLOOR_SHARE * 10) / 10)
    current = db.scalar("SELECT new_price FROM price_changes WHERE store = ? AND sku = ? AND expires_on = ? "
                        "ORDER BY id DESC LIMIT 1", (store, row["sku"], row["expires_on"]))
    done = db.rows("SELECT period FROM price_changes WHERE store = ? AND sku = ? AND day = ?",
                   (store, row["sku"], today.isoformat()))
    base = _with(base, list_price=list_price, current_price=float(current) if current is not None else list_price,
                 changes_today=len(done), max_changes_per_day=max_changes,
                 changed_this_period=any(p == period for (p,) in done))
    days = (expires_on - today).days + 1
    if days < 1:
        return _with(base, status="expired", days_to_expiry=days)
    stock = row["batch_stock"]
    if stock is None:
        closing = db.scalar("SELECT opening + received - sold - wasted FROM stock_days WHERE store = ? AND sku = ? "
                            "AND day <= ? ORDER BY day DESC LIMIT 1", (store, row["sku"], today.isoformat()))
        if closing is None:
            return _with(base, status="no_stock_data", days_to_expiry=days)
        stock = closing
    stock = max(0, min(MAX_STOCK, int(stock)))
    rate = max(MIN_SALES_RATE, _sales_rate(db, store, tz, row["sku"], today) or 0.0)
    base = _with(base, stock=stock, sales_rate=round(rate, 2), days_to_expiry=days)
    if stock == 0:
        return _with(base, status="sold_out")
    floor = min(base.floor_price, list_price)
    perishable = Perishable(sku=row["sku"], list_price=list_price, floor_price=floor, stock=stock, sales_rate=rate,
                            days_to_expiry=min(days, 60), elasticity=elasticity, max_changes_per_day=max_changes)
    policy = plan(perishable)
    current_price = base.current_price if base.current_price is not None else list_price
    price = max(floor, policy.price(period, current_price, stock))  # the ladder ends at the floor
    return _with(base, price=price, schedule=policy.expected_schedule()[period:period + 2 * perishable.periods_per_day])


def _with(item: PlanItem, **changes: object) -> PlanItem:
    return PlanItem(**{**item.__dict__, **changes})


@dataclass(frozen=True)
class Change:
    store: str
    sku: str
    old_price: float
    new_price: float
    labels: int


def run(db: Database, at: datetime, publish: Publish, *, max_changes_per_day: int, elasticity: float) -> list[Change]:
    """One pass over every store with perishables or dated stock batches: record and publish the changes due now."""
    changes = []
    for (store,) in db.rows("SELECT store FROM perishables UNION SELECT store FROM stock_batches "
                            "WHERE expires_on IS NOT NULL ORDER BY store"):
        for item in plan_store(db, store, at, max_changes_per_day=max_changes_per_day, elasticity=elasticity):
            if item.due:
                changes.append(_change(db, item, at, publish))
    return changes


def _change(db: Database, item: PlanItem, at: datetime, publish: Publish) -> Change:
    assert item.price is not None and item.current_price is not None and item.list_price is not None
    bound = len(labels.registry_for(db, item.store, [item.sku]).for_products(item.store, [item.sku]))
    with db.transaction() as tx:
        # re-checked inside the transaction: another cloud process may have priced this period already
        if tx.scalar("SELECT COUNT(*) FROM price_changes WHERE store = ? AND sku = ? AND day = ? AND period = ?",
                     (item.store, item.sku, item.day, item.period)):
            return Change(item.store, item.sku, item.current_price, item.current_price, 0)
        tx.execute(
            "INSERT INTO price_changes (store, sku, ts, day, period, expires_on, list_price, old_price, new_price, stock, "
            "labels, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'markdown')",
            (item.store, item.sku, clock.iso_utc(at), item.day, item.period, item.expires_on.isoformat(),
             item.list_price, item.current_price, item.price, item.stock, bound))
    # the labels show the new price with its badge (and the member price only if still lower)
    drawn = shelf.sync(db, publish, store=item.store, skus=[item.sku], at=at,
                       reason=f"markdown ¥{item.current_price:g} -> ¥{item.price:g}")
    log.info("markdown %s in %s: ¥%g -> ¥%g (%d left, %d days), %d/%d labels", item.sku, item.store,
             item.current_price, item.price, item.stock, item.days_to_expiry, sum(d.sent for d in drawn), bound)
    return Change(item.store, item.sku, item.current_price, item.price, bound)


def markdown_losses(db: Database, store: str, first: date, last: date) -> dict[str, float]:
    """Yuan given away by markdowns per store-local day: for every till line of a marked-down
    product sold while a markdown was in force, ``qty × (list price − marked-down price)``.

    For the health model's ``markdown_waste``, which today reads the stock export's
    ``stock_days.markdown_loss``: this is the same figure computed from ``price_changes`` and the
    till (``order_lines``), for stores whose stock system does not report it.
    """
    tz = db.scalar("SELECT timezone FROM stores WHERE id = ?", (store,))
    start, end = clock.utc_range(first, last, tz)
    changes: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for sku, expires_on, ts, list_price, price in db.rows(
            "SELECT sku, expires_on, ts, list_price, new_price FROM price_changes WHERE store = ? AND ts < ? "
            "ORDER BY id", (store, clock.iso_utc(end))):
        changes.setdefault((sku, expires_on), []).append((datetime.fromisoformat(ts).timestamp(), list_price, price))
    losses: dict[str, float] = {}
    for (sku, expires_on), steps in changes.items():
        batch_end = clock.day_start_utc(date.fromisoformat(expires_on) + timedelta(days=1), tz).timestamp()
        for (since, list_price, price), following in zip(steps, [*steps[1:], None]):
            until = min(batch_end, following[0] if following else batch_end, end.timestamp())
            for ts, qty in db.rows("SELECT ts, qty FROM order_lines WHERE store = ? AND sku = ? AND ts >= ? AND ts < ? "
                                   "AND qty > 0", (store, sku, int(max(since, start.timestamp())), int(until))):
                day = clock.local_day_of_epoch(int(ts), tz)
                losses[day] = round(losses.get(day, 0.0) + qty * (list_price - price), 2)
    return losses


class MarkdownService:
    """Runs ``run`` every ``every_s`` seconds on the process's scheduler (the first pass right when it
    starts), publishing label redraws on the cloud process's one MQTT connection (``client``: the
    ingest worker's; None: plan and record only)."""

    def __init__(self, db: Database, client: mqtt.Client | None, *, every_s: float, max_changes_per_day: int,
                 elasticity: float) -> None:
        self._db = db
        self._client = client
        self._every_s = every_s
        self._max_changes = max_changes_per_day
        self._elasticity = elasticity

    def schedule(self, scheduler: Scheduler) -> None:
        scheduler.every("markdown", self._every_s, self.run_once, first_after_s=0)

    def run_once(self, at: datetime | None = None) -> list[Change]:
        return run(self._db, at or datetime.now(UTC), shelf.publisher(self._client),
                   max_changes_per_day=self._max_changes, elasticity=self._elasticity)
