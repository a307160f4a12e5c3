"""Time in the cloud: UTC text that sorts as time, and a store's local hours and days.

Raw rows carry UTC (ISO text or, for orders, Unix seconds). ``iso`` writes UTC with fixed
microseconds so that text order is time order in SQL; the store-local helpers turn a store's local
day into the UTC range to read and a UTC hour into the store's local hour key. Keys are text:
``YYYY-MM-DDTHH:00`` for hours and ``YYYY-MM-DD`` for days, the ``store_metrics.ts`` format.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TZ = "Asia/Shanghai"


@lru_cache(maxsize=64)
def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TZ)


def day_start_utc(day: date, tz: str | None) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone(tz)).astimezone(UTC)


def utc_range(first: date, last: date, tz: str | None) -> tuple[datetime, datetime]:
    """[start of ``first``, start of the day after ``last``) in UTC."""
    return day_start_utc(first, tz), day_start_utc(last + timedelta(days=1), tz)


def iso_utc(ts: datetime) -> str:
    """The text form the raw tables store (cloud.store.iso), so text comparison is time order."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


@lru_cache(maxsize=200_000)
def local_hour_of_epoch_hour(epoch_hour: int, tz: str | None) -> str:
    """The local hour key of the UTC hour starting at ``epoch_hour * 3600``."""
    return datetime.fromtimestamp(epoch_hour * 3600, zone(tz)).strftime("%Y-%m-%dT%H:00")


def local_hour_of_iso(ts: str, tz: str | None) -> str:
    """Local hour key of an ISO UTC timestamp (only its hour is read, via a cached conversion)."""
    hour = datetime.fromisoformat(ts[:13] + ":00:00+00:00")
    return local_hour_of_epoch_hour(int(hour.timestamp()) // 3600, tz)


def local_day_of_epoch(seconds: int, tz: str | None) -> str:
    return local_hour_of_epoch_hour(seconds // 3600, tz)[:10]


def now_local(tz: str | None) -> datetime:
    return datetime.now(zone(tz))


def iso(ts: datetime) -> str:
    """UTC with fixed microseconds, so that text order is time order in SQL."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def utcnow() -> datetime:
    return datetime.now(UTC)
