"""Reverse: the exit goes first, the entry only after the exit's fill (executions consumer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from ordermanager.executions import ExecutionHandler
from ordermanager.placement import client_order_id
from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.factories import (
    all_orders,
    decision_of,
    eventually,
    fill,
    make_position,
    make_signal,
    reject,
    seed_account,
    stream,
)
from yquant import controls, keys, orders
from yquant.bus import Consumer, ensure_group
from yquant.messages import OrderFilled, Side, SignalAction, SubmitOrder
from yquant.settings import Settings
from yquant.trading_state import TradingState


@pytest.fixture
async def executions(
    manager: OrderManager, redis_client: aioredis.Redis, om_settings: Settings
) -> AsyncIterator[Consumer]:
    await ensure_group(redis_client, keys.EXECUTIONS, keys.GROUP_ORDERMANAGER_EXECUTIONS, start_id="$")
    consumer = Consumer(
        redis_client,
        stream=keys.EXECUTIONS,
        group=keys.GROUP_ORDERMANAGER_EXECUTIONS,
        name="om-1",
        handler=ExecutionHandler(manager).handle,
        settings=om_settings.bus,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    yield consumer
    stop.set()
    await task


async def test_reverse_sends_the_entry_only_after_the_exit_filled(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, executions: Consumer
) -> None:
    await seed_account(redis_client, positions=[make_position(quantity=10)])
    signal = make_signal(clock, action=SignalAction.REVERSE, quantity=Decimal(4))
    await manager.handle_signal(signal, "c")
    exit_id = client_order_id(signal.signal_id, "main", "exit")
    entry_id = client_order_id(signal.signal_id, "main", "entry")
    [exit_order] = await all_orders(redis_client)
    assert (exit_order.client_order_id, exit_order.side, exit_order.quantity) == (exit_id, Side.SELL, 10)
    assert "entry waits for the exit's fill" in (await decision_of(redis_client, signal.signal_id))["note"]
    await asyncio.sleep(0.2)
    assert await orders.get_order(redis_client, entry_id) is None  # nothing before the fill

    await fill(redis_client, exit_id, 70_000)

    async def entry_exists() -> bool:
        return await orders.get_order(redis_client, entry_id) is not None

    await eventually(entry_exists)
    filled = await orders.get_order(redis_client, exit_id)
    entry = await orders.get_order(redis_client, entry_id)
    assert filled is not None
    assert entry is not None
    assert (entry.side, entry.quantity) == (Side.BUY, 4)
    assert entry.created_at >= filled.updated_at
    commands = [m for m in await stream(redis_client, keys.ORDERS) if isinstance(m, SubmitOrder)]
    assert [c.client_order_id for c in commands] == [exit_id, entry_id]
    fills = [m for m in await stream(redis_client, keys.EXECUTIONS) if isinstance(m, OrderFilled)]
    assert [f.client_order_id for f in fills] == [exit_id]
    decision = await decision_of(redis_client, signal.signal_id)
    assert entry_id in decision["orders"]
    assert "entry sent after the exit filled" in decision["note"]
    assert not await redis_client.exists(keys.reverse_entry(exit_id))


async def test_rejected_exit_drops_the_entry_with_a_reason(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, executions: Consumer
) -> None:
    await seed_account(redis_client, positions=[make_position(quantity=10)])
    signal = make_signal(clock, action=SignalAction.REVERSE, quantity=Decimal(4))
    await manager.handle_signal(signal, "c")
    exit_id = client_order_id(signal.signal_id, "main", "exit")
    await reject(redis_client, exit_id, "not enough shares")

    async def dropped() -> bool:
        return not await redis_client.exists(keys.reverse_entry(exit_id))

    await eventually(dropped)
    assert len(await all_orders(redis_client)) == 1
    note = (await decision_of(redis_client, signal.signal_id))["note"]
    assert "entry not sent: the exit order was rejected: not enough shares" in note


async def test_reverse_without_a_position_enters_at_once(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    signal = make_signal(clock, action=SignalAction.REVERSE, quantity=Decimal(2))
    await manager.handle_signal(signal, "c")
    [entry] = await all_orders(redis_client)
    assert (entry.client_order_id, entry.side) == (client_order_id(signal.signal_id, "main", "entry"), Side.BUY)


async def test_reverse_while_reducing_only_exits(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, positions=[make_position(quantity=10)])
    await controls.set_trading_state(redis_client, TradingState.REDUCING)
    signal = make_signal(clock, action=SignalAction.REVERSE, quantity=Decimal(2))
    await manager.handle_signal(signal, "c")
    [exit_order] = await all_orders(redis_client)
    assert exit_order.side is Side.SELL
    assert "entry skipped (trading is REDUCING)" in (await decision_of(redis_client, signal.signal_id))["note"]
    assert not await redis_client.exists(keys.reverse_entry(exit_order.client_order_id))
