"""Each pre-trade check on its own: a denial with a readable reason, or None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ordermanager import denials, risk
from ordermanager.risk import BuyExposure
from yquant.messages import Market, Position, SignalSource
from yquant.portfolio import AccountSnapshot
from yquant.risk_limits import RiskLimits
from yquant.trading_state import TradingState

MONDAY_10_KST = datetime(2025, 6, 9, 1, 0, tzinfo=UTC)


def limits(**fields: object) -> RiskLimits:
    return RiskLimits.model_validate(fields)


def exposure(**fields: object) -> BuyExposure:
    values: dict[str, object] = {
        "cash": Decimal(10_000_000),
        "pending_buys": Decimal(0),
        "symbol_value": Decimal(0),
        "total_value": Decimal(0),
    }
    values.update(fields)
    return BuyExposure(**values)  # type: ignore[arg-type]


def test_deny_list_wins_and_accepts_both_spellings() -> None:
    rules = limits(denied_symbols=["krx:005930"])
    denial = risk.check_symbol(rules, Market.KRX, "005930")
    assert denial is not None
    assert denial.code == denials.SYMBOL_DENIED
    assert risk.check_symbol(limits(denied_symbols=["AAPL"]), Market.NASD, "AAPL") is not None


def test_allow_list_refuses_everything_else() -> None:
    rules = limits(allowed_symbols=["005930"])
    assert risk.check_symbol(rules, Market.KRX, "005930") is None
    denial = risk.check_symbol(rules, Market.KRX, "000660")
    assert denial is not None
    assert denial.code == denials.SYMBOL_NOT_ALLOWED


def test_stale_signal_is_denied_with_its_age() -> None:
    fired = MONDAY_10_KST - timedelta(seconds=600)
    denial = risk.check_stale(limits(max_signal_age_s=120), fired, MONDAY_10_KST)
    assert denial is not None
    assert denial.code == denials.STALE
    assert "600s old" in denial.reason
    assert risk.check_stale(limits(), MONDAY_10_KST - timedelta(seconds=5), MONDAY_10_KST) is None
    assert risk.check_stale(limits(), None, MONDAY_10_KST) is None


def test_market_closed_names_the_next_open() -> None:
    saturday = datetime(2025, 6, 7, 1, 0, tzinfo=UTC)
    denial = risk.check_market_open(Market.KRX, saturday)
    assert denial is not None
    assert denial.code == denials.MARKET_CLOSED
    assert "2025-06-09T09:00:00+09:00" in denial.reason
    assert risk.check_market_open(Market.KRX, MONDAY_10_KST) is None
    assert risk.check_market_open(Market.KRX, saturday, always_open=True) is None


@pytest.mark.parametrize(
    ("state", "reducing", "source", "code"),
    [
        (TradingState.ACTIVE, False, "webhook", None),
        (TradingState.REDUCING, True, "webhook", None),
        (TradingState.REDUCING, False, "webhook", denials.TRADING_REDUCING),
        (TradingState.HALTED, True, "webhook", denials.TRADING_HALTED),
        (TradingState.HALTED, True, "exit", denials.TRADING_HALTED),
        (TradingState.HALTED, True, "flatten", None),
        (TradingState.HALTED, True, "liquidation", None),
    ],
)
def test_trading_state(state: TradingState, reducing: bool, source: str, code: str | None) -> None:
    denial = risk.check_trading_state(state, "global", reducing=reducing, source=SignalSource(source))
    assert (denial.code if denial else None) == code


def test_order_value_limit_per_currency() -> None:
    rules = limits(max_order_value={"KRW": 1_000_000})
    denial = risk.check_order_value(rules, "KRW", Decimal(1_400_000))
    assert denial is not None
    assert "KRW 1,400,000" in denial.reason
    assert risk.check_order_value(rules, "USD", Decimal(10**9)) is None  # no USD limit


def test_position_value_limit_counts_what_is_held_and_pending() -> None:
    rules = limits(max_position_value={"KRW": 5_000_000})
    seen = exposure(symbol_value=Decimal(4_500_000))
    denial = risk.check_buy(rules, "KRW", Decimal(700_000), seen)
    assert denial is not None
    assert denial.code == denials.MAX_POSITION_VALUE


def test_total_exposure_limit() -> None:
    rules = limits(max_total_exposure={"KRW": 20_000_000})
    denial = risk.check_buy(rules, "KRW", Decimal(1_000_000), exposure(total_value=Decimal(19_500_000)))
    assert denial is not None
    assert denial.code == denials.MAX_TOTAL_EXPOSURE


def test_cash_check_includes_pending_buys() -> None:
    seen = exposure(cash=Decimal(1_000_000), pending_buys=Decimal(700_000))
    denial = risk.check_cash(limits(), "KRW", seen, Decimal(350_000))
    assert denial is not None
    assert denial.code == denials.INSUFFICIENT_CASH
    assert "KRW 300,000 is available" in denial.reason
    assert risk.check_cash(limits(), "KRW", seen, Decimal(300_000)) is None
    assert risk.check_cash(limits(check_cash=False), "KRW", seen, Decimal(10**9)) is None


def test_cash_unknown_without_snapshot_is_denied() -> None:
    denial = risk.check_cash(limits(), "KRW", exposure(cash=None), Decimal(1))
    assert denial is not None
    assert denial.code == denials.NO_ACCOUNT_SNAPSHOT


def test_daily_loss_limit() -> None:
    rules = limits(max_daily_loss={"KRW": 500_000})
    loss = risk.daily_loss(Decimal(10_000_000), Decimal(9_400_000))
    denial = risk.check_daily_loss(rules, "KRW", loss)
    assert denial is not None
    assert "REDUCING" in denial.reason
    assert risk.daily_loss(Decimal(10_000_000), Decimal(11_000_000)) == 0
    assert risk.daily_loss(None, Decimal(1)) == 0
    assert risk.check_daily_loss(rules, "KRW", Decimal(499_999)) is None


def test_equity_is_cash_plus_positions_in_the_currency() -> None:
    def position(ticker: str, market: Market, value: int, currency: str) -> Position:
        return Position(
            market=market,
            ticker=ticker,
            quantity=1,
            sellable_quantity=1,
            average_price=Decimal(value),
            current_price=Decimal(value),
            market_value=Decimal(value),
            unrealized_pnl=Decimal(0),
            return_pct=Decimal(0),
            currency=currency,
        )

    snapshot = AccountSnapshot(
        account="main",
        cash={"KRW": Decimal(1_000_000)},
        synced_at="",
        positions=[position("005930", Market.KRX, 70_000, "KRW"), position("AAPL", Market.NASD, 190, "USD")],
    )
    assert risk.equity_of(snapshot, "KRW") == Decimal(1_070_000)
    assert risk.equity_of(snapshot, "USD") == Decimal(190)


def test_limits_validate_currency_and_symbols() -> None:
    rules = limits(max_order_value={"krw": 5}, allowed_symbols=[" aapl "])
    assert rules.max_order_value == {"KRW": Decimal(5)}
    assert rules.allowed_symbols == ["AAPL"]
    with pytest.raises(ValueError, match="currency"):
        limits(max_order_value={"EUR": 5})
    with pytest.raises(ValueError, match="negative"):
        limits(max_daily_loss={"KRW": -1})
