"""A buy resting at KIS that yQuant did not place (one typed into KIS's app, say) holds cash that
the account's cash figure still shows (KIS takes it at the fill). The gateway lists it with the
account (``portfolio.store_open_order_check``); the order manager's cash check counts it, so a
signal does not spend the same won twice and meet KIS's refusal."""

from __future__ import annotations

from decimal import Decimal

import redis.asyncio as aioredis

from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.factories import all_orders, decision_of, make_signal, seed_account
from yquant import portfolio
from yquant.portfolio import UnownedOrder


def outside(side: str, quantity: int, price: int, *, market: str = "KRX", ticker: str = "000660") -> UnownedOrder:
    return UnownedOrder(
        market=market,
        ticker=ticker,
        side=side,
        remaining_quantity=quantity,
        price=Decimal(price),
        broker_order_id=f"9{quantity}{price}",
    )


async def test_a_buy_resting_at_kis_outside_yquant_holds_cash_the_signal_cannot_spend(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, cash=1_000_000)
    await portfolio.store_open_order_check(redis_client, "main", [outside("buy", 5, 100_000)])  # 500,000 held
    signal = make_signal(clock, quantity=Decimal(10))  # 10 x 70,000 = 700,000
    await manager.handle_signal(signal, "c1")

    assert await all_orders(redis_client) == []
    decision = await decision_of(redis_client, signal.signal_id)
    assert decision["reason_code"] == "INSUFFICIENT_CASH"
    assert "KRW 500,000 is available" in decision["reason"]
    assert "KRW 500,000 of it by buys placed outside yQuant" in decision["reason"]


async def test_outside_sells_and_buys_in_another_currency_leave_the_cash_alone(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, cash=1_000_000)
    unowned = [outside("sell", 5, 100_000), outside("buy", 100, 500, market="US", ticker="AAPL")]
    await portfolio.store_open_order_check(redis_client, "main", unowned)
    signal = make_signal(clock, quantity=Decimal(10))
    await manager.handle_signal(signal, "c1")

    [order] = await all_orders(redis_client)
    assert order.quantity == 10
    assert (await decision_of(redis_client, signal.signal_id))["status"] == "accepted"


async def test_once_kis_no_longer_lists_the_outside_buy_its_cash_is_free_again(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, cash=1_000_000)
    await portfolio.store_open_order_check(redis_client, "main", [outside("buy", 5, 100_000)])
    first = make_signal(clock, quantity=Decimal(10))
    await manager.handle_signal(first, "c1")
    assert (await decision_of(redis_client, first.signal_id))["status"] == "denied"

    await portfolio.store_open_order_check(redis_client, "main", [])  # cancelled in KIS's app
    second = make_signal(clock, quantity=Decimal(10))
    await manager.handle_signal(second, "c2")
    assert (await decision_of(redis_client, second.signal_id))["status"] == "accepted"
