"""What the pages show, computed without I/O: money formats, the FX rate, equity and P/L per account.

Every P/L figure comes from ``yquant.pnl``, per currency: no page adds KRW to USD except the
equity headline, converted at the USD/KRW rate the page shows beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from jinja2 import pass_context
from jinja2.runtime import Context

from yquant import markets, pnl
from yquant.messages import Position
from yquant.portfolio import UnownedOrder
from yquant.settings import DashboardSettings

ZERO = Decimal(0)


def to_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


MAX_INPUT_CHARS = 32
MAX_INPUT_MAGNITUDE = Decimal("1e15")  # above any quantity, price or amount a trader types
MAX_INPUT_PLACES = 8


def to_input_decimal(value: Any) -> Decimal | None:
    """A number a user typed (thousands separators allowed), or None unless it is short, finite,
    below 10^15 and has at most 8 decimal places. ``1e999999`` is refused before anything turns
    it into a million-digit integer on the event loop."""
    text = str(value if value is not None else "").strip().replace(",", "")
    if not text or len(text) > MAX_INPUT_CHARS:
        return None
    number = to_decimal(text)
    if number is None or abs(number) >= MAX_INPUT_MAGNITUDE:
        return None
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_INPUT_PLACES:
        return None
    return number


def to_input_int(value: Any) -> int:
    """A whole number a user typed, bounded as ``to_input_decimal``; ValueError otherwise."""
    number = to_input_decimal(value)
    if number is None or number != number.to_integral_value():
        raise ValueError(f"{str(value)[:40]!r} is not a whole number below 10^15")
    return int(number)


def money(value: Any, currency: str = "KRW", signed: bool = False) -> str:
    """KRW without decimals, USD with two, thousands separated: ``₩1,234,567``, ``-$12.50``."""
    amount = to_decimal(value)
    return "—" if amount is None else markets.format_amount(currency, amount, signed=signed)


def price(value: Any, currency: str = "KRW") -> str:
    amount = to_decimal(value)
    if amount is None:
        return "—"
    places = Decimal(1) if currency == "KRW" else Decimal("0.01")
    return f"{amount.quantize(places, rounding=ROUND_HALF_UP):,}"


def percent(value: Any, signed: bool = True) -> str:
    amount = to_decimal(value)
    if amount is None:
        return "—"
    rounded = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{'+' if signed and rounded > 0 else ''}{rounded}%"


def quantity(value: Any) -> str:
    amount = to_decimal(value)
    return "—" if amount is None else f"{int(amount):,}"


def tone(value: Any) -> str:
    """CSS class for a gain or a loss."""
    amount = to_decimal(value)
    if amount is None or amount == 0:
        return ""
    return "gain" if amount > 0 else "loss"


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float | Decimal):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            number = to_decimal(value)
            return datetime.fromtimestamp(float(number), UTC) if number is not None else None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


@pass_context
def localtime(context: Context, value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A time in the viewer's zone (``tz`` in the template context)."""
    moment = parse_time(value)
    if moment is None:
        return "—"
    zone = context.get("tz") or ZoneInfo("Asia/Seoul")
    return moment.astimezone(zone).strftime(fmt)


def zone_name(zone: ZoneInfo) -> str:
    """What a trader calls the zone the pages' times are in: "KST (Asia/Seoul)", "EST (America/New_York)"."""
    return f"{datetime.now(zone).tzname()} ({zone.key})"


def plain(value: Any) -> str:
    """A decimal as an input's value: no separators, no exponent, no trailing zeros (``70000``, ``190.5``)."""
    number = to_decimal(value)
    return "" if number is None else format(number.normalize(), "f")


def filters() -> dict[str, Any]:
    return {
        "plain": plain,
        "money": money,
        "price": price,
        "percent": percent,
        "quantity": quantity,
        "tone": tone,
        "localtime": localtime,
        "zone_name": zone_name,
        "by_currency": pnl.ordered,
    }


@dataclass(frozen=True)
class FxRate:
    rate: Decimal
    source: str  # "fixed" | "cached" | "default"
    as_of: str = ""


def resolve_fx(settings: DashboardSettings, cached: bytes | str | None) -> FxRate:
    """The fixed setting, else the cached rate (a decimal or a Quote's JSON), else the default."""
    if settings.fx_usdkrw is not None:
        return FxRate(settings.fx_usdkrw, "fixed")
    if cached:
        text = cached.decode() if isinstance(cached, bytes) else cached
        rate = to_decimal(text)
        if rate is not None and rate > 0:
            return FxRate(rate, "cached")
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            rate = to_decimal(data.get("price") or data.get("rate"))
            if rate is not None and rate > 0:
                return FxRate(rate, "cached", str(data.get("as_of", "")))
    return FxRate(settings.fx_default_usdkrw, "default")


@dataclass
class AccountView:
    """One account as the pages show it. Every amount is per currency and computed by
    ``yquant.pnl``; only ``equity_krw`` converts, at the rate the page names (``fx``)."""

    alias: str
    cash: dict[str, Decimal]
    positions: list[Position]
    synced_at: str
    fx: FxRate
    previous_equity: pnl.Amounts | None = None  # per currency, from the last snapshot before today
    realised_today: pnl.Amounts = field(default_factory=dict)
    realised: pnl.Amounts = field(default_factory=dict)  # over the order records read
    # Orders open at KIS that yQuant did not place, as the gateway's last read of KIS's list found them.
    unowned_open_orders: list[UnownedOrder] = field(default_factory=list)
    open_orders_checked_at: str = ""

    @property
    def equity(self) -> pnl.Amounts:
        return pnl.equity(self.cash, self.positions)

    @property
    def equity_krw(self) -> Decimal:
        return pnl.converted(self.equity, self.fx.rate)

    @property
    def unrealised(self) -> pnl.Amounts:
        return pnl.unrealised(self.positions)

    @property
    def day_pnl(self) -> pnl.Amounts | None:
        return pnl.change(self.equity, self.previous_equity)

    @property
    def currencies(self) -> list[str]:
        """The currencies this account has anything in, KRW first."""
        seen: pnl.Amounts = {c: ZERO for c in (*self.equity, *self.realised, *(self.previous_equity or {}))}
        return [currency for currency, _ in pnl.ordered(seen)]


@dataclass
class Totals:
    accounts: list[AccountView]
    fx: FxRate

    @property
    def cash(self) -> pnl.Amounts:
        return pnl.total(a.cash for a in self.accounts)

    @property
    def equity(self) -> pnl.Amounts:
        return pnl.total(a.equity for a in self.accounts)

    @property
    def equity_krw(self) -> Decimal:
        return pnl.converted(self.equity, self.fx.rate)

    @property
    def unrealised(self) -> pnl.Amounts:
        return pnl.total(a.unrealised for a in self.accounts)

    @property
    def day_pnl(self) -> pnl.Amounts | None:
        """The sum of the accounts' day changes; None unless every account has one."""
        changes = [a.day_pnl for a in self.accounts]
        if not changes or any(c is None for c in changes):
            return None
        return pnl.total(c for c in changes if c is not None)

    @property
    def realised_today(self) -> pnl.Amounts:
        return pnl.total(a.realised_today for a in self.accounts)

    @property
    def currencies(self) -> list[str]:
        seen: pnl.Amounts = {c: ZERO for a in self.accounts for c in a.currencies}
        return [currency for currency, _ in pnl.ordered(seen)]

    def book(self, book: pnl.Book, since: datetime) -> None:
        """Give each account its realised P/L from ``book``: since ``since`` and over all records."""
        for account in self.accounts:
            account.realised_today = book.realised_of(account.alias, since)
            account.realised = book.realised_of(account.alias)


def parse_snapshot(raw: bytes | str) -> dict[str, Any] | None:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
