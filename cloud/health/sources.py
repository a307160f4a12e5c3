"""Reading one store's raw rows for a range of local days into per-hour ``Counts`` and ``DayExtras``.

Each reader is one indexed query over one store and a UTC range (visits and feedback by
(store, ts), footfall by (store, minute), orders and order lines by (store, ts), previous and next
orders of a buyer by (member_id, ts)), so the cost grows with the store's own rows, not the brand's.
Counts that SQL can sum are summed there; per-visit rows come back only where a median or a
per-visit union of actions needs them.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import date, datetime, timedelta

from cloud import clock
from cloud.db.database import Tx
from cloud.health.formulas import Counts, DayExtras
from cloud.health.incident_hours import incidents_by_day
from cloud.health.opening_hours import OpeningHours

GREETING = ("greeted", "served", "sold")
DORMANT_DAYS = 180
REPURCHASE_DAYS = 365
CHURN_DAYS = 180


class StoreRange:
    """One store, one range of local days, and the UTC bounds that cover them."""

    def __init__(self, store: str, tz: str | None, first: date, last: date, until: datetime | None = None) -> None:
        self.store, self.tz, self.first, self.last = store, tz, first, last
        start, end = clock.utc_range(first, last, tz)
        if until is not None:
            end = min(end, until)
        self.start, self.end = start, end
        self.start_iso, self.end_iso = clock.iso_utc(start), clock.iso_utc(end)
        self.start_s, self.end_s = int(start.timestamp()), int(end.timestamp())


def hourly_counts(tx: Tx, r: StoreRange) -> dict[str, Counts]:
    """Local hour key -> the raw counts of that store-hour."""
    hours: dict[str, Counts] = defaultdict(Counts)
    _visits(tx, r, hours)
    _feedback(tx, r, hours)
    _footfall(tx, r, hours)
    _orders(tx, r, hours)
    return hours


def _visits(tx: Tx, r: StoreRange, hours: dict[str, Counts]) -> None:
    for hour, n, members in tx.rows(
        "SELECT substr(ts, 1, 13), COUNT(*), COUNT(member_id) FROM visits WHERE store = ? AND ts >= ? AND ts < ? "
        "GROUP BY substr(ts, 1, 13)", (r.store, r.start_iso, r.end_iso)):
        c = hours[clock.local_hour_of_iso(hour, r.tz)]
        c.arrivals += n
        c.members_recognised += members


def _feedback(tx: Tx, r: StoreRange, hours: dict[str, Counts]) -> None:
    """Actions per arrival, attributed to the arrival's hour: "was this arrival greeted, and how fast"."""
    per_visit: dict[str, tuple[str, set[str], list[str]]] = {}
    for visit, visit_ts, action, ts in tx.rows(
        "SELECT v.id, v.ts, f.action, f.ts FROM visits v JOIN feedback f ON f.visit_id = v.id "
        "WHERE v.store = ? AND v.ts >= ? AND v.ts < ?", (r.store, r.start_iso, r.end_iso)):
        _, actions, greets = per_visit.setdefault(visit, (visit_ts, set(), []))
        actions.add(action)
        if action in GREETING:
            greets.append(ts)
    for visit_ts, actions, greets in per_visit.values():
        c = hours[clock.local_hour_of_iso(visit_ts, r.tz)]
        c.claimed += "claimed" in actions
        c.served += bool(actions & {"served", "sold"})
        c.sold += "sold" in actions
        if greets:
            c.greeted += 1
            delay = (datetime.fromisoformat(min(greets)) - datetime.fromisoformat(visit_ts)).total_seconds()
            c.greet_delays_s.append(max(0.0, delay))


def _footfall(tx: Tx, r: StoreRange, hours: dict[str, Counts]) -> None:
    for hour, started in tx.rows(
        "SELECT substr(minute, 1, 13), SUM(visits_started) FROM footfall WHERE store = ? AND minute >= ? "
        "AND minute < ? GROUP BY substr(minute, 1, 13)", (r.store, r.start_iso, r.end_iso)):
        c = hours[clock.local_hour_of_iso(hour, r.tz)]
        c.wifi_footfall = (c.wifi_footfall or 0) + int(started)


def _orders(tx: Tx, r: StoreRange, hours: dict[str, Counts]) -> None:
    for hour, n, paid, member_paid in tx.rows(
        "SELECT ts / 3600, COUNT(*), SUM(paid), SUM(CASE WHEN member_id IS NULL THEN 0 ELSE paid END) "
        "FROM orders WHERE store = ? AND ts >= ? AND ts < ? GROUP BY ts / 3600",
        (r.store, r.start_s, r.end_s)):
        c = hours[clock.local_hour_of_epoch_hour(int(hour), r.tz)]
        c.orders += n
        c.sales += float(paid or 0)
        c.member_sales += float(member_paid or 0)
    for hour, units in tx.rows(
        "SELECT ts / 3600, SUM(qty) FROM order_lines WHERE store = ? AND ts >= ? AND ts < ? GROUP BY ts / 3600",
        (r.store, r.start_s, r.end_s)):
        hours[clock.local_hour_of_epoch_hour(int(hour), r.tz)].units += int(units or 0)


def day_extras(tx: Tx, r: StoreRange, new_members: dict[str, int]) -> dict[str, DayExtras]:
    """Local day key -> what only a whole day defines. ``new_members``: day -> cards created (read
    once for every store by ``new_members_by_store_day``: members has no index on home store)."""
    days: dict[str, DayExtras] = defaultdict(DayExtras)
    for day, n in new_members.items():
        days[day].new_members = n
    _buyers(tx, r, days)
    _churn(tx, r, days)
    _stock(tx, r, days)
    _staff_and_targets(tx, r, days)
    _incidents(tx, r, days)
    return days


def _incidents(tx: Tx, r: StoreRange, days: dict[str, DayExtras]) -> None:
    """Each day's share of opening hours under the store's incident alerts (``cloud.health.incident_hours``)."""
    hours = OpeningHours.parse(tx.scalar("SELECT opening_hours FROM stores WHERE id = ?", (r.store,)))
    for day, (_, share) in incidents_by_day(tx, r.store, r.tz, hours, r.first, r.last, r.end).items():
        days[day].incident_share = share


def _buyers(tx: Tx, r: StoreRange, days: dict[str, DayExtras]) -> None:
    """Per day, each member buyer once, judged by their order before the day's first one."""
    seen: dict[tuple[str, str], int | None] = {}
    for member, ts, prev in tx.rows(
        "SELECT o.member_id, o.ts, (SELECT MAX(p.ts) FROM orders p WHERE p.member_id = o.member_id AND p.ts < o.ts) "
        "FROM orders o WHERE o.store = ? AND o.ts >= ? AND o.ts < ? AND o.member_id IS NOT NULL ORDER BY o.ts",
        (r.store, r.start_s, r.end_s)):
        key = (clock.local_day_of_epoch(int(ts), r.tz), member)
        if key in seen:
            continue
        seen[key] = prev
        d = days[key[0]]
        d.member_buyers += 1
        if prev is not None and ts - prev <= REPURCHASE_DAYS * 86400:
            d.repeat_buyers += 1
        if prev is not None and ts - prev > DORMANT_DAYS * 86400:
            d.dormant_reactivated += 1


def _churn(tx: Tx, r: StoreRange, days: dict[str, DayExtras]) -> None:
    """A buyer of day D-180 at this store churns on day D when they have bought nothing since."""
    lag = CHURN_DAYS * 86400
    seen: set[tuple[str, str]] = set()
    for member, ts, nxt in tx.rows(
        "SELECT o.member_id, o.ts, (SELECT MIN(p.ts) FROM orders p WHERE p.member_id = o.member_id AND p.ts > o.ts) "
        "FROM orders o WHERE o.store = ? AND o.ts >= ? AND o.ts < ? AND o.member_id IS NOT NULL ORDER BY o.ts DESC",
        (r.store, r.start_s - lag, r.end_s - lag)):
        day_then = clock.local_day_of_epoch(int(ts), r.tz)
        if (day_then, member) in seen:  # the buyer's last order of that day decides
            continue
        seen.add((day_then, member))
        day = (date.fromisoformat(day_then) + timedelta(days=CHURN_DAYS)).isoformat()
        day_end = clock.day_start_utc(date.fromisoformat(day) + timedelta(days=1), r.tz).timestamp()
        d = days[day]
        d.churn_base += 1
        d.churned += nxt is None or nxt >= day_end


def _stock(tx: Tx, r: StoreRange, days: dict[str, DayExtras]) -> None:
    for day, skus, outs, available, sold, loss in tx.rows(
        "SELECT day, COUNT(*), SUM(CASE WHEN opening + received - sold - wasted <= 0 THEN 1 ELSE 0 END), "
        "SUM(opening + received), SUM(sold), SUM(markdown_loss) FROM stock_days WHERE store = ? AND day >= ? "
        "AND day <= ? GROUP BY day", (r.store, r.first.isoformat(), r.last.isoformat())):
        d = days[day]
        d.skus_stocked, d.stock_outs = int(skus), int(outs)
        d.units_available, d.units_sold_stock, d.markdown_loss = int(available), int(sold), float(loss)


def _staff_and_targets(tx: Tx, r: StoreRange, days: dict[str, DayExtras]) -> None:
    staff: dict[str, set[str]] = defaultdict(set)
    for ts, assistant in tx.rows(
        "SELECT ts, assistant FROM feedback WHERE store = ? AND ts >= ? AND ts < ? AND assistant IS NOT NULL",
        (r.store, r.start_iso, r.end_iso)):
        staff[clock.local_hour_of_iso(ts, r.tz)[:10]].add(assistant)
    for local_day, names in staff.items():
        days[local_day].assistants_active = len(names)
    for day, rostered in tx.rows("SELECT day, COUNT(DISTINCT assistant) FROM shifts WHERE store = ? AND day >= ? "
                                 "AND day <= ? GROUP BY day", (r.store, r.first.isoformat(), r.last.isoformat())):
        days[day].assistants_rostered = int(rostered)
    targets = dict(tx.rows("SELECT month, sales_target FROM store_targets WHERE store = ? AND month >= ? AND month <= ?",
                           (r.store, r.first.isoformat()[:7], r.last.isoformat()[:7])))
    day = r.first
    while day <= r.last:
        month = day.isoformat()[:7]
        if month in targets:
            days[day.isoformat()].daily_target = float(targets[month]) / calendar.monthrange(day.year, day.month)[1]
        day += timedelta(days=1)


def new_members_by_store_day(tx: Tx, tz_of: dict[str, str | None], first: date, last: date) -> dict[str, dict[str, int]]:
    """store -> local day -> member cards created there (one scan for all stores)."""
    start = clock.iso_utc(clock.day_start_utc(first, clock.DEFAULT_TZ) - timedelta(days=1))
    end = clock.iso_utc(clock.day_start_utc(last + timedelta(days=2), clock.DEFAULT_TZ))
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for store, hour, n in tx.rows(
        "SELECT home_store, substr(created, 1, 13), COUNT(*) FROM members WHERE source = 'members' "
        "AND home_store IS NOT NULL AND created >= ? AND created < ? GROUP BY home_store, substr(created, 1, 13)",
        (start, end)):
        if store not in tz_of:
            continue
        day = clock.local_hour_of_iso(hour, tz_of[store])[:10]
        if first.isoformat() <= day <= last.isoformat():
            out[store][day] += n
    return out
