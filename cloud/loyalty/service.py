"""The loyalty jobs on the cloud's one scheduler: catch up on orders and refunds not posted yet, expire
lots, record notices, recompute tiers.

Streamed and till orders post the moment they land (``ledger.post_landed`` on
``cloud.arrivals.till.ORDER_HOOKS``, registered by the runtime); the catch-up pass is for file
imports (a day's export, hours old anyway) and for whatever a hook missed (a crash mid-batch), so it
runs every ``orders_every_s`` (10 minutes), not every minute over a year of orders."""

from __future__ import annotations

import logging
import time

from cloud.db import Database
from cloud.loyalty import ledger, tiers
from cloud.scheduler import Scheduler

log = logging.getLogger(__name__)


class LoyaltyService:
    def __init__(self, db: Database, *, orders_every_s: float = 600.0, expiry_every_s: float = 3600.0,
                 tiers_every_s: float = 86400.0) -> None:
        self._db = db
        self._tiers_every_s = tiers_every_s
        self._tiers_at = -float("inf")
        self._orders_every_s = orders_every_s
        self._expiry_every_s = expiry_every_s

    def schedule(self, scheduler: Scheduler) -> None:
        scheduler.every("loyalty-orders", self._orders_every_s, self.post_orders)
        scheduler.every("loyalty-expiry", self._expiry_every_s, self.expire_and_notify)

    def recompute_tiers(self) -> dict[str, int]:
        """Tiers over the rolling 12 months: upgrades come with orders, downgrades when spend leaves the window."""
        return tiers.recompute_all(self._db)

    def post_orders(self) -> int:
        posted = total = ledger.post_new_orders(self._db)
        for _ in range(100):  # a big import: drained in batches, one order per transaction
            if posted < 1000:
                break
            posted = ledger.post_new_orders(self._db)
            total += posted
        return total

    def expire_and_notify(self) -> tuple[int, int]:
        """Hourly: expiry and notices; and once every ``tiers_every_s`` (a day) the tiers' recomputation."""
        if time.monotonic() - self._tiers_at >= self._tiers_every_s:
            self.recompute_tiers()
            self._tiers_at = time.monotonic()
        expired = ledger.expire(self._db)
        notices = ledger.notify_expiring(self._db)
        if expired or notices:
            log.info("loyalty: %d lots expired, %d expiry notices recorded", expired, len(notices))
        return expired, len(notices)
