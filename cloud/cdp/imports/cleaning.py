"""Cleaning rules shared by every channel: phones, times, money.

Each function returns a clean value or raises ``RowProblem`` with a quarantine reason; a phone
that cannot identify anyone (masked, malformed) is not a row problem, it is kept as written and
the OneID blocklist marks it blocked, so the order still counts and the phone links nobody.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

QuarantineReason = Literal[
    "malformed_row", "missing_field", "bad_time", "bad_amount", "negative_amount", "absurd_amount",
    "unsupported_currency", "duplicate_order", "refund_without_order", "no_lines", "invalid_store",
    "not_paid", "unjoined_line", "control_characters",
]
QUARANTINE_REASONS: tuple[str, ...] = QuarantineReason.__args__  # type: ignore[attr-defined]

#: Channel exports without a zone are in China Standard Time.
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
ABSURD_AMOUNT = 1_000_000.0
#: Excel date serials 36526 (2000-01-01) .. 73051 (2100-01-01); day 0 is 1899-12-30.
EXCEL_SERIALS = (36526.0, 73051.0)
EXCEL_EPOCH = datetime(1899, 12, 30)
ABSURD_QTY = 1000
_CNY = {"", "CNY", "RMB", "¥", "元", "人民币"}
_SEPARATORS = re.compile(r"[\s\-()（）]")
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d",
                 "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日")


class RowProblem(ValueError):
    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def phone(raw: object) -> str | None:
    """``+86 138-0013-8000`` -> ``13800138000``; masked or odd values come back as written."""
    text = str(raw or "").strip()
    if not text:
        return None
    digits = _SEPARATORS.sub("", text)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    return digits


def timestamp(raw: object, *, now: datetime | None = None) -> datetime:
    """An aware UTC time from ISO text (with or without zone), common export formats or epoch."""
    text = str(raw or "").strip()
    if not text:
        raise RowProblem("missing_field", "no time")
    parsed: datetime | None = None
    if re.fullmatch(r"\d{5}(\.\d+)?", text) and EXCEL_SERIALS[0] <= float(text) <= EXCEL_SERIALS[1]:
        # an Excel date serial (days since 1899-12-30, local time) that lost its date format
        parsed = EXCEL_EPOCH + timedelta(days=float(text))
        parsed = parsed.replace(microsecond=0) + timedelta(seconds=round(parsed.microsecond / 1e6))
    elif re.fullmatch(r"\d{9,13}(\.\d+)?", text):
        seconds = float(text) / (1000 if len(text.split(".")[0]) == 13 else 1)
        parsed = datetime.fromtimestamp(seconds, UTC)
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            for fmt in _TIME_FORMATS:
                try:
                    parsed = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
    if parsed is None:
        raise RowProblem("bad_time", f"unreadable time {text!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LOCAL_ZONE)
    parsed = parsed.astimezone(UTC)
    now = now or datetime.now(UTC)
    if parsed > now + timedelta(days=1) or parsed.year < 2000:
        raise RowProblem("bad_time", f"time {text!r} is in the future or before 2000")
    return parsed


def amount(raw: object, field: str, *, scale: float = 1.0) -> float:
    text = str(raw if raw is not None else "").strip().replace(",", "").lstrip("¥￥")
    if not text:
        raise RowProblem("missing_field", f"no {field}")
    try:
        value = float(text) / scale
    except ValueError:
        raise RowProblem("bad_amount", f"{field} {text!r} is not a number") from None
    if value != value or abs(value) > ABSURD_AMOUNT:
        raise RowProblem("absurd_amount", f"{field} {value:g} is beyond {ABSURD_AMOUNT:g}")
    return round(value, 2)


def price(raw: object, *, scale: float = 1.0) -> float:
    value = amount(raw, "price", scale=scale)
    if value < 0:
        raise RowProblem("negative_amount", f"price {value:g}")
    return value


def quantity(raw: object) -> int:
    try:
        qty = int(float(str(raw).strip()))
    except ValueError:
        raise RowProblem("bad_amount", f"quantity {raw!r} is not a number") from None
    if qty <= 0 or qty > ABSURD_QTY:
        raise RowProblem("absurd_amount" if qty > 0 else "negative_amount", f"quantity {qty}")
    return qty


def currency(raw: object) -> None:
    code = str(raw or "").strip().upper()
    if code not in _CNY:
        raise RowProblem("unsupported_currency", f"currency {code!r}; only CNY amounts are imported")
