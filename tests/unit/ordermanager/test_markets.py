"""Market calendars, sessions in the market's zone, tick rounding."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from yquant.markets import (
    fee,
    format_amount,
    format_money,
    holiday_name,
    is_open,
    is_trading_day,
    marketable_limit,
    money,
    next_open,
    round_to_tick,
    session_close,
    symbol_key,
    tick_size,
)
from yquant.messages import Market


def test_krx_holidays_and_weekends_are_closed() -> None:
    assert not is_trading_day(Market.KRX, date(2025, 10, 3))
    assert holiday_name(Market.KRX, date(2025, 10, 6)) is not None
    assert not is_trading_day(Market.KRX, date(2025, 6, 7))  # Saturday
    assert is_trading_day(Market.KRX, date(2025, 6, 10))


def test_nyse_session_follows_daylight_saving() -> None:
    # 13:45 UTC is 09:45 New York in summer (open) and 08:45 in winter (closed).
    assert is_open(Market.NASD, datetime(2025, 7, 7, 13, 45, tzinfo=UTC))
    assert not is_open(Market.NASD, datetime(2025, 1, 6, 13, 45, tzinfo=UTC))
    assert not is_open(Market.NYSE, datetime(2025, 7, 4, 15, 0, tzinfo=UTC))  # Independence Day


def test_krx_session_and_next_open() -> None:
    assert is_open(Market.KRX, datetime(2025, 6, 10, 0, 0, tzinfo=UTC))  # 09:00 KST
    assert not is_open(Market.KRX, datetime(2025, 6, 10, 6, 30, tzinfo=UTC))  # 15:30 KST
    assert next_open(Market.KRX, datetime(2025, 10, 2, 7, 0, tzinfo=UTC)).date() == date(2025, 10, 10)
    assert session_close(Market.KRX, date(2025, 6, 10)).astimezone(UTC).hour == 6


@pytest.mark.parametrize(
    ("price", "tick"),
    [(1_999, 1), (2_000, 5), (19_990, 10), (20_000, 50), (70_000, 100), (250_000, 500), (800_000, 1000)],
)
def test_krx_tick_table(price: int, tick: int) -> None:
    assert tick_size(Market.KRX, Decimal(price)) == Decimal(tick)


def test_rounding_is_down_for_buys_and_up_for_sells() -> None:
    assert round_to_tick(Market.KRX, Decimal(70_050)) == Decimal(70_000)
    assert round_to_tick(Market.KRX, Decimal(70_050), down=False) == Decimal(70_100)
    assert round_to_tick(Market.NASD, Decimal("190.129")) == Decimal("190.12")
    assert round_to_tick(Market.NASD, Decimal("0.12345")) == Decimal("0.1234")
    assert round_to_tick(Market.KRX, Decimal(70_049), tick=Decimal(10)) == Decimal(70_040)


def test_money_precision_by_currency() -> None:
    # A fee, a value, a P/L: the nearest won or cent.
    assert money("KRW", Decimal("1234.5")) == Decimal(1235)
    assert money("KRW", Decimal("1234.4")) == Decimal(1234)
    assert money("USD", Decimal("12.345")) == Decimal("12.35")
    assert money("USD", Decimal("12.344")) == Decimal("12.34")
    # A budget never rounds up past what was allowed.
    assert money("KRW", Decimal("1234.9"), down=True) == Decimal(1234)
    assert money("USD", Decimal("12.349"), down=True) == Decimal("12.34")


def test_a_fee_is_truncated_to_the_won_and_rounded_to_the_cent() -> None:
    # KIS drops fractions of a won from commission and tax; a half-up won would drift from its statement.
    assert fee("KRW", Decimal("1234.9")) == Decimal(1234)
    assert fee("KRW", Decimal("0.99")) == Decimal(0)
    assert fee("USD", Decimal("0.125")) == Decimal("0.13")
    assert fee("USD", Decimal("0.124")) == Decimal("0.12")


def test_money_is_formatted_in_its_currency_precision() -> None:
    assert format_money("KRW", Decimal("1234567.5")) == "KRW 1,234,568"
    assert format_money("USD", Decimal("1234.5")) == "USD 1,234.50"


def test_a_symbol_is_named_market_colon_ticker() -> None:
    assert symbol_key(Market.NASD, "AAPL") == "NASD:AAPL"
    assert symbol_key("KRX", "005930") == "KRX:005930"


@pytest.mark.parametrize(
    ("price", "buy", "expected"),
    [
        ("190.00", True, "191.90"),
        ("190.00", False, "188.10"),
        ("10.005", True, "10.11"),  # rounded up to the cent for a buy ...
        ("10.005", False, "9.90"),  # ... down for a sell
        ("0.5", True, "0.5050"),  # under $1 the tick is $0.0001
        ("0.0001", False, "0.0001"),  # never below one tick
    ],
)
def test_us_market_order_becomes_a_marketable_limit_on_the_tick(price: str, buy: bool, expected: str) -> None:
    limit = marketable_limit(Market.NASD, Decimal(price), buy=buy, slippage_percent=Decimal(1))
    assert (limit, str(limit)) == (Decimal(expected), expected)


def test_an_amount_reads_with_its_symbol_sign_and_precision() -> None:
    assert format_amount("KRW", Decimal("1234567.5")) == "₩1,234,568"
    assert format_amount("USD", Decimal("-12.5")) == "-$12.50"
    assert format_amount("KRW", Decimal(8000), signed=True) == "+₩8,000"
    assert format_amount("KRW", Decimal(0), signed=True) == "₩0"
    assert format_amount("EUR", Decimal("1234.5")) == "1,234.50 EUR"


def test_the_holiday_calendars_load_only_when_a_calendar_is_asked() -> None:
    # ~4 MiB of the dashboard's and notifier's memory: they import this module for amounts and
    # tick sizes, which need no calendar.
    probe = (
        "import sys, dashboard.views, notifier.events, yquant.markets as m\n"
        "before = 'holidays' in sys.modules\n"
        "m.is_trading_day(m.Market.KRX, __import__('datetime').date(2026, 12, 7))\n"
        "print(before, 'holidays' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
