"""US market orders are priced by the order manager (ADR 0007), and an account is only sent the
markets it trades: both decided before an order exists, so the signal log says why."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from ordermanager import bootstrap
from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.conftest import account_settings
from tests.integration.ordermanager.factories import all_orders, decision_of, make_signal
from yquant import keys, portfolio
from yquant.messages import AccountSynced, Market, OrderType, Position, Quote, SignalAction
from yquant.settings import Settings, StrategySettings


@pytest.fixture
def us_clock(clock: ManualClock) -> ManualClock:
    clock.advance(13 * 3600)  # 23:00 in Seoul: 10:00 in New York, the US session is open
    return clock


async def seed_usd(client: aioredis.Redis, cash: int, account: str = "main") -> None:
    event = AccountSynced(account=account, cash={"USD": Decimal(cash)}, positions=[])
    await portfolio.store_snapshot(client, event, 10_000)


async def put_us_quote(client: aioredis.Redis, as_of: ManualClock, price: str, age_s: float = 0) -> None:
    quote = Quote(
        market=Market.NASD,
        ticker="MSFT",
        price=Decimal(price),
        currency="USD",
        as_of=as_of.now() - timedelta(seconds=age_s),
    )
    await client.set(keys.quote("NASD", "MSFT"), quote.model_dump_json(), ex=60)


async def test_a_us_market_buy_is_created_with_its_marketable_limit_from_the_quote(
    manager: OrderManager, redis_client: aioredis.Redis, us_clock: ManualClock
) -> None:
    await seed_usd(redis_client, 100_000)
    await put_us_quote(redis_client, us_clock, "410.00")
    # The alert's own price is older than the quote: the limit comes from the quote.
    signal = make_signal(us_clock, market=Market.NASD, ticker="MSFT", quantity=Decimal(2), price=Decimal(400))
    await manager.handle_signal(signal, "c1")
    [order] = await all_orders(redis_client)
    assert (order.order_type, order.limit_price, order.quantity) == (OrderType.MARKET, Decimal("414.10"), 2)
    assert (await decision_of(redis_client, signal.signal_id))["status"] == "accepted"


async def test_a_us_market_sell_is_priced_below_the_quote(
    manager: OrderManager, redis_client: aioredis.Redis, us_clock: ManualClock
) -> None:
    held = Position(
        market=Market.NASD, ticker="MSFT", quantity=3, sellable_quantity=3, average_price=Decimal(400),
        current_price=Decimal(410), market_value=Decimal(1230), unrealized_pnl=Decimal(30),
        return_pct=Decimal(2), currency="USD",
    )  # fmt: skip
    event = AccountSynced(account="main", cash={"USD": Decimal(1000)}, positions=[held])
    await portfolio.store_snapshot(redis_client, event, 10_000)
    await put_us_quote(redis_client, us_clock, "410.00")
    signal = make_signal(us_clock, market=Market.NASD, ticker="MSFT", action=SignalAction.EXIT, price=None)
    await manager.handle_signal(signal, "c1")
    [order] = await all_orders(redis_client)
    assert (order.order_type, order.limit_price, order.quantity) == (OrderType.MARKET, Decimal("405.90"), 3)


async def test_the_cash_check_uses_the_marketable_limit_not_the_quote(
    manager: OrderManager, redis_client: aioredis.Redis, us_clock: ManualClock
) -> None:
    await seed_usd(redis_client, 820)  # two at the quote (820.00), not two at the limit (828.20)
    await put_us_quote(redis_client, us_clock, "410.00")
    signal = make_signal(us_clock, market=Market.NASD, ticker="MSFT", quantity=Decimal(2), price=None)
    await manager.handle_signal(signal, "c1")
    assert await all_orders(redis_client) == []
    decision = await decision_of(redis_client, signal.signal_id)
    assert decision["reason_code"] == "INSUFFICIENT_CASH", decision


async def test_without_a_recent_quote_a_us_market_order_is_denied_before_it_exists(
    manager: OrderManager, redis_client: aioredis.Redis, us_clock: ManualClock
) -> None:
    await seed_usd(redis_client, 100_000)
    # Fresh enough to size on (15 s), too old to price on (5 s); no gateway answers the request.
    await put_us_quote(redis_client, us_clock, "410.00", age_s=10)
    signal = make_signal(us_clock, market=Market.NASD, ticker="MSFT", quantity=Decimal(2), price=Decimal(409))
    await manager.handle_signal(signal, "c1")
    assert await all_orders(redis_client) == []
    decision = await decision_of(redis_client, signal.signal_id)
    assert decision["reason_code"] == "NO_PRICE"
    assert "no recent quote" in decision["reason"]
    assert await redis_client.xlen(keys.QUERIES) >= 1  # the gateway was asked


async def test_an_account_that_does_not_trade_the_market_is_denied_before_an_order_exists(
    redis_client: aioredis.Redis, om_settings: Settings, us_clock: ManualClock
) -> None:
    settings = om_settings.model_copy(
        update={
            "accounts": {**om_settings.accounts, "krxonly": account_settings("50000003").model_copy(
                update={"markets": ["KRX"]}
            )},
            "strategies": {**om_settings.strategies, "korea": StrategySettings(accounts=["krxonly", "main"])},
        }
    )  # fmt: skip
    manager = bootstrap.build(redis_client, settings, us_clock).manager
    await seed_usd(redis_client, 100_000)
    await seed_usd(redis_client, 100_000, account="krxonly")
    await put_us_quote(redis_client, us_clock, "410.00")
    signal = make_signal(us_clock, strategy="korea", market=Market.NASD, ticker="MSFT", quantity=Decimal(1))
    await manager.handle_signal(signal, "c1")
    [order] = await all_orders(redis_client)
    assert order.account == "main"
    decision = await decision_of(redis_client, signal.signal_id)
    assert decision["status"] == "accepted"
    assert "krxonly: not traded: account 'krxonly' does not trade NASD" in decision["note"], decision
