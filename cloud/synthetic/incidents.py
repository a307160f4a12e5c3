"""Incidents planted in the synthetic brand's raw shop-floor rows, so HQ has anomalies to see.

``cloud.synthetic.planted`` plants anomalies in the hourly metrics themselves, to measure the scan;
these happen one step earlier, in the rows the rollup reads, as the real thing would: a device
stops and its rows go missing from a local hour to the end of the day, or the shelves run empty.
The rollup and the scan then find them like any other day's numbers. Three kinds, each a failure
a store really has:

- ``screen_idle``: the guide screen froze; no card was claimed, greeted, served or sold
  (``feedback`` rows gone): the greeted, claimed and served shares collapse;
- ``camera_down``: the door camera stopped; no arrivals (``arrivals``, ``visits``) while the
  Wi-Fi box still counts footfall: arrivals and recognised members fall;
- ``shelves_empty``: the delivery never came and the day's stock count found every SKU at zero
  (``stock_days``: all of it sold or written off): stock-outs and sell-through jump.

With the demo brand's volumes (about 60 arrivals and a dozen orders a store-day) an hour is too
small to judge, so an incident lasts the whole day and is caught on the day grain. A till outage is
not among them: a dozen log-normal tickets a day vary so much that a day without floor sales is
only about four MADs down, too close to the alert threshold to be flagged every time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta

from cloud import clock
from cloud.db import Database

KINDS = ("screen_idle", "camera_down", "shelves_empty")
FROM_HOUR = 0  # local: the device was down the whole day


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
    store), from ``from_hour`` (local) to the day's end; ``shelves_empty`` is the day's closing
    count, whatever the hour."""
    planted = []
    with db.transaction() as tx:
        zones = dict(tx.rows("SELECT id, timezone FROM stores"))
        for n, store in enumerate(stores):
            if store not in zones:
                raise ValueError(f"no store {store!r} to plant an incident in")
            start = clock.day_start_utc(day, zones[store]) + timedelta(hours=from_hour)
            end = clock.day_start_utc(day + timedelta(days=1), zones[store])
            kind = kinds[n] if kinds else KINDS[n % len(KINDS)]
            if kind == "shelves_empty":
                changed = tx.execute("UPDATE stock_days SET sold = opening + received - wasted "
                                     "WHERE store = ? AND day = ?", (store, day.isoformat()))
            else:
                tables = ("feedback",) if kind == "screen_idle" else ("visits", "arrivals")
                window = (store, clock.iso_utc(start), clock.iso_utc(end))
                changed = sum(tx.execute(f"DELETE FROM {table} WHERE store = ? AND ts >= ? AND ts < ?", window)
                              for table in tables)
            planted.append(Incident(store, kind, day.isoformat(), from_hour, changed))
    return planted


def as_json(incidents: list[Incident]) -> list[dict]:
    return [asdict(i) for i in incidents]
