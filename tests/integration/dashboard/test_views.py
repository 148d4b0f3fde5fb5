"""Money formats, the FX rate, equity and performance statistics (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from dashboard.performance import max_drawdown, snapshot_due, to_csv, total_return, win_rate
from dashboard.schedules import form_from_schedule, spec_from_form
from dashboard.views import AccountView, money, resolve_fx
from tests.integration.dashboard.seed import SEOUL, position
from yquant import pnl
from yquant.messages import Market, OrderState, OrderType, Side
from yquant.orders import OrderRecord
from yquant.schedules import Schedule, ScheduleSpec
from yquant.settings import DashboardSettings


@pytest.mark.parametrize(
    ("value", "currency", "signed", "expected"),
    [
        ("1234567.5", "KRW", False, "₩1,234,568"),
        ("-1234.5", "USD", False, "-$1,234.50"),
        ("12.345", "USD", True, "+$12.35"),
        ("0", "KRW", True, "₩0"),
        (None, "KRW", False, "—"),
    ],
)
def test_krw_has_no_decimals_and_usd_two(value: str | None, currency: str, signed: bool, expected: str) -> None:
    assert money(value, currency, signed) == expected


def test_fx_rate_comes_from_the_setting_then_the_cache_then_the_default() -> None:
    assert resolve_fx(DashboardSettings(fx_usdkrw=Decimal(1300)), b"1390").source == "fixed"
    cached = resolve_fx(DashboardSettings(), b'{"price": "1391.5", "as_of": "2025-01-02T00:00:00Z"}')
    assert (cached.rate, cached.source) == (Decimal("1391.5"), "cached")
    assert resolve_fx(DashboardSettings(), None).rate == Decimal(1400)


def test_equity_converts_usd_at_the_rate_used() -> None:
    fx = resolve_fx(DashboardSettings(fx_usdkrw=Decimal(1000)), None)
    account = AccountView(
        "main",
        {"KRW": Decimal(1_000_000), "USD": Decimal(100)},
        [position(Market.NASD, "AAPL", "Apple", 2, "100", "150")],
        "",
        fx,
        previous_equity={"KRW": Decimal(990_000), "USD": Decimal(310)},
    )
    assert account.equity_krw == Decimal(1_000_000 + 100_000 + 300_000)
    # The day's change stays per currency: no rate is needed, none is used.
    assert account.day_pnl == {"KRW": Decimal(10_000), "USD": Decimal(90)}


def _filled(side: Side, quantity: int, price: str, minutes: int) -> OrderRecord:
    at = datetime(2025, 1, 2, tzinfo=UTC) + timedelta(minutes=minutes)
    return OrderRecord(
        client_order_id=f"yq-{minutes}",
        account="main",
        market=Market.KRX,
        ticker="005930",
        side=side,
        quantity=quantity,
        order_type=OrderType.MARKET,
        strategy="demo",
        origin="signal",
        state=OrderState.FILLED,
        created_at=at,
        updated_at=at,
        filled_quantity=quantity,
        average_price=Decimal(price),
    )


def test_win_rate_counts_sells_at_the_average_cost() -> None:
    records = [
        _filled(Side.BUY, 10, "100", 0),
        _filled(Side.BUY, 10, "200", 1),
        _filled(Side.SELL, 5, "160", 2),  # above the average cost 150
        _filled(Side.SELL, 5, "140", 3),  # below it
    ]
    assert win_rate(pnl.realise(records)) == 50


def test_return_and_drawdown_of_an_equity_series() -> None:
    series = [("d1", Decimal(100)), ("d2", Decimal(120)), ("d3", Decimal(90)), ("d4", Decimal(110))]
    assert total_return(series) == 10
    assert max_drawdown(series) == 25


def test_csv_cells_cannot_be_formulas() -> None:
    assert to_csv(["a", "b"], [["=HYPERLINK(1)", "-12.5"]]).splitlines()[1] == "'=HYPERLINK(1),-12.5"


def test_snapshot_due_after_the_close_on_trading_days_only() -> None:
    friday_close = datetime(2025, 3, 7, 16, 0, tzinfo=SEOUL)
    assert snapshot_due(friday_close, SEOUL, "15:45") is not None
    assert snapshot_due(friday_close.replace(hour=15, minute=0), SEOUL, "15:45") is None
    assert snapshot_due(friday_close + timedelta(days=1), SEOUL, "15:45") is None  # Saturday


def test_schedule_form_round_trips_through_the_order_managers_spec() -> None:
    values = {"name": "dca", "account": "main", "market": "NASD", "ticker": "aapl", "action": "buy",
              "size_by": "amount", "size": "1,000", "order_type": "limit", "limit_price": "190.5",
              "kind": "recurring", "days": ["mon", "fri"], "at_time": "22:40", "timezone": "Asia/Seoul",
              "enabled": True}  # fmt: skip
    spec = ScheduleSpec.model_validate(spec_from_form(values))
    assert spec.ticker == "AAPL"
    assert spec.amount == Decimal(1000)
    assert spec.weekdays == [0, 4]
    now = datetime(2025, 3, 5, tzinfo=UTC)
    schedule = Schedule(schedule_id="sch-0123456789ab", spec=spec, created_at=now, updated_at=now)
    form = form_from_schedule(schedule)
    assert (form["size"], form["days"], form["at_time"], form["timezone"]) == (
        "1000",
        ["mon", "fri"],
        "22:40",
        "Asia/Seoul",
    )
