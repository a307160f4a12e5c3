"""Coupons (issue 21, item 3): templates, issue, single-use redemption with scope and fraud checks.

A template says what a coupon gives (``amount_off`` yuan, ``percent_off``, or a ``gift`` SKU), the
least spend, how many days an issued coupon is valid and the stores and channels it may be used in
(empty: all). Issuing makes an unguessable 16-character code (80 random bits) for one person and
records what issued it (``campaign:<id>``, ``journey:<id>``, ``screen:<store>``, ``api:<who>``), so
every redemption is attributed to its issuer. Redemption is one conditional update
(``status = 'issued'`` -> ``'redeemed'``): two tills taking the same code at once get one success.
Refusals are recorded in ``coupon_attempts`` with their reason (reuse, wrong store or channel,
expired, below the least spend, someone else's coupon, issued for an order since refunded).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta

from cloud.clock import iso, utcnow
from cloud.db import Database
from cloud.errors import Conflict, Invalid, NotFound
from cloud.loyalty.balances import POOL

KINDS = ("amount_off", "percent_off", "gift")
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 letters and digits, none read as another


class UnknownTemplate(NotFound):
    code = "unknown_template"


class UnknownCoupon(NotFound):
    code = "unknown_coupon"


class CouponRefused(Conflict):
    """``code`` says why: coupon_used, coupon_expired, coupon_wrong_store, coupon_wrong_channel,
    coupon_min_spend, coupon_not_yours, coupon_void_after_refund."""


def add_template(db: Database, *, name: str, kind: str, value: float, valid_days: int, actor: str,
                 min_spend: float = 0.0, gift_sku: str | None = None, stores: list[str] | None = None,
                 channels: list[str] | None = None, pool: str = POOL) -> dict:
    if kind not in KINDS:
        raise Invalid(f"a coupon is one of {', '.join(KINDS)}", code="invalid_coupon_kind")
    if kind == "percent_off" and not 0 < value < 100 or kind == "amount_off" and value <= 0:
        raise Invalid("the coupon's value is out of range", code="invalid_coupon_value")
    if kind == "gift" and not gift_sku:
        raise Invalid("a gift coupon names the gift's SKU", code="invalid_coupon_value")
    template_id = "ct_" + secrets.token_hex(6)
    db.execute("INSERT INTO coupon_templates (id, pool, name, kind, value, gift_sku, min_spend, valid_days, stores, "
               "channels, created, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (template_id, pool, name, kind, value, gift_sku, min_spend, valid_days, json.dumps(stores or []),
                json.dumps(channels or []), iso(utcnow()), actor))
    return template(db, template_id)


def template(db: Database, template_id: str) -> dict:
    found = db.one("SELECT * FROM coupon_templates WHERE id = ?", (template_id,))
    if found is None:
        raise UnknownTemplate(f"no coupon template {template_id}")
    found["stores"], found["channels"] = json.loads(found["stores"]), json.loads(found["channels"])
    return found


def issue(db: Database, template_id: str, person: str, *, issued_by: str, for_order: str | None = None,
          now: datetime | None = None) -> dict:
    tpl = template(db, template_id)
    now = now or utcnow()
    code = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    expires = now + timedelta(days=int(tpl["valid_days"]))
    db.execute("INSERT INTO coupons (code, template_id, person, issued_by, issued_for_order, issued, expires, status) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, 'issued')",
               (code, template_id, person, issued_by, for_order, iso(now), iso(expires)))
    return coupon(db, code)


def coupon(db: Database, code: str) -> dict:
    found = db.one("SELECT c.*, t.name, t.kind, t.value, t.gift_sku FROM coupons c "
                   "JOIN coupon_templates t ON t.id = c.template_id WHERE c.code = ?", (code,))
    if found is None:
        raise UnknownCoupon("no such coupon")
    return found


def issued_by(db: Database, issuer: str) -> dict | None:
    """The coupon this issuer gave (an issuer that gives one coupon, such as one campaign send), if any."""
    return db.one("SELECT code, person, status, issued FROM coupons WHERE issued_by = ? ORDER BY issued LIMIT 1",
                  (issuer,))


def totals(db: Database, issued_by_prefix: str) -> dict:
    """Coupons issued under an issuer prefix (``campaign:<id>:``), redeemed, and the discount given."""
    row = db.one("SELECT COUNT(*) AS issued, COALESCE(SUM(CASE WHEN status = 'redeemed' THEN 1 ELSE 0 END), 0) AS "
                 "redeemed, COALESCE(SUM(discount), 0) AS discount FROM coupons WHERE issued_by LIKE ?",
                 (issued_by_prefix + "%",))
    return {"issued": int(row["issued"]), "redeemed": int(row["redeemed"]), "discount": float(row["discount"])} \
        if row else {"issued": 0, "redeemed": 0, "discount": 0.0}


def of_person(db: Database, person: str) -> list[dict]:
    return db.query("SELECT c.code, c.template_id, t.name, t.kind, c.status, c.issued_by, c.issued, c.expires, "
                    "c.redeemed_at, c.redeemed_store, c.discount FROM coupons c "
                    "JOIN coupon_templates t ON t.id = c.template_id WHERE c.person = ? ORDER BY c.issued DESC",
                    (person,))


def redeem(db: Database, code: str, *, store: str | None, channel: str, amount: float, person: str | None = None,
           order_id: str | None = None, now: datetime | None = None) -> dict:
    """Use the coupon once on a purchase of ``amount``; the discount (or gift) and its issuer."""
    now = now or utcnow()
    refusal: tuple[str, str] | None = None
    with db.transaction() as tx:
        found = tx.one("SELECT c.*, t.kind, t.value, t.gift_sku, t.min_spend, t.stores, t.channels FROM coupons c "
                       "JOIN coupon_templates t ON t.id = c.template_id WHERE c.code = ?", (code,))
        if found is None:
            refusal = ("unknown", "no such coupon")
        elif found["status"] == "redeemed":
            refusal = ("coupon_used", "this coupon was already used")
        elif found["status"] == "void":
            refusal = ("coupon_void_after_refund", "this coupon was voided")
        elif found["expires"] <= iso(now):
            refusal = ("coupon_expired", "this coupon has expired")
        elif person is not None and person != found["person"]:
            refusal = ("coupon_not_yours", "this coupon belongs to another member")
        elif json.loads(found["stores"]) and store not in json.loads(found["stores"]):
            refusal = ("coupon_wrong_store", "this coupon is not valid in this store")
        elif json.loads(found["channels"]) and channel not in json.loads(found["channels"]):
            refusal = ("coupon_wrong_channel", "this coupon is not valid on this channel")
        elif amount < found["min_spend"]:
            refusal = ("coupon_min_spend", f"this coupon needs a purchase of at least {found['min_spend']:g}")
        elif found["issued_for_order"] and tx.scalar(
                "SELECT COUNT(*) FROM orders WHERE refund_of = ? AND status = 'refund'", (found["issued_for_order"],)):
            tx.execute("UPDATE coupons SET status = 'void' WHERE code = ? AND status = 'issued'", (code,))
            refusal = ("coupon_void_after_refund", "the purchase this coupon was given for was refunded")
        else:
            kind, value = found["kind"], float(found["value"])
            discount = (min(value, amount) if kind == "amount_off" else round(amount * value / 100, 2)
                        if kind == "percent_off" else 0.0)
            taken = tx.execute(
                "UPDATE coupons SET status = 'redeemed', redeemed_at = ?, redeemed_store = ?, redeemed_channel = ?, "
                "redeemed_order = ?, discount = ? WHERE code = ? AND status = 'issued'",
                (iso(now), store, channel, order_id, discount, code))
            if not taken:
                refusal = ("coupon_used", "this coupon was already used")
            else:
                tx.execute("INSERT INTO coupon_attempts (code, ts, store, channel, outcome) VALUES (?, ?, ?, ?, ?)",
                           (code, iso(now), store, channel, "redeemed"))
                return {"code": code, "kind": kind, "discount": discount, "gift_sku": found["gift_sku"],
                        "issued_by": found["issued_by"], "person": found["person"], "template_id": found["template_id"]}
    db.execute("INSERT INTO coupon_attempts (code, ts, store, channel, outcome) VALUES (?, ?, ?, ?, ?)",
               (code, iso(now), store, channel, refusal[0]))
    if refusal[0] == "unknown":
        raise UnknownCoupon(refusal[1])
    raise CouponRefused(refusal[1], code=refusal[0])


def attribution(db: Database, *, issued_by_prefix: str = "") -> list[dict]:
    """Per issuer: coupons issued, redeemed, and the discount given."""
    return db.query("SELECT issued_by, COUNT(*) AS issued, SUM(CASE WHEN status = 'redeemed' THEN 1 ELSE 0 END) AS "
                    "redeemed, COALESCE(SUM(discount), 0) AS discount FROM coupons WHERE issued_by LIKE ? "
                    "GROUP BY issued_by ORDER BY issued_by", (issued_by_prefix + "%",))
