"""The e-coupon channel: a campaign or journey send that issues one of loyalty's coupons into the
member's wallet (``cloud.loyalty.coupons.issue``), behind the same ``Channel`` interface as SMS.

The marketing template's ``code`` names the coupon template. The coupon is issued by
``campaign:<send key>`` (a journey step's campaign id starts with the journey's id), so every
redemption is attributed to the campaign or journey, and the send key makes it idempotent: a send
retried, or asked about after a crash (``sent_with``), finds the coupon already issued instead of
issuing a second.
"""

from __future__ import annotations

from cloud.channels.notice import Notice
from cloud.db import Database
from cloud.loyalty import coupons


def issuer(key: str) -> str:
    return f"campaign:{key}"


class CouponChannel:
    name = "coupon"

    def __init__(self, db: Database) -> None:
        self.db = db

    def send(self, address: str, notice: Notice) -> str:
        """``address`` is the person; the receipt is the coupon's code."""
        found = coupons.issued_by(self.db, issuer(notice.key))
        if found is not None:
            return str(found["code"])
        return str(coupons.issue(self.db, notice.payload["coupon_template"], address,
                                 issued_by=issuer(notice.key))["code"])

    def sent_with(self, address: str, key: str, day: str) -> str | None:
        found = coupons.issued_by(self.db, issuer(key))
        return None if found is None else str(found["code"])
