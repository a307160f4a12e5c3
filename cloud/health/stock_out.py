"""Shelves running empty while the store is open, from the stock system's intraday movements.

A closing stock count (``stock_days``) tells an empty store only after the day. A store whose
stock system also exports its movements (``stock_movements``: receipts, sales, waste, transfers,
returns; master data, ``cloud.masterdata``) tells it as it happens: each SKU's on-hand now is its
last closing count (the latest count day before today, local) plus the movements since that day
ended. The SKUs that matter are those the store usually sells (sold on at least half of its last
``USUAL_DAYS`` counted days); when ``WARNING_SHARE`` of them are at zero the shelves are going
empty (a delivery that never came), ``CRITICAL_SHARE`` (most of them) and the store has little left
to sell. A store that sends only closing counts gets nothing from this rule (no movements in the
last ``FEED_DAYS`` days): its empty day is known from the count, after the day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from cloud import clock
from cloud.db import Database

#: kinds that add to the shelf, and those that take from it (``cloud.masterdata.importer.MOVEMENT_KINDS``)
INWARD = frozenset({"receipt", "transfer_in", "return"})
OUTWARD = frozenset({"sale", "waste", "transfer_out"})
#: counted days that say which SKUs the store usually sells
USUAL_DAYS = 14
#: a store with no movement in this long does not send movements (or its feed stopped: not a stock matter)
FEED_DAYS = 7
#: of the usually-selling SKUs, the share at zero that is news: a few SKUs out before a weekly delivery
#: are ordinary retail; a third of the range is not
WARNING_SHARE = 1 / 3
#: ... and the share that leaves the store little to sell
CRITICAL_SHARE = 1 / 2


def _stamp(t: datetime) -> str:
    """``stock_movements.ts``'s text form (the importer's: UTC, to the second), so text order is time order."""
    return t.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class EmptyShelves:
    since: datetime  # UTC: when the share at zero reached ``WARNING_SHARE``
    empty: int  # usually-selling SKUs at zero now
    usual: int  # usually-selling SKUs

    @property
    def severity(self) -> str:
        return "critical" if self.empty >= CRITICAL_SHARE * self.usual else "warning"


def on_hand(db: Database, store: str, today: date, tz: str, now: datetime) -> dict[str, tuple[int, datetime | None]]:
    """SKU -> (units on hand at ``now``, the UTC time it last went to zero or below, None if it has
    not since the count) from the last closing count before ``today`` (local) and the movements since;
    empty when the store has no count."""
    counted = db.scalar("SELECT MAX(day) FROM stock_days WHERE store = ? AND day < ?", (store, today.isoformat()))
    if counted is None:
        return {}
    since = clock.day_start_utc(date.fromisoformat(counted) + timedelta(days=1), tz)
    stock: dict[str, tuple[int, datetime | None]] = {
        sku: (int(left), since if left <= 0 else None) for sku, left in db.rows(
            "SELECT sku, opening + received - sold - wasted FROM stock_days WHERE store = ? AND day = ?",
            (store, counted))}
    for sku, kind, qty, ts in db.rows(
            "SELECT sku, kind, qty, ts FROM stock_movements WHERE store = ? AND ts >= ? AND ts <= ? ORDER BY ts, id",
            (store, _stamp(since), _stamp(now))):
        left, zero_at = stock.get(sku, (0, since))
        left += int(qty) if kind in INWARD else -int(qty) if kind in OUTWARD else 0
        stock[sku] = (left, (zero_at or datetime.fromisoformat(ts)) if left <= 0 else None)
    return stock


def usually_selling(db: Database, store: str, today: date) -> set[str]:
    """The SKUs sold on at least half of the store's last ``USUAL_DAYS`` counted days before ``today``."""
    first = (today - timedelta(days=USUAL_DAYS)).isoformat()
    return {sku for sku, selling, counted in db.rows(
        "SELECT sku, SUM(CASE WHEN sold > 0 THEN 1 ELSE 0 END), COUNT(*) FROM stock_days "
        "WHERE store = ? AND day >= ? AND day < ? GROUP BY sku", (store, first, today.isoformat()))
        if 2 * int(selling) >= int(counted)}


def empty_shelves(db: Database, store: str, tz: str, now: datetime) -> EmptyShelves | None:
    """The store's usually-selling SKUs at zero now, when they are ``WARNING_SHARE`` or more of them
    and the store sends movements; else None."""
    if db.scalar("SELECT 1 FROM stock_movements WHERE store = ? AND ts >= ? AND ts <= ? LIMIT 1",
                 (store, _stamp(now - timedelta(days=FEED_DAYS)), _stamp(now))) is None:
        return None
    today = now.astimezone(clock.zone(tz)).date()
    usual = usually_selling(db, store, today)
    stock = on_hand(db, store, today, tz, now)
    zero_times = sorted(z for sku, (_, z) in stock.items() if sku in usual and z is not None)
    needed = math.ceil(WARNING_SHARE * len(usual))
    if not usual or len(zero_times) < needed:
        return None
    return EmptyShelves(zero_times[needed - 1], len(zero_times), len(usual))
