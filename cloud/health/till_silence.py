"""A till gone quiet while the floor sells: sales tapped 成交 on the guide screen and no till ticket after them.

The hourly rule (``cloud.health.shortfall``) tells a till that stopped from chance by the tickets
that did not come, and at a store's volumes (a few tickets an hour) that takes hours of silence.
The guide screen says more: every sale an assistant taps 成交 on is paid at the till within minutes,
so ``MIN_TAPS`` such taps since the store's last till ticket, the latest of them ``GRACE`` old,
mean the till (or its bridge to the cloud) records nothing while the store sells. A working till
never shows this: each tapped sale brings its own ticket, and any ticket resets the count; an
assistant who taps 成交 by mistake is one tap, not three with nothing paid in between.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud import clock
from cloud.db import Database

#: taps with no ticket after them: one is a mistake, two a coincidence with a slow queue
MIN_TAPS = 3
#: how long a tapped sale may take to reach the till and its ticket the cloud
GRACE = timedelta(minutes=10)


def silent_since(db: Database, store: str, opened: datetime, now: datetime) -> tuple[datetime, int] | None:
    """(the store's last till ticket, or its opening, as a UTC time; the 成交 taps after it at least ``GRACE``
    old) when those are ``MIN_TAPS`` or more, else None."""
    last = db.scalar("SELECT MAX(ts) FROM orders WHERE store = ? AND channel = 'pos' AND ts >= ? AND ts < ?",
                     (store, int(opened.timestamp()), int(now.timestamp())))
    since = datetime.fromtimestamp(int(last), UTC) if last is not None else opened.astimezone(UTC)
    taps = int(db.scalar("SELECT COUNT(*) FROM feedback WHERE store = ? AND action = 'sold' AND ts > ? AND ts <= ?",
                         (store, clock.iso_utc(since), clock.iso_utc(now - GRACE))) or 0)
    return (since, taps) if taps >= MIN_TAPS else None
