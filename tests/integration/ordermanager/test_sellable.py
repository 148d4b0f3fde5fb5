"""A sell is sized from what KIS says can be sold now (inquire-balance's ord_psbl_qty, stored by the
gateway's sync as ``sellable_quantity``), not from the shares held: shares already committed to
another open sell at KIS (one placed in KIS's app, say) are not sold twice, and a sell with nothing
left to sell is refused here, before it reaches KIS."""

from __future__ import annotations

from decimal import Decimal

import redis.asyncio as aioredis

from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.factories import (
    all_orders,
    decision_of,
    make_position,
    make_signal,
    seed_account,
)
from yquant.messages import Side, SignalAction


async def test_a_sell_is_sized_to_the_shares_kis_says_are_sellable_not_to_those_held(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    # 10 held, 6 of them committed to a sell resting at KIS: 4 can be sold.
    await seed_account(redis_client, positions=[make_position(quantity=10, sellable=4)])
    signal = make_signal(clock, action=SignalAction.SELL, quantity=Decimal(10))
    await manager.handle_signal(signal, "c1")

    [order] = await all_orders(redis_client)
    assert (order.side, order.quantity) == (Side.SELL, 4)
    assert (await decision_of(redis_client, signal.signal_id))["status"] == "accepted"


async def test_a_sell_of_shares_all_committed_to_another_open_sell_is_refused_before_kis(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, positions=[make_position(quantity=10, sellable=0)])
    signal = make_signal(clock, action=SignalAction.SELL, quantity=Decimal(5))
    await manager.handle_signal(signal, "c1")

    assert await all_orders(redis_client) == []  # nothing for the gateway to send
    decision = await decision_of(redis_client, signal.signal_id)
    assert (decision["status"], decision["reason_code"]) == ("denied", "NO_POSITION")
    assert decision["reason"] == "main: nothing to sell in KRX:005930: the 10 shares held are committed to open sells"
