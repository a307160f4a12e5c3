"""The loyalty jobs on the cloud's one scheduler: post new orders and refunds, expire lots, record notices."""

from __future__ import annotations

import logging

from cloud.db import Database
from cloud.loyalty import ledger
from cloud.scheduler import Scheduler

log = logging.getLogger(__name__)


class LoyaltyService:
    def __init__(self, db: Database, *, orders_every_s: float = 60.0, expiry_every_s: float = 3600.0) -> None:
        self._db = db
        self._orders_every_s = orders_every_s
        self._expiry_every_s = expiry_every_s

    def schedule(self, scheduler: Scheduler) -> None:
        scheduler.every("loyalty-orders", self._orders_every_s, self.post_orders)
        scheduler.every("loyalty-expiry", self._expiry_every_s, self.expire_and_notify)

    def post_orders(self) -> int:
        posted = total = ledger.post_new_orders(self._db)
        for _ in range(100):  # a big import: drained in batches, one order per transaction
            if posted < 1000:
                break
            posted = ledger.post_new_orders(self._db)
            total += posted
        return total

    def expire_and_notify(self) -> tuple[int, int]:
        expired = ledger.expire(self._db)
        notices = ledger.notify_expiring(self._db)
        if expired or notices:
            log.info("loyalty: %d lots expired, %d expiry notices recorded", expired, len(notices))
        return expired, len(notices)
