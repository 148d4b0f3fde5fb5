"""Market calendars and sessions: KRX in Asia/Seoul, US markets in America/New_York.

Holidays come from the ``holidays`` package (financial calendars XKRX and NYSE);
session hours are in the market's own zone, so daylight saving is handled by zoneinfo.
US early closes (the day after Thanksgiving, Christmas Eve) are not in the package and
count as full days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from yquant.messages import Market

if TYPE_CHECKING:
    import holidays

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")
CENT = Decimal("0.01")
US_SUB_DOLLAR_TICK = Decimal("0.0001")


@dataclass(frozen=True)
class Session:
    zone: ZoneInfo
    opens: time
    closes: time
    calendar: str


SESSIONS: dict[Market, Session] = {
    Market.KRX: Session(SEOUL, time(9, 0), time(15, 30), "XKRX"),
    Market.NASD: Session(NEW_YORK, time(9, 30), time(16, 0), "NYSE"),
    Market.NYSE: Session(NEW_YORK, time(9, 30), time(16, 0), "NYSE"),
    Market.AMEX: Session(NEW_YORK, time(9, 30), time(16, 0), "NYSE"),
}


@lru_cache(maxsize=32)
def _holidays(calendar: str, year: int) -> holidays.HolidayBase:
    # Imported on first use: the calendars cost ~4 MiB, and most importers of this module (the
    # dashboard's and the notifier's amounts, tick sizes) never ask for a holiday.
    import holidays

    return holidays.financial_holidays(calendar, years=year)


def holiday_name(market: Market, day: date) -> str | None:
    """The exchange holiday on ``day`` (None on a weekday session or a weekend)."""
    name = _holidays(SESSIONS[market].calendar, day.year).get(day)
    return str(name) if name else None


def is_trading_day(market: Market, day: date) -> bool:
    session = SESSIONS[market]
    if day.weekday() >= 5:
        return False
    return day not in _holidays(session.calendar, day.year)


def local_date(market: Market, now: datetime) -> date:
    """The calendar day in the market's zone."""
    return now.astimezone(SESSIONS[market].zone).date()


def session_open(market: Market, day: date) -> datetime:
    session = SESSIONS[market]
    return datetime.combine(day, session.opens, session.zone)


def session_close(market: Market, day: date) -> datetime:
    session = SESSIONS[market]
    return datetime.combine(day, session.closes, session.zone)


def is_open(market: Market, now: datetime) -> bool:
    session = SESSIONS[market]
    local = now.astimezone(session.zone)
    if not is_trading_day(market, local.date()):
        return False
    return session.opens <= local.time() < session.closes


def next_open(market: Market, now: datetime) -> datetime:
    session = SESSIONS[market]
    local = now.astimezone(session.zone)
    day = local.date()
    if local.time() >= session.opens:
        day += timedelta(days=1)
    while not is_trading_day(market, day):
        day += timedelta(days=1)
    return datetime.combine(day, session.opens, session.zone)


def krx_tick_size(price: Decimal) -> Decimal:
    """KRX tick size since 2023-01-25 (stocks; ETFs/ETNs use 5 KRW)."""
    steps = (
        (Decimal(2000), Decimal(1)),
        (Decimal(5000), Decimal(5)),
        (Decimal(20000), Decimal(10)),
        (Decimal(50000), Decimal(50)),
        (Decimal(200000), Decimal(100)),
        (Decimal(500000), Decimal(500)),
    )
    for limit, tick in steps:
        if price < limit:
            return tick
    return Decimal(1000)


def tick_size(market: Market, price: Decimal) -> Decimal:
    """KRX by the tick table; US in cents, or 1/100 cent below one dollar."""
    if market is Market.KRX:
        return krx_tick_size(price)
    return US_SUB_DOLLAR_TICK if price < 1 else CENT


def round_to_tick(market: Market, price: Decimal, *, down: bool = True, tick: Decimal | None = None) -> Decimal:
    """Round a limit price to the market's tick (down for buys, up for sells)."""
    step = tick or tick_size(market, price)
    units = (price / step).to_integral_value(rounding=ROUND_FLOOR if down else ROUND_CEILING)
    return (units * step).quantize(step)


def marketable_limit(market: Market, quote_price: Decimal, *, buy: bool, slippage_percent: Decimal) -> Decimal:
    """A US "market" order as a limit ``slippage_percent`` through the quote, on the tick (ADR 0007).

    KIS has no US market order: a buy is priced above the quote and rounded up, a sell below it and
    rounded down, so the limit is never less marketable than the slippage asked for.
    """
    factor = 1 + slippage_percent / 100 if buy else 1 - slippage_percent / 100
    raw = quote_price * factor
    price = round_to_tick(market, raw, down=not buy)
    return max(price, tick_size(market, price))


def money(currency: str, amount: Decimal, *, down: bool = False) -> Decimal:
    """An amount in its currency's precision: KRW in whole won, USD (and others) in cents.

    Half-up by default (a fee, a value, a P/L: the nearest unit); ``down=True`` for a budget, so
    what is spent never exceeds what was allowed.
    """
    step = Decimal(1) if currency == "KRW" else CENT
    return amount.quantize(step, rounding=ROUND_FLOOR if down else ROUND_HALF_UP)


def fee(currency: str, amount: Decimal) -> Decimal:
    """A commission or tax as the broker charges it: fractions of a won are dropped (KIS truncates
    domestic commission and tax to the won), a US fee goes to the nearest cent.

    Not ``money``: that is the nearest unit of a value or a P/L; a fee rounded up by half a won on
    every fill would make the books disagree with the broker's statement by a won a fill.
    """
    if currency == "KRW":
        return amount.quantize(Decimal(1), rounding=ROUND_FLOOR)
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def format_money(currency: str, amount: Decimal) -> str:
    """``KRW 1,234,567`` / ``USD 1,234.50``: the currency's precision, thousands separated."""
    rounded = money(currency, amount)
    return f"{currency} {rounded:,.0f}" if currency == "KRW" else f"{currency} {rounded:,.2f}"


CURRENCY_SYMBOLS = {"KRW": "₩", "USD": "$"}


def format_amount(currency: str, amount: Decimal, *, signed: bool = False) -> str:
    """An amount as a trader reads it: ``₩1,234,567``, ``-$12.50``, ``+₩8,000`` (``signed``), or
    ``1,234.50 EUR`` for a currency without a symbol; the currency's precision, half-up.

    ``format_money`` (``KRW 1,234,567``) is the plain form of decision reasons and logs.
    """
    rounded = money(currency, amount)
    sign = "-" if rounded < 0 else ("+" if signed and rounded > 0 else "")
    symbol = CURRENCY_SYMBOLS.get(currency, "")
    text = f"{abs(rounded):,}"
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def symbol_key(market: Market | str, ticker: str) -> str:
    """``KRX:005930`` / ``NASD:AAPL``: how a symbol is named in hashes and lists."""
    name = market.value if isinstance(market, Market) else market
    return f"{name}:{ticker}"
