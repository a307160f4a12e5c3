"""What erasing a person means for the points ledger and coupons (``cloud.cdp.erasure.ERASE_HOOKS``).

The ledger is double-entry: tearing a person's movements out would leave the system accounts'
entries without their other side, so their accounts, movements, lots' notices, redemption codes and
coupons stay (points issued, spent and expired still add up, as erased orders' revenue does) but are
re-keyed to anonymous ids that lead back to no one. What is still outstanding is a bearer token for
the person's benefit and goes with them: an unredeemed points code is deleted, an unused coupon is
void. The tier row is only derived state: deleted.
"""

from __future__ import annotations

from cloud.cdp.erasure import Erasing
from cloud.db import Tx


def forget(tx: Tx, erasing: Erasing) -> dict[str, int]:
    # an account is unique per pool, kind and owner: one stand-in per record, so two records' accounts cannot collide
    stand_ins = erasing.stand_ins(erasing.anonymous)
    records = [(record,) for record in erasing.records]
    # what is still outstanding dies with the person: a code or a coupon is a bearer token for their benefit
    codes = sum(tx.execute("DELETE FROM loyalty_codes WHERE person = ? AND movement_id IS NULL", r) for r in records)
    coupons = sum(tx.execute("UPDATE coupons SET status = 'void' WHERE person = ? AND status = 'issued'", r)
                  for r in records)
    accounts = sum(tx.execute("UPDATE loyalty_accounts SET owner = ? WHERE kind = 'member' AND owner = ?", pair)
                   for pair in stand_ins)
    for table in ("loyalty_movements", "loyalty_notices", "loyalty_codes", "coupons"):
        tx.executemany(f"UPDATE {table} SET person = ? WHERE person = ?", stand_ins)
    # a campaign's coupon is issued by "campaign:<send key>", and the key names the person: it takes
    # the stand-in the send's key takes (cloud.activation.erasure), so the two still match
    # (any of the person's records may be in a key, whichever record the coupon went to)
    anonymous = [a for a, _ in stand_ins]
    for stand_in, record in erasing.stand_ins(erasing.pseudonym):
        tx.execute(f"UPDATE coupons SET issued_by = REPLACE(issued_by, ?, ?) WHERE person IN "
                   f"({', '.join('?' for _ in anonymous)})", (record, stand_in, *anonymous))
    tx.executemany("DELETE FROM loyalty_member_tiers WHERE person = ?", records)
    return {"loyalty_accounts_anonymised": accounts, "redemption_codes_cancelled": codes, "coupons_voided": coupons}
