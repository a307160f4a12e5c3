"""Orders as a stream: a channel's orders posted as JSON (``POST /v1/orders``) or a till's order on
``.../evt/order``, cleaned and quarantined exactly like an export file's rows.

Each order is one JSON object::

    {"order_no": "R-1001", "store": "sh-001", "ts": "2026-12-05T10:31:00+08:00", "paid": 398.0,
     "member": {"card": "C0001", "phone": "138...", "qr": "C0001", "coupon": "CP-9"},
     "lines": [{"sku": "SKU-1", "qty": 2, "price": 199.0, "category": "护肤"}],
     "type": "sale", "assistant": "a-07"}

A refund (``"type": "refund"``) has its own number and names its order in ``refund_of``; a partial
refund lists only the lines (and amount) returned, and an order may have several. A line's category
defaults to the catalogue's, else ``未分类``. The member fields identify the buyer as the till saw them:
the member card, the phone, a member QR code (it carries the card number) and a coupon code (kept
for attribution, not an identifier). Rows become ``canonical.Order`` and go through
``importer.Importer``: the same checks, the same quarantine reasons, OneID, profile and tags; every
batch is one ``imports`` row (``channel`` = the channel, ``source_name`` = ``stream:<channel>``).

Idempotent on the order's identity (``canonical.order_id``): channel + order number for a platform,
channel + store + receipt number for a till, whose numbers are its store's own (two stores' receipt
R-1 are two sales; a refund's ``refund_of`` names a receipt of its own store). An order posted twice
is quarantined ``duplicate_order`` the second time and counted once.

A posted batch is signed per channel (``verify``): HMAC-SHA256 under the channel's secret over
``<timestamp>.<body>``, hex, sent as ``X-Instore-Signature`` with ``X-Instore-Channel`` and
``X-Instore-Timestamp`` (Unix seconds). A timestamp outside the replay window, or a signature seen
before inside it, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from cloud.cdp.imports import cleaning
from cloud.cdp.imports.adapters import Parsed
from cloud.cdp.imports.canonical import CHANNELS, PER_STORE_CHANNELS, Buyer, Line, Order
from cloud.cdp.imports.cleaning import RowProblem
from cloud.cdp.imports.importer import Importer, ImportReport
from cloud.db import Database
from cloud.errors import CloudError, Invalid, Unauthorized
from protocol.topics import TopicError, check_id

#: orders per posted batch
MAX_BATCH = 5000
DEFAULT_CATEGORY = "未分类"
#: seconds a signed request's timestamp may be from the server's clock, either way
REPLAY_WINDOW_S = 300
#: member fields at the till -> identifier kind (a member QR code carries the card number)
_MEMBER_IDS = (("card", "member_card"), ("qr", "member_card"), ("unionid", "unionid"), ("openid", "openid"),
               ("phone", "phone"))


class SignatureRefused(Unauthorized):
    """A posted batch whose channel, timestamp or signature does not hold: 401 with the reason."""

    code = "bad_signature"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What a channel sends as ``X-Instore-Signature``: hex HMAC-SHA256 of ``timestamp.body``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class ReplayGuard:
    """Signatures seen within the replay window (per process: a replay to another process of a
    multi-process deployment is still only a duplicate order, counted once)."""

    def __init__(self, window_s: int = REPLAY_WINDOW_S, max_entries: int = 200_000) -> None:
        self.window_s = window_s
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def first_time(self, sig: str, now: float) -> bool:
        with self._lock:
            while self._seen and (next(iter(self._seen.values())) < now - 2 * self.window_s
                                  or len(self._seen) > self._max):
                self._seen.popitem(last=False)
            if sig in self._seen:
                return False
            self._seen[sig] = now
            return True


def verify(secrets: Mapping[str, str], channel: str | None, timestamp: str | None, sig: str | None, body: bytes,
           guard: ReplayGuard, *, now: float | None = None) -> str:
    """The channel of a correctly signed, fresh, first-seen batch; else ``SignatureRefused``."""
    now = time.time() if now is None else now
    if not channel or channel not in secrets:
        raise SignatureRefused("X-Instore-Channel names no channel with a configured secret", code="unknown_channel")
    if channel not in CHANNELS:
        raise SignatureRefused(f"channel {channel!r} is not one of {', '.join(CHANNELS)}", code="unknown_channel")
    if not timestamp or not timestamp.isdigit():
        raise SignatureRefused("X-Instore-Timestamp must be Unix seconds", code="bad_timestamp")
    if abs(now - int(timestamp)) > guard.window_s:
        raise SignatureRefused(f"the timestamp is more than {guard.window_s} s from the server's clock",
                               code="stale_signature")
    expected = signature(secrets[channel], timestamp, body)
    if not sig or not hmac.compare_digest(expected, sig.strip().lower()):
        raise SignatureRefused("the signature does not match the body under the channel's secret")
    if not guard.first_time(expected, now):
        raise SignatureRefused("this signature was already used", code="replayed_signature")
    return channel


def _text(value: object) -> str:
    return str(value if value is not None else "").strip()


def _buyer(member: object) -> Buyer | None:
    if member is None:
        return None
    if not isinstance(member, dict):
        raise RowProblem("malformed_row", "member is not an object")
    ids: list[tuple[str, str]] = []
    for field_name, kind in _MEMBER_IDS:
        value = cleaning.phone(member.get(field_name)) if kind == "phone" else _text(member.get(field_name))
        if value and (kind, value) not in ids:
            ids.append((kind, value))
    if not ids:
        return None
    return Buyer(key=f"{ids[0][0]}:{ids[0][1]}", identifiers=tuple(ids), name=_text(member.get("name")) or None)


def parse(channel: str, row: object, categories: Mapping[str, str], *, store: str | None = None) -> Order | RowProblem:
    """One posted order as a canonical ``Order``, or the problem to quarantine it with."""
    try:
        if not isinstance(row, dict):
            raise RowProblem("malformed_row", "an order is a JSON object")
        order_no = _text(row.get("order_no"))
        if not order_no:
            raise RowProblem("missing_field", "no order_no")
        cleaning.currency(row.get("currency"))
        kind = _text(row.get("type") or "sale").lower()
        if kind not in ("sale", "refund"):
            raise RowProblem("malformed_row", f"type is sale or refund, not {kind!r}")
        refund = kind == "refund"
        refund_of = _text(row.get("refund_of")) or None
        if refund and not refund_of:
            raise RowProblem("missing_field", "a refund names its order in refund_of")
        where = store or _text(row.get("store")) or None
        if where is not None:
            try:
                check_id("store", where)
            except TopicError as exc:
                raise RowProblem("invalid_store", str(exc)) from None
        elif channel in PER_STORE_CHANNELS:
            raise RowProblem("missing_field", "no store: a till's receipt number is its store's own")
        items = row.get("lines")
        if not isinstance(items, list) or not items:
            raise RowProblem("no_lines", "an order without lines")
        lines = []
        for item in items:
            if not isinstance(item, dict):
                raise RowProblem("malformed_row", "a line is a JSON object")
            sku = _text(item.get("sku"))
            if not sku:
                raise RowProblem("missing_field", "a line without sku")
            lines.append(Line(sku=sku, category=_text(item.get("category")) or categories.get(sku, DEFAULT_CATEGORY),
                              qty=cleaning.quantity(item.get("qty", 1)), price=cleaning.price(item.get("price"))))
        paid = cleaning.amount(row.get("paid"), "paid")
        if paid < 0 and not refund:
            raise RowProblem("negative_amount", f"paid {paid:g} on a sale")
        return Order(order_no=order_no, channel=channel, store=where, buyer=_buyer(row.get("member")),
                     lines=tuple(lines), paid=-abs(paid) if refund else paid, ts=cleaning.timestamp(row.get("ts")),
                     refund=refund, refund_ref=refund_of)
    except RowProblem as problem:
        return problem
    except ValidationError as exc:
        return RowProblem("malformed_row", str(exc.errors()[0]["msg"]))


@dataclass
class Landed:
    """What a batch did: the import report, the orders written (id, store, member record, ts), and
    each written order's row as posted, by order id (the till's own fields: member, assistant)."""

    report: ImportReport
    orders: list[dict]
    posted: dict[str, dict]


def _categories(db: Database, rows: Iterable[object]) -> dict[str, str]:
    skus = sorted({_text(i.get("sku")) for r in rows if isinstance(r, dict) and isinstance(r.get("lines"), list)
                   for i in r["lines"] if isinstance(i, dict) and not _text(i.get("category"))} - {""})
    with db.transaction() as tx:
        return {sku: cat for test, params in tx.among(skus)
                for sku, cat in tx.rows(f"SELECT sku, category FROM products WHERE sku {test}", params) if cat}


def ingest(db: Database, channel: str, rows: list, *, source: str | None = None, store: str | None = None,
           actor: str | None = None) -> Landed:
    """Write a batch of posted orders (or one till order, ``store`` from its topic) like an import."""
    if channel not in CHANNELS or channel == "members":
        raise Invalid(f"orders stream on one of {', '.join(c for c in CHANNELS if c != 'members')}",
                      code="unknown_channel")
    if not isinstance(rows, list):
        raise Invalid("orders is a list of order objects", code="malformed_batch")
    if len(rows) > MAX_BATCH:
        raise CloudError(f"at most {MAX_BATCH} orders per batch", code="batch_too_large", status=413)
    categories = _categories(db, rows)
    items: list[Parsed] = [(n, row if isinstance(row, dict) else {"value": row}, parse(channel, row, categories,
                                                                                   store=store))
                           for n, row in enumerate(rows, start=1)]
    importer = Importer(db, channel, source or f"stream:{channel}", actor=actor or f"stream:{channel}")
    report = importer.run_items(items, len(items))
    landed = db.query("SELECT id, channel, order_no, store, member_id, ts, paid, status, refund_of FROM orders "
                      "WHERE import_id = ? ORDER BY ts", (report.import_id,))
    posted: dict[str, dict] = {}
    for _, raw, order in items:
        if isinstance(order, Order):
            posted.setdefault(order.id, raw)  # the first of a batch's repeats is the one that landed
    return Landed(report=report, orders=landed, posted={o["id"]: posted[o["id"]] for o in landed})
