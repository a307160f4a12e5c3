"""The rollup: raw rows -> ``store_metrics`` per store-hour and store-day, then the day scores.

Idempotent: a store-day is always recomputed whole (its hours and its day) and replaces what was
there, so running it twice, or over a day that got late data, leaves the same rows. Incremental:
``rollup_changed`` recomputes only the store-days touched by rows received since its last run
(arrivals, feedback, footfall by their ``received`` time, orders by import), plus today's closed
hours; ``rollup_days`` backfills a range. Only closed hours are rolled up (``until``), so an hour
is never published half-counted.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from cloud import clock
from cloud.db import Database
from cloud.db.database import Tx
from cloud.health import scoring
from cloud.health.formulas import Counts, daily_values, hourly_values
from cloud.health.sources import StoreRange, day_extras, hourly_counts, new_members_by_store_day

MARK_KEY = "health.rollup.mark"
#: a backfill reads this many days of one store at a time: bounded memory, few round trips
CHUNK_DAYS = 31


@dataclass
class RollupResult:
    store_days: int = 0
    rows: int = 0
    scored_days: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"store_days": self.store_days, "rows": self.rows, "scored_days": self.scored_days,
                "seconds": round(self.seconds, 3)}


def store_zones(db: Database, stores: list[str] | None = None) -> dict[str, str | None]:
    rows = db.rows("SELECT id, timezone FROM stores ORDER BY id")
    return {s: tz for s, tz in rows if stores is None or s in stores}


def rollup_days(db: Database, first: date, last: date, *, stores: list[str] | None = None,
                until: datetime | None = None, score: bool = True) -> RollupResult:
    """Recompute every store-day in [first, last] (local days), then score those days."""
    started = time.perf_counter()
    until = until or closed_hour()
    zones = store_zones(db, stores)
    result = RollupResult()
    chunk_first = first
    while chunk_first <= last:
        chunk_last = min(last, chunk_first + timedelta(days=CHUNK_DAYS - 1))
        with db.transaction() as tx:
            joined = new_members_by_store_day(tx, zones, chunk_first, chunk_last)
        for store, tz in zones.items():
            with db.transaction() as tx:  # one store at a time: ingest never waits long for the lock
                rows = _store_rows(tx, StoreRange(store, tz, chunk_first, chunk_last, until), joined.get(store, {}))
                _replace(tx, store, chunk_first, chunk_last, rows)
            result.rows += len(rows)
            result.store_days += (chunk_last - chunk_first).days + 1
        chunk_first = chunk_last + timedelta(days=1)
    if score:
        result.scored_days = scoring.score_days(db, first, last, now=until)
    result.seconds = time.perf_counter() - started
    return result


def _store_rows(tx: Tx, r: StoreRange, joined: dict[str, int]) -> list[tuple]:
    hours = hourly_counts(tx, r)
    extras = day_extras(tx, r, joined)
    days: dict[str, Counts] = defaultdict(Counts)
    rows: list[tuple] = []
    for hour, counts in hours.items():
        days[hour[:10]].add(counts)
        rows.extend((r.store, "hour", hour, m, v) for m, v in hourly_values(counts).items())
    first, last = r.first.isoformat(), r.last.isoformat()
    for day in sorted(set(days) | set(extras)):
        if first <= day <= last:
            values = daily_values(days[day], extras[day]) if day in days else daily_values(Counts(), extras[day])
            if day not in days:  # no floor or till activity: only the day-level facts are real
                values = {k: v for k, v in values.items() if k in _DAY_ONLY}
            rows.extend((r.store, "day", day, m, v) for m, v in values.items())
    return rows


_DAY_ONLY = frozenset({"new_members", "dormant_reactivated", "repurchase_rate", "churn_rate", "stock_outs",
                       "stock_out_rate", "sell_through", "markdown_waste"})


def _replace(tx: Tx, store: str, first: date, last: date, rows: list[tuple]) -> None:
    tx.execute("DELETE FROM store_metrics WHERE store = ? AND grain = 'hour' AND ts >= ? AND ts < ?",
               (store, first.isoformat(), (last + timedelta(days=1)).isoformat()))
    tx.execute("DELETE FROM store_metrics WHERE store = ? AND grain = 'day' AND ts >= ? AND ts <= ?",
               (store, first.isoformat(), last.isoformat()))
    tx.copy("store_metrics", ("store", "grain", "ts", "metric", "value"), rows)


def closed_hour(now: datetime | None = None) -> datetime:
    """The start of the current UTC hour: everything before it is closed."""
    return (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)


def rollup_changed(db: Database, *, now: datetime | None = None) -> RollupResult:
    """The periodic job's unit of work: the store-days changed since the last run, and today."""
    started = time.perf_counter()
    until = closed_hour(now)
    mark = _load_mark(db)
    new_mark = _mark_now(db, now)
    zones = store_zones(db)
    dirty = _changed_store_days(db, mark, zones) if mark else {}
    for store, tz in zones.items():
        # today and yesterday: the hours closed since the last run may straddle local midnight
        today = until.astimezone(clock.zone(tz)).date()
        dirty.setdefault(store, set()).update((today, today - timedelta(days=1)))
    # stores sharing a run of days (today, for most) are rolled up together: one members scan per run
    by_run: dict[tuple[date, date], list[str]] = defaultdict(list)
    for store, store_days in dirty.items():
        for run in _runs(sorted(store_days)):
            by_run[run].append(store)
    result = RollupResult()
    days: set[date] = set()
    for (first, last), stores in by_run.items():
        part = rollup_days(db, first, last, stores=stores, until=until, score=False)
        result.store_days += part.store_days
        result.rows += part.rows
        days.update(first + timedelta(days=k) for k in range((last - first).days + 1))
    for first, last in _runs(sorted(days)):
        result.scored_days += scoring.score_days(db, first, last, now=until)
    _save_mark(db, new_mark)
    result.seconds = time.perf_counter() - started
    return result


def set_mark(db: Database, now: datetime | None = None) -> None:
    """After a backfill: everything received until now is rolled up."""
    _save_mark(db, _mark_now(db, now))


def _mark_now(db: Database, now: datetime | None) -> dict:
    """Taken before reading, so rows arriving during a run are read again next time (idempotent)."""
    return {"received": clock.iso_utc(now or datetime.now(UTC)),
            "import_id": int(db.scalar("SELECT COALESCE(MAX(id), 0) FROM imports"))}


def _save_mark(db: Database, mark: dict) -> None:
    db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               (MARK_KEY, json.dumps(mark)))


def _load_mark(db: Database) -> dict | None:
    raw = db.scalar("SELECT value FROM settings WHERE key = ?", (MARK_KEY,))
    return json.loads(raw) if raw else None


def _changed_store_days(db: Database, mark: dict, zones: dict[str, str | None]) -> dict[str, set[date]]:
    """store -> local days with rows received (or imported) since the mark."""
    dirty: dict[str, set[date]] = defaultdict(set)
    since = mark["received"]
    with db.transaction() as tx:
        # rows since the last run are few: no DISTINCT, which would lead SQLite to scan by store
        for sql in ("SELECT store, ts FROM arrivals WHERE received > ?",
                    # feedback counts in its arrival's hour, which may be the day before the action's
                    "SELECT f.store, v.ts FROM feedback f JOIN visits v ON v.id = f.visit_id WHERE f.received > ?",
                    "SELECT store, minute FROM footfall WHERE received > ?"):
            for store, ts in tx.rows(sql, (since,)):
                if store in zones:
                    dirty[store].add(date.fromisoformat(clock.local_hour_of_iso(ts, zones[store])[:10]))
        for store, ts in tx.rows("SELECT store, ts FROM orders WHERE import_id > ?", (mark["import_id"],)):
            if store in zones:
                dirty[store].add(date.fromisoformat(clock.local_day_of_epoch(int(ts), zones[store])))
    return dirty


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs: one read per run instead of one per day."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
