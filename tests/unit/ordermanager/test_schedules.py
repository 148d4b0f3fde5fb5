"""When a schedule runs next: market zones, daylight saving, holidays, offsets after the open."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from yquant.messages import Market, SignalAction
from yquant.schedules import (
    ScheduleKind,
    ScheduleSpec,
    next_occurrence,
    occurrence_key,
    spec_from_dashboard,
    upcoming,
    why_never,
)

KST = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = [0, 1, 2, 3, 4]


def spec(**fields: Any) -> ScheduleSpec:
    values: dict[str, Any] = {
        "account": "main",
        "market": Market.KRX,
        "ticker": "005930",
        "quantity": 1,
        "weekdays": WEEKDAYS,
        "at_time": time(9, 0),
    }
    values.update(fields)
    return ScheduleSpec.model_validate(values)


def test_weekday_schedule_skips_the_chuseok_holidays() -> None:
    # Thu 2025-10-02 after 09:00: Oct 3 (National Foundation Day), 6-8 (Chuseok), 9 (Hangul Day) are closed.
    after = datetime(2025, 10, 2, 10, 0, tzinfo=KST)
    assert next_occurrence(spec(), after) == datetime(2025, 10, 10, 9, 0, tzinfo=KST)


def test_time_is_in_the_markets_zone_across_daylight_saving() -> None:
    us = spec(market=Market.NASD, ticker="AAPL", at_time=time(9, 35))
    winter = next_occurrence(us, datetime(2025, 3, 7, 12, 0, tzinfo=UTC))  # Friday, before DST
    summer = next_occurrence(us, datetime(2025, 3, 10, 0, 0, tzinfo=UTC))  # Monday, after DST
    assert winter == datetime(2025, 3, 7, 14, 35, tzinfo=UTC)
    assert summer == datetime(2025, 3, 10, 13, 35, tzinfo=UTC)


def test_offset_after_the_open() -> None:
    us = spec(market=Market.NYSE, ticker="IBM", at_time=None, open_offset_minutes=15)
    assert next_occurrence(us, datetime(2025, 7, 7, 0, 0, tzinfo=UTC)) == datetime(2025, 7, 7, 9, 45, tzinfo=NEW_YORK)


def test_us_holiday_is_skipped() -> None:
    us = spec(market=Market.NASD, ticker="AAPL", at_time=time(10, 0))
    after = datetime(2025, 7, 3, 12, 0, tzinfo=NEW_YORK)  # next day is Independence Day
    assert next_occurrence(us, after) == datetime(2025, 7, 7, 10, 0, tzinfo=NEW_YORK)


def test_a_time_in_another_zone_checks_the_markets_own_date() -> None:
    # 23:40 KST on a Monday is 10:40 New York time the same Monday (summer).
    evening = spec(market=Market.NASD, ticker="AAPL", at_time=time(23, 40), timezone="Asia/Seoul")
    first = next_occurrence(evening, datetime(2025, 7, 6, 0, 0, tzinfo=KST))
    assert first == datetime(2025, 7, 7, 23, 40, tzinfo=KST)


def test_once_schedule_runs_once_and_then_never() -> None:
    once = spec(kind=ScheduleKind.ONCE, run_on=date(2025, 6, 10), weekdays=[])
    moment = next_occurrence(once, datetime(2025, 6, 1, tzinfo=UTC))
    assert moment == datetime(2025, 6, 10, 9, 0, tzinfo=KST)
    assert next_occurrence(once, moment) is None


def test_once_on_a_holiday_never_runs_and_says_why() -> None:
    once = spec(kind=ScheduleKind.ONCE, run_on=date(2025, 10, 3), weekdays=[])
    after = datetime(2025, 9, 1, tzinfo=UTC)
    assert next_occurrence(once, after) is None
    assert "holiday" in why_never(once, after)


def test_upcoming_lists_the_next_runs() -> None:
    runs = upcoming(spec(weekdays=[0]), datetime(2025, 6, 1, tzinfo=UTC), count=3)
    assert [r.astimezone(KST).date() for r in runs] == [date(2025, 6, 2), date(2025, 6, 9), date(2025, 6, 16)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quantity": None}, "exactly one of quantity"),
        ({"amount": Decimal(100)}, "exactly one of quantity"),
        ({"at_time": None}, "exactly one of at_time"),
        ({"weekdays": []}, "at least one weekday"),
        ({"kind": ScheduleKind.ONCE}, "run_on"),
        ({"at_time": None, "open_offset_minutes": 400}, "before the close"),
        ({"action": SignalAction.REVERSE}, "buys, sells or exits"),
        ({"timezone": "Mars/Base"}, "time zone"),
    ],
)
def test_invalid_specs_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec(**fields)


def test_exit_schedule_needs_no_size() -> None:
    assert spec(action=SignalAction.EXIT, quantity=None).quantity is None


def test_dashboard_schedule_is_understood() -> None:
    form = {
        "schedule_id": "sch-0123456789abcdef",
        "label": "monthly",
        "account": "main",
        "market": "KRX",
        "ticker": "005930",
        "side": "buy",
        "quantity_type": "amount",
        "quantity": "1000000",
        "order_type": "market",
        "limit_price": None,
        "time_of_day": "09:05",
        "days": ["mon", "fri"],
        "timezone": "Asia/Seoul",
        "enabled": True,
    }
    parsed = spec_from_dashboard(form)
    assert parsed.amount == Decimal(1_000_000)
    assert parsed.quantity is None
    assert parsed.weekdays == [0, 4]
    assert parsed.at_time == time(9, 5)


def test_a_schedule_describes_its_symbol_as_market_colon_ticker() -> None:
    # The order's comment and the dashboard's audit entry carry this line.
    us = spec(market=Market.NASD, ticker="aapl", quantity=2, weekdays=[0, 4], at_time=time(9, 30))
    assert us.describe() == "buy 2 shares of NASD:AAPL Mon,Fri 09:30"
    krx = spec(quantity=None, amount=Decimal(1_000_000), weekdays=[0], at_time=None, open_offset_minutes=5)
    assert krx.describe() == "buy 1000000 KRW of KRX:005930 Mon open+5min"


def test_occurrence_key_is_utc() -> None:
    assert occurrence_key(datetime(2025, 6, 10, 9, 0, tzinfo=KST)) == "20250610T000000Z"
