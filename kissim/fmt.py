"""Number formatting as KIS sends it: every number a string, fixed decimals per field."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

ZERO = Decimal(0)


def won(value: Decimal | int) -> str:
    """Whole KRW, truncated like KIS's amounts."""
    return str(int(Decimal(value).to_integral_value(rounding=ROUND_FLOOR)))


def fixed(value: Decimal | int, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)
    return format(Decimal(value).quantize(quantum, rounding=ROUND_HALF_UP), "f")


def rate(numerator: Decimal, denominator: Decimal, places: int = 2) -> str:
    """Percentage ``numerator / denominator * 100``; "0.00" when the denominator is zero."""
    if not denominator:
        return fixed(ZERO, places)
    return fixed(numerator / denominator * 100, places)


def ymd(day: date) -> str:
    return day.strftime("%Y%m%d")


def names(text: str) -> tuple[str, ...]:
    """Field names written as one space-separated string (KIS's column lists are long)."""
    return tuple(text.split())
