"""Market calendars and sessions: KRX in Asia/Seoul, US markets in America/New_York.

Holidays come from the ``holidays`` package (financial calendars XKRX and NYSE);
session hours are in the market's own zone, so daylight saving is handled by zoneinfo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from yquant.messages import Market

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")


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
    return holidays.financial_holidays(calendar, years=year)


def is_trading_day(market: Market, day: date) -> bool:
    session = SESSIONS[market]
    if day.weekday() >= 5:
        return False
    return day not in _holidays(session.calendar, day.year)


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


def round_to_tick(market: Market, price: Decimal, *, down: bool = True, tick: Decimal | None = None) -> Decimal:
    """Round a limit price to the market's tick: KRX by the tick table, US to cents."""
    step = tick or (krx_tick_size(price) if market is Market.KRX else Decimal("0.01"))
    units = (price / step).to_integral_value(rounding="ROUND_FLOOR" if down else "ROUND_CEILING")
    return (units * step).quantize(step)
