"""Incidents planted in the synthetic brand's raw shop-floor rows, so HQ has anomalies to see.

``cloud.synthetic.planted`` plants anomalies in the hourly metrics themselves, to measure the scan;
these happen one step earlier, in the rows the rollup reads, as the real thing would: a device
stops and its rows go missing from a local hour to the end of the day, or the shelves run empty.
The rollup and the scans then find them like any other day's numbers. Six kinds, each a failure
a store really has:

- ``screen_idle``: the guide screen froze; no card was claimed, greeted, served or sold, and nobody
  signed in or out on it (``feedback`` and ``staff_signs`` rows gone): the greeted, claimed and served
  shares collapse;
- ``camera_down``: the door camera stopped; no arrivals (``arrivals``, ``visits``) while the
  Wi-Fi box still counts footfall: arrivals and recognised members fall;
- ``shelves_empty``: the morning delivery never came and the store sold out. At a store whose
  stock system exports intraday movements (``stock_movements``) the day's receipt is gone and what
  was left on the shelves sells in the ``SELL_OUT`` after the incident's start, nothing after;
  the hourly rule reads that as it happens (``cloud.health.stock_out``). At a store that sends
  only closing counts the day's count (``stock_days``) finds every SKU at zero (all of it sold or
  written off): stock-outs and sell-through jump, known only after the day;
- ``staff_absent``: the assistants rostered to start at the incident's hour or later (``shifts``,
  the master data the generator imports) did not come in: the incident begins at the first of those
  shift starts (the day's last start when none is that late): they never signed in that day (their
  ``staff_signs`` of the day are gone), their card actions are gone, and so are the sales they would
  have made (their ``sold`` actions and POS orders); at a store without a roster all assistants but
  one stop at the hour;
- ``conversion_collapse``: customers come and look but do not buy (a price error, a broken
  fitting room): four sales in five are gone, the ``sold`` action and the POS order alike;
- ``pos_down``: the till records nothing: every POS order (and its lines) of the store is gone
  while the floor (arrivals, card actions, footfall) carries on.

The hourly source rule (``cloud.health.shortfall``) judges the live rows; with the demo brand's
volumes (about 60 arrivals and seven floor orders a store-day) an hour holds so few tickets that a
collapse needs hours to be told from chance (``bench/collapse_limits.py`` says what a faster rule
would cost in false alerts). A till that is down is told sooner by the sales the assistants still
tap 成交 with no ticket after them (``cloud.health.till_silence``), and a frozen screen by its
heartbeat stopping (``cloud.health.device_health``; the benchmark stops it at the incident's start,
as it stops the edge box's telemetry for a dead camera).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

from cloud import clock
from cloud.cdp import purchases
from cloud.db import Database
from cloud.db.database import Tx
from cloud.synthetic.floor import PAY_DELAY_S, RECEIPT_AT

KINDS = ("screen_idle", "camera_down", "shelves_empty", "staff_absent", "conversion_collapse", "pos_down")
#: of a collapse, the sales that still happen: one in ``KEPT_SALE``
KEPT_SALE = 5
FROM_HOUR = 0  # local: the device was down the whole day
#: a store out of its delivery sells what was left within this long of the incident's start
SELL_OUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Incident:
    store: str
    kind: str
    day: str  # local YYYY-MM-DD
    from_hour: int  # local hour the rows stop
    rows_changed: int


def plant_incidents(db: Database, stores: list[str], day: date, *, from_hour: int = FROM_HOUR,
                    kinds: list[str] | None = None) -> list[Incident]:
    """One incident per store in ``stores``, kinds in turn (``KINDS``, or ``kinds[n]`` for the n-th
    store), from ``from_hour`` (local) to the day's end; ``shelves_empty`` at a store without
    movements is the day's closing count, whatever the hour."""
    planted = []
    with db.transaction() as tx:
        zones = dict(tx.rows("SELECT id, timezone FROM stores"))
        for n, store in enumerate(stores):
            if store not in zones:
                raise ValueError(f"no store {store!r} to plant an incident in")
            kind = kinds[n] if kinds else KINDS[n % len(KINDS)]
            hour = _absent_from(tx, store, day, from_hour) if kind == "staff_absent" else from_hour
            start = clock.day_start_utc(day, zones[store]) + timedelta(hours=hour)
            end = clock.day_start_utc(day + timedelta(days=1), zones[store])
            changed = _plant(tx, kind, store, day, start, end)
            planted.append(Incident(store, kind, day.isoformat(), hour, changed))
    return planted


def _plant(tx: Tx, kind: str, store: str, day: date, start: datetime, end: datetime) -> int:
    """Change the store's raw rows in [start, end) as the incident would have; the rows changed."""
    window = (store, clock.iso_utc(start), clock.iso_utc(end))
    epochs = (store, int(start.timestamp()), int(end.timestamp()))
    if kind == "shelves_empty":
        if tx.scalar("SELECT 1 FROM stock_movements WHERE store = ? AND day = ? LIMIT 1", (store, day.isoformat())):
            return _sell_out(tx, store, day, start, end)
        return tx.execute("UPDATE stock_days SET sold = opening + received - wasted WHERE store = ? AND day = ?",
                          (store, day.isoformat()))
    if kind in ("screen_idle", "camera_down"):
        tables = ("feedback", "staff_signs") if kind == "screen_idle" else ("visits", "arrivals")
        return sum(tx.execute(f"DELETE FROM {table} WHERE store = ? AND ts >= ? AND ts < ?", window)
                   for table in tables)
    if kind == "pos_down":
        buyers = [m for (m,) in tx.rows("SELECT DISTINCT member_id FROM order_lines WHERE store = ? AND ts >= ? "
                                        "AND ts < ? AND channel = 'pos'", epochs)]
        tx.execute("DELETE FROM order_attribution WHERE order_id IN (SELECT id FROM orders WHERE store = ? AND ts >= ? "
                   "AND ts < ? AND channel = 'pos')", epochs)
        removed = sum(tx.execute(f"DELETE FROM {table} WHERE store = ? AND ts >= ? AND ts < ? AND channel = 'pos'",
                                 epochs) for table in ("order_lines", "orders"))
        purchases.refresh(tx, buyers)
        return removed
    if kind == "staff_absent":
        tz = tx.scalar("SELECT timezone FROM stores WHERE id = ?", (store,))
        local = start.astimezone(clock.zone(tz))
        absent = [a for (a,) in tx.rows("SELECT assistant FROM shifts WHERE store = ? AND day = ? AND start_time >= ?",
                                        (store, day.isoformat(), local.strftime("%H:%M")))]
        if not absent:  # no roster: everyone but one stops
            present = tx.scalar("SELECT MIN(assistant) FROM feedback WHERE store = ? AND ts >= ? AND ts < ?", window)
            absent = [a for (a,) in tx.rows("SELECT DISTINCT assistant FROM feedback WHERE store = ? AND ts >= ? "
                                            "AND ts < ? AND assistant <> ?", (*window, present))]
        if not absent:
            return 0
        marks = ", ".join("?" for _ in absent)
        lost = [v for (v,) in tx.rows(f"SELECT visit_id FROM feedback WHERE store = ? AND ts >= ? AND ts < ? "
                                      f"AND assistant IN ({marks}) AND action = 'sold'", (*window, *absent))]
        changed = tx.execute(f"DELETE FROM feedback WHERE store = ? AND ts >= ? AND ts < ? AND assistant IN ({marks})",
                             (*window, *absent))
        # nor did they sign in that day (their 上岗 is a few minutes before their shift, so before ``start``)
        changed += tx.execute(f"DELETE FROM staff_signs WHERE store = ? AND ts >= ? AND ts < ? AND assistant IN ({marks})",
                              (store, clock.iso_utc(clock.day_start_utc(day, tz)), window[2], *absent))
        return changed + _drop_sales(tx, lost)
    if kind == "conversion_collapse":
        sold = [v for (v,) in tx.rows("SELECT visit_id FROM feedback WHERE store = ? AND ts >= ? AND ts < ? "
                                      "AND action = 'sold' ORDER BY ts", window)]
        lost = [v for n, v in enumerate(sold) if n % KEPT_SALE]
        return _drop_sales(tx, lost) + sum(
            tx.execute("DELETE FROM feedback WHERE visit_id = ? AND action = 'sold'", (v,)) for v in lost)
    raise ValueError(f"unknown incident kind {kind!r}; one of {', '.join(KINDS)}")


def _absent_from(tx: Tx, store: str, day: date, hour: int) -> int:
    """The local hour a staff absence from ``hour`` begins: the first rostered shift start at or after it,
    or the day's last start when none is that late; ``hour`` itself at a store without a roster."""
    starts = sorted(int(t[:2]) for (t,) in tx.rows("SELECT DISTINCT start_time FROM shifts WHERE store = ? AND day = ?",
                                                   (store, day.isoformat())))
    if not starts:
        return hour
    return next((h for h in starts if h >= hour), starts[-1])


def _sell_out(tx: Tx, store: str, day: date, start: datetime, end: datetime) -> int:
    """The day's receipts and write-offs gone; sales before ``start`` only of what was on the shelf
    (the previous closing count), what was left sold at random minutes of [start, start + ``SELL_OUT``),
    no sale after; the day's closing count agrees (nothing received, all of it sold). The late delivery
    comes the next morning (``end``, the day's local end, + ``RECEIPT_AT``: a receipt of what the day
    would have closed with), so the days after are what they were."""
    rng = random.Random(f"{store}{day}")
    text = day.isoformat()
    changed = tx.execute("DELETE FROM stock_movements WHERE store = ? AND day = ? AND kind IN ('receipt', 'waste')",
                         (store, text))
    left = dict(tx.rows("SELECT sku, opening FROM stock_days WHERE store = ? AND day = ?", (store, text)))
    cutoff = start.astimezone(UTC).isoformat()
    for move_id, sku, qty, ts in tx.rows("SELECT id, sku, qty, ts FROM stock_movements WHERE store = ? AND day = ? "
                                         "AND kind = 'sale' ORDER BY ts, id", (store, text)):
        keep = min(int(qty), left.get(sku, 0)) if ts < cutoff else 0
        left[sku] = left.get(sku, 0) - keep
        if keep == 0:
            changed += tx.execute("DELETE FROM stock_movements WHERE id = ?", (move_id,))
        elif keep < qty:
            changed += tx.execute("UPDATE stock_movements SET qty = ? WHERE id = ?", (keep, move_id))
    for sku, units in left.items():
        if units > 0:
            at = start + timedelta(seconds=rng.uniform(0, SELL_OUT.total_seconds()))
            tx.execute("INSERT INTO stock_movements (store, sku, ts, day, kind, qty, ref) VALUES (?, ?, ?, ?, 'sale', ?, ?)",
                       (store, sku, at.astimezone(UTC).replace(microsecond=0).isoformat(), text, units,
                        f"sell-out-{store}-{text}-{sku}"))
            changed += 1
    late = tx.rows("SELECT sku, opening + received - sold - wasted FROM stock_days WHERE store = ? AND day = ?",
                   (store, text))
    tx.execute("UPDATE stock_days SET received = 0, wasted = 0, sold = opening WHERE store = ? AND day = ?",
               (store, text))
    next_day = day + timedelta(days=1)
    if tx.scalar("SELECT 1 FROM stock_movements WHERE store = ? AND day = ? LIMIT 1", (store, next_day.isoformat())):
        tx.executemany("INSERT INTO stock_movements (store, sku, ts, day, kind, qty, ref) "
                       "VALUES (?, ?, ?, ?, 'receipt', ?, ?)",
                       [(store, sku, (end + RECEIPT_AT).astimezone(UTC).isoformat(), next_day.isoformat(), int(units),
                         f"late-{store}-{text}-{sku}") for sku, units in late if units > 0])
    return changed


def _drop_sales(tx: Tx, visits: list[str]) -> int:
    """The till orders (lines, attribution) of these visits' sales: the floor rings a sale up
    ``PAY_DELAY_S`` after the arrival (``cloud.synthetic.floor``), at the visit's store."""
    orders = []
    for visit in visits:
        for store, ts in tx.rows("SELECT store, ts FROM visits WHERE id = ?", (visit,)):
            paid_at = int(datetime.fromisoformat(ts).timestamp()) + PAY_DELAY_S
            orders += [o for (o,) in tx.rows("SELECT id FROM orders WHERE store = ? AND channel = 'pos' AND ts = ?",
                                             (store, paid_at))]
    buyers = [m for o in orders for (m,) in tx.rows("SELECT member_id FROM orders WHERE id = ?", (o,))]
    removed = sum(tx.execute(f"DELETE FROM {table} WHERE {column} = ?", (o,)) for o in orders
                  for table, column in (("order_lines", "order_id"), ("order_attribution", "order_id"), ("orders", "id")))
    purchases.refresh(tx, buyers)
    return removed


def as_json(incidents: list[Incident]) -> list[dict]:
    return [asdict(i) for i in incidents]
