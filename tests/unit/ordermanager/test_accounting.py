"""What an account can still sell and spend, with our own orders since the last sync counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ordermanager.exposure import AccountView
from yquant.messages import Market, OrderState, OrderType, Position, Quote, Side
from yquant.orders import OrderRecord
from yquant.portfolio import AccountSnapshot
from yquant.quotes import is_fresh, parse_quote
from yquant.risk_limits import default_limits
from yquant.settings import Settings
from yquant.trading_state import TradingState, parse_state, stricter

SYNCED = datetime(2025, 6, 10, 1, 0, tzinfo=UTC)


def position(ticker: str = "005930", quantity: int = 10, price: int = 70_000) -> Position:
    return Position(
        market=Market.KRX,
        ticker=ticker,
        quantity=quantity,
        sellable_quantity=quantity,
        average_price=Decimal(price),
        current_price=Decimal(price),
        market_value=Decimal(price * quantity),
        unrealized_pnl=Decimal(0),
        return_pct=Decimal(0),
        currency="KRW",
    )


def order(side: Side, quantity: int, *, created: datetime, **fields: Any) -> OrderRecord:
    values: dict[str, Any] = {
        "client_order_id": f"yq-{side.value}-{quantity}-{created.timestamp()}",
        "account": "main",
        "market": Market.KRX,
        "ticker": "005930",
        "side": side,
        "quantity": quantity,
        "order_type": OrderType.MARKET,
        "strategy": "swing",
        "origin": "signal",
        "state": OrderState.ACCEPTED,
        "created_at": created,
        "updated_at": created,
    }
    values.update(fields)
    return OrderRecord.model_validate(values)


def view(orders: list[OrderRecord], estimates: dict[str, Decimal] | None = None) -> AccountView:
    snapshot = AccountSnapshot(
        account="main", cash={"KRW": Decimal(5_000_000)}, synced_at=SYNCED.isoformat(), positions=[position()]
    )
    return AccountView("main", snapshot, SYNCED, orders, estimates or {})


def test_sells_since_the_sync_reduce_what_can_be_sold() -> None:
    before = order(Side.SELL, 4, created=SYNCED - timedelta(seconds=5))  # KIS already excludes it
    after = order(Side.SELL, 3, created=SYNCED + timedelta(seconds=5))
    filled_after = order(
        Side.SELL, 5, created=SYNCED + timedelta(seconds=6), state=OrderState.CANCELLED, filled_quantity=2
    )
    assert view([before, after, filled_after]).sellable(Market.KRX, "005930") == 10 - 3 - 2


def test_pending_buys_use_the_sizing_price_for_market_orders() -> None:
    pending = order(Side.BUY, 10, created=SYNCED + timedelta(seconds=1))
    limit = order(
        Side.BUY,
        2,
        created=SYNCED - timedelta(seconds=1),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(50_000),
        ticker="000660",
    )
    filled = order(
        Side.BUY,
        1,
        created=SYNCED - timedelta(seconds=9),
        state=OrderState.FILLED,
        filled_quantity=1,
        average_price=Decimal(71_000),
        updated_at=SYNCED + timedelta(seconds=1),
    )
    seen = view([pending, limit, filled], {pending.client_order_id: Decimal(70_000)})
    assert seen.pending_buys("KRW") == Decimal(700_000 + 100_000 + 71_000)
    assert seen.pending_buys("KRW", Market.KRX, "000660") == Decimal(100_000)
    exposure = seen.buy_exposure(Market.KRX, "005930", Decimal(72_000))
    assert exposure.cash == Decimal(5_000_000)
    assert exposure.symbol_value == Decimal(720_000 + 700_000 + 71_000)


def test_cash_in_a_currency_the_broker_did_not_report_is_unknown_not_zero() -> None:
    exposure = view([]).buy_exposure(Market.NASD, "AAPL", Decimal(190))
    assert exposure.cash is None


def test_trading_state_parsing_and_strictness() -> None:
    assert parse_state(" halted ") is TradingState.HALTED
    assert stricter(TradingState.REDUCING, TradingState.ACTIVE) is TradingState.REDUCING
    assert stricter(TradingState.REDUCING, TradingState.HALTED) is TradingState.HALTED


def test_quote_parsing_refuses_errors_and_judges_freshness() -> None:
    quote = Quote(market=Market.KRX, ticker="005930", price=Decimal(70_000), currency="KRW", as_of=SYNCED)
    assert parse_quote(quote.model_dump_json()) == quote
    assert parse_quote(b'{"error": "unknown ticker"}') is None
    assert parse_quote(b"not json") is None
    assert is_fresh(quote, SYNCED + timedelta(seconds=10), 15)
    assert not is_fresh(quote, SYNCED + timedelta(seconds=20), 15)


def test_default_limits_come_from_settings() -> None:
    settings = Settings.model_validate({"risk": {"max_order_value": {"krw": "5"}, "max_orders_per_minute": 3}})
    limits = default_limits(settings)
    assert limits.max_order_value == {"KRW": Decimal(5)}
    assert limits.max_orders_per_minute == 3
    assert limits.max_signal_age_s == settings.ordermanager.max_signal_age_s
