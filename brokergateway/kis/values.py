"""How KIS spells numbers: every value a string, amounts with optional commas, order numbers
zero-padded in some answers and not in others (pure functions)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


def dec(value: Any, default: str = "0") -> Decimal:
    """A KIS number as a finite Decimal; blank, malformed or infinite gives ``default``."""
    text = str(value if value not in (None, "") else default).strip().replace(",", "")
    try:
        result = Decimal(text)
    except InvalidOperation:
        return Decimal(default)
    return result if result.is_finite() else Decimal(default)


def integer(value: Any) -> int:
    return int(dec(value))


def order_number(text: object) -> str:
    """An order number without padding: KIS writes "0000001234" in some places, "1234" in others."""
    value = str(text or "").strip()
    return value.lstrip("0") or ("0" if value else "")
