"""Exits on quotes: stop-loss triggers once, rules attach on fills, end-of-day liquidation."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from ordermanager.executions import ExecutionHandler
from ordermanager.exit_triggers import ExitWatcher
from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.factories import (
    all_orders,
    decision_of,
    fill,
    make_position,
    make_signal,
    put_quote,
    seed_account,
    stream,
)
from yquant import controls, exit_rules, keys
from yquant.messages import Market, OrderFilled, Side, SignalAction, SignalReceived
from yquant.settings import Settings, StrategySettings

KST = ZoneInfo("Asia/Seoul")


def watcher(
    manager: OrderManager, clock: ManualClock, strategies: dict[str, StrategySettings] | None = None
) -> ExitWatcher:
    return ExitWatcher(
        manager.client,
        accounts=["main"],
        strategies=strategies or {},
        clock=clock,
        quote_source=manager.quote_source,
        maxlen=10_000,
    )


async def exit_signals(client: aioredis.Redis) -> list[SignalReceived]:
    return [m for m in await stream(client, keys.SIGNALS_INTERNAL) if isinstance(m, SignalReceived)]


async def test_stop_loss_triggers_once_when_the_price_crosses_it(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, positions=[make_position(quantity=10)])
    await controls.set_exit_rule(
        redis_client, account="main", market=Market.KRX, ticker="005930", stop_loss_price=Decimal(68_000)
    )
    first, second = watcher(manager, clock), watcher(manager, clock)

    await put_quote(redis_client, clock, "005930", 68_500)
    assert await first.tick() == []
    await put_quote(redis_client, clock, "005930", 67_900)
    results = await asyncio.gather(first.tick(), second.tick())
    assert sorted(len(r) for r in results) == [0, 1]
    clock.advance(2)
    await put_quote(redis_client, clock, "005930", 67_000)  # still below: no second trigger
    assert await first.tick() == []
    assert await second.tick() == []

    [message] = await exit_signals(redis_client)
    assert (message.signal.action, message.signal.source) == (SignalAction.EXIT, "exit")
    assert "stop-loss: price 67900 at or below 68000" in (message.signal.comment or "")
    await manager.handle_signal(message.signal, message.correlation_id)
    [order] = await all_orders(redis_client)
    assert (order.side, order.quantity, order.origin) == (Side.SELL, 10, "exit")
    assert (await decision_of(redis_client, message.signal.signal_id))["status"] == "accepted"
    assert await controls.list_exit_rules(redis_client, "main") == []


async def test_a_filled_buy_gets_its_strategys_stop_and_a_closing_sell_removes_it(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    handler = ExecutionHandler(manager)
    await manager.handle_signal(make_signal(clock, strategy="guarded", quantity=Decimal(3)), "c")
    [buy] = await all_orders(redis_client)
    await handler.handle(await fill(redis_client, buy.client_order_id, 70_000))
    rule = await exit_rules.get_rule(redis_client, "main", Market.KRX, "005930")
    assert rule is not None
    assert (rule.stop_loss_price, rule.strategy) == (Decimal(67_900), "guarded")

    await seed_account(redis_client, positions=[make_position(quantity=3)])
    await manager.handle_signal(make_signal(clock, strategy="guarded", action=SignalAction.EXIT), "c")
    [sell] = [o for o in await all_orders(redis_client) if o.side is Side.SELL]
    event = await fill(redis_client, sell.client_order_id, 69_000)
    assert isinstance(event, OrderFilled)
    await handler.handle(event)
    assert await exit_rules.get_rule(redis_client, "main", Market.KRX, "005930") is None


async def test_alert_stop_and_target_prices_become_the_rule(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    signal = make_signal(clock, quantity=Decimal(1), stop_loss=Decimal(66_000), take_profit=Decimal(80_000))
    await manager.handle_signal(signal, "c")
    [buy] = await all_orders(redis_client)
    await ExecutionHandler(manager).handle(await fill(redis_client, buy.client_order_id, 70_000))
    rule = await exit_rules.get_rule(redis_client, "main", Market.KRX, "005930")
    assert rule is not None
    assert (rule.stop_loss_price, rule.take_profit_price, rule.strategy) == (Decimal(66_000), Decimal(80_000), "swing")


async def test_end_of_day_liquidation_sells_the_strategys_positions_once(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, om_settings: Settings
) -> None:
    await redis_client.hset(keys.position_attribution("main"), "KRX:005930", "intraday")
    await redis_client.hset(keys.position_attribution("main"), "KRX:000660", "swing")
    await seed_account(redis_client, positions=[make_position("005930", 5), make_position("000660", 2, 180_000)])
    strategies = {"intraday": StrategySettings(accounts=["main"], eod_liquidation=True, eod_minutes_before_close=10)}
    clock.set(datetime(2025, 6, 10, 15, 10, tzinfo=KST))
    assert await watcher(manager, clock, strategies).end_of_day() == []  # 15:10: not yet
    clock.set(datetime(2025, 6, 10, 15, 21, tzinfo=KST))
    [signal_id] = await watcher(manager, clock, strategies).end_of_day()
    assert await watcher(manager, clock, strategies).end_of_day() == []  # once per day
    [message] = await exit_signals(redis_client)
    assert message.signal.signal_id == signal_id
    await manager.handle_signal(message.signal, message.correlation_id)
    [order] = await all_orders(redis_client)
    assert (order.ticker, order.quantity, order.origin) == ("005930", 5, "liquidation")
