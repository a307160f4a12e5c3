"""A store's opening hours, read once from ``stores.opening_hours`` for every check that asks whether
the store is open or since when (device health, the shortfall scan, the incident share of the score).

The master data import stores the hours as ``HH:MM-HH:MM`` local (``cloud.masterdata.importer``
accepts the spreadsheets' looser spellings and writes this one); a store without them keeps
``DEFAULT_HOURS``. A span whose end is not after its start runs past midnight (``20:00-02:00``:
open until 02:00 the next day; equal ends: round the clock). One parser, so the minutes of an
opening time count everywhere (device health once took 09:30 for 09:00).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cloud import clock

DEFAULT_HOURS = "10:00-22:00"
DAY_MIN = 24 * 60


@dataclass(frozen=True)
class OpeningHours:
    """Minutes after the local midnight of the day the store opens: ``closes`` is past ``DAY_MIN``
    for a span past midnight, and always after ``opens``."""

    opens: int
    closes: int

    @classmethod
    def parse(cls, text: str | None) -> OpeningHours:
        """The hours a store row keeps (``None``: ``DEFAULT_HOURS``; no end: open until midnight)."""
        start, _, end = (text or DEFAULT_HOURS).partition("-")
        opens = _minutes(start)
        closes = _minutes(end) if end else DAY_MIN
        return cls(opens, closes if closes > opens else closes + DAY_MIN)

    def is_open(self, local: datetime) -> bool:
        """Whether the local wall-clock minute of ``local`` falls in today's span or in yesterday's
        span past midnight."""
        minute = local.hour * 60 + local.minute
        return self.opens <= minute < self.closes or minute + DAY_MIN < self.closes

    def opened(self, local: datetime) -> datetime:
        """The local moment the span ``local`` is in opened (yesterday's opening in the small hours of a
        span past midnight), in ``local``'s time zone."""
        start = local.replace(hour=self.opens // 60, minute=self.opens % 60, second=0, microsecond=0)
        return start if start <= local else start - timedelta(days=1)

    def span_on(self, day: date, tz: str | None) -> tuple[datetime, datetime]:
        """The UTC start and end of the opening hours of a local day (a span past midnight ends the next day)."""
        midnight = clock.day_start_utc(day, tz)
        return midnight + timedelta(minutes=self.opens), midnight + timedelta(minutes=self.closes)


def _minutes(text: str) -> int:
    return int(text[:2]) * 60 + int(text[3:5])
