"""Trading calendars and sessions in KST: KRX 09:00-15:30 and the US regular session.

The US session is 09:30-16:00 New York time, which is 23:30-06:00 KST in winter and 22:30-05:00
KST under US daylight saving; the DST rule (second Sunday of March to first Sunday of November,
02:00 local) is computed here so no tz database is needed. Holidays come from the ``holidays``
package when it is installed, else from the built-in 2025-2027 tables, plus configured extra days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache

from kissim.protocol import KST

_KRX_FALLBACK = (
    "20250101 20250127 20250128 20250129 20250130 20250303 20250501 20250505 20250506 20250603 20250606 "
    "20250815 20251003 20251006 20251007 20251008 20251009 20251225 20251231 20260101 20260216 20260217 "
    "20260218 20260302 20260501 20260505 20260525 20260603 20260717 20260817 20260924 20260925 20261005 "
    "20261009 20261225 20261231 20270101 20270208 20270209 20270301 20270503 20270505 20270513 20270719 "
    "20270816 20270914 20270915 20270916 20271004 20271011 20271227 20271231"
)
_NYSE_FALLBACK = (
    "20250101 20250109 20250120 20250217 20250418 20250526 20250619 20250704 20250901 20251127 20251225 "
    "20260101 20260119 20260216 20260403 20260525 20260619 20260703 20260907 20261126 20261225 20270101 "
    "20270118 20270215 20270326 20270531 20270618 20270705 20270906 20271125 20271224"
)
KRX_OPEN = time(9, 0)
KRX_CLOSE = time(15, 30)
US_OPEN = time(9, 30)
US_CLOSE = time(16, 0)


def _parse(days: str) -> frozenset[date]:
    return frozenset(datetime.strptime(day, "%Y%m%d").replace(tzinfo=KST).date() for day in days.split())


@lru_cache(maxsize=8)
def exchange_holidays(exchange: str, year: int) -> frozenset[date]:
    """Closed weekdays of ``exchange`` ("XKRX" or "NYSE") in ``year``."""
    try:
        import holidays
    except ImportError:
        table = _parse(_KRX_FALLBACK if exchange == "XKRX" else _NYSE_FALLBACK)
        return frozenset(day for day in table if day.year == year)
    return frozenset(holidays.financial_holidays(exchange, years=[year]).keys())


def _nth_sunday(year: int, month: int, nth: int) -> date:
    first = date(year, month, 1)
    first_sunday = first + timedelta(days=(6 - first.weekday()) % 7)
    return first_sunday + timedelta(weeks=nth - 1)


def new_york_offset(moment: datetime) -> timedelta:
    """UTC offset of New York at ``moment`` (aware): -4 h under daylight saving, else -5 h."""
    utc = moment.astimezone(UTC)
    year = utc.year
    # DST starts 02:00 EST (07:00 UTC) and ends 02:00 EDT (06:00 UTC).
    start = datetime.combine(_nth_sunday(year, 3, 2), time(7), tzinfo=UTC)
    end = datetime.combine(_nth_sunday(year, 11, 1), time(6), tzinfo=UTC)
    return timedelta(hours=-4) if start <= utc < end else timedelta(hours=-5)


def new_york_time(moment: datetime) -> datetime:
    offset = new_york_offset(moment)
    return moment.astimezone(timezone(offset))


def _is_trading_day(day: date, exchange: str, extra: Iterable[date]) -> bool:
    return day.weekday() < 5 and day not in exchange_holidays(exchange, day.year) and day not in set(extra)


def krx_is_open(moment: datetime, extra_holidays: Iterable[date] = ()) -> bool:
    local = moment.astimezone(KST)
    return _is_trading_day(local.date(), "XKRX", extra_holidays) and KRX_OPEN <= local.time() < KRX_CLOSE


def us_is_open(moment: datetime, extra_holidays: Iterable[date] = ()) -> bool:
    local = new_york_time(moment)
    return _is_trading_day(local.date(), "NYSE", extra_holidays) and US_OPEN <= local.time() < US_CLOSE


def us_session_kst(day: date) -> tuple[datetime, datetime]:
    """The US regular session of New York date ``day`` as KST datetimes."""
    probe = datetime.combine(day, time(12), tzinfo=UTC)
    zone = timezone(new_york_offset(probe))
    opens = datetime.combine(day, US_OPEN, tzinfo=zone).astimezone(KST)
    closes = datetime.combine(day, US_CLOSE, tzinfo=zone).astimezone(KST)
    return opens, closes


def now_kst(clock: Callable[[], float] | None = None) -> datetime:
    if clock is None:
        return datetime.now(KST)
    return datetime.fromtimestamp(clock(), KST)
