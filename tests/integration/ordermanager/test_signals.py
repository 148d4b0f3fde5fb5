"""Signals through the order manager on a real Valkey: sizing, each risk check, the decision log."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import orjson
import redis.asyncio as aioredis

from ordermanager.executions import ExecutionHandler
from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.factories import (
    all_orders,
    decision_of,
    make_position,
    make_signal,
    put_quote,
    seed_account,
    stream,
)
from tests.replies import xrange
from yquant import controls, keys
from yquant.bus import Consumer, publish
from yquant.messages import (
    AccountSynced,
    CancelOrder,
    OrderType,
    QuantityType,
    Side,
    SignalAccepted,
    SignalAction,
    SignalDenied,
    SignalReceived,
    SignalSource,
    SubmitOrder,
    decode,
)
from yquant.settings import Settings
from yquant.trading_state import TradingState, get_trading_state


async def test_sell_larger_than_the_holding_is_sized_to_the_holding(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, positions=[make_position(quantity=5)])
    signal = make_signal(clock, action=SignalAction.SELL, quantity=Decimal(50))
    await manager.handle_signal(signal, "c1")
    [order] = await all_orders(redis_client)
    assert (order.side, order.quantity, order.reduce_only) == (Side.SELL, 5, True)
    assert (await decision_of(redis_client, signal.signal_id))["status"] == "accepted"


async def test_each_decision_reaches_the_decision_stream_under_its_type(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    # The notifier picks what to announce by the entry's ``type`` field, before it decodes ``data``.
    await seed_account(redis_client)
    accepted = make_signal(clock, quantity=Decimal(1))
    stale = make_signal(clock, quantity=Decimal(1), fired_at=clock.now() - timedelta(minutes=10))
    await manager.handle_signal(accepted, "c1")
    await manager.handle_signal(stale, "c2")
    entries = await xrange(redis_client, keys.DECISIONS)
    assert [fields[b"type"] for _id, fields in entries] == [b"SignalAccepted", b"SignalDenied"]
    first, second = (decode(fields[b"data"]) for _id, fields in entries)
    assert isinstance(first, SignalAccepted)
    assert first.signal_id == accepted.signal_id
    assert isinstance(second, SignalDenied)
    assert (second.signal_id, second.reason_code) == (stale.signal_id, "STALE")


async def test_stale_alert_is_denied_with_a_reason_visible_in_yquant_signals(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, valkey_url: str
) -> None:
    await seed_account(redis_client)
    signal = make_signal(clock, fired_at=clock.now() - timedelta(minutes=10))
    await manager.handle_signal(signal, "c1")
    assert await all_orders(redis_client) == []
    env = {k: v for k, v in os.environ.items() if not k.startswith("YQ_")}
    env["YQ_VALKEY__URL"] = valkey_url
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "yquant", "signals", "--json"],
        env=env,
        capture_output=True,
        timeout=30,
        check=True,
    )
    [row] = orjson.loads(done.stdout)
    assert row["signal_id"] == signal.signal_id
    assert (row["status"], row["reason_code"]) == ("denied", "STALE")
    assert "600s old" in row["reason"]


async def test_amount_strategy_sizes_from_a_fresh_quote(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    await put_quote(redis_client, clock, "005930", 70_000)
    await manager.handle_signal(make_signal(clock, strategy="amount", price=None), "c1")
    [order] = await all_orders(redis_client)
    assert order.quantity == 14  # 1,000,000 / 70,000


async def test_no_price_anywhere_is_denied_never_assumed(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    clock.advance(3600)  # the cached quote (if any) would be stale; none is cached here anyway
    signal = make_signal(clock, strategy="amount", price=None)
    await manager.handle_signal(signal, "c1")
    decision = await decision_of(redis_client, signal.signal_id)
    assert decision["reason_code"] == "NO_PRICE"
    # The silent gateway was asked again within the wait before the signal was denied.
    assert await redis_client.xlen(keys.QUERIES) >= 2
    assert "no fresh quote" in decision["reason"]


async def test_cash_check_counts_pending_buys(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, cash=1_000_000)
    first = make_signal(clock, quantity=Decimal(10))
    second = make_signal(clock, quantity=Decimal(5))
    await manager.handle_signal(first, "c1")
    await manager.handle_signal(second, "c2")
    assert (await decision_of(redis_client, first.signal_id))["status"] == "accepted"
    denied = await decision_of(redis_client, second.signal_id)
    assert denied["reason_code"] == "INSUFFICIENT_CASH"
    assert "KRW 300,000 is available" in denied["reason"]


async def test_order_value_limit_from_a_runtime_override(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, om_settings: Settings
) -> None:
    await seed_account(redis_client)
    await controls.set_risk_limits(redis_client, om_settings, {"max_order_value": {"KRW": "500000"}})
    signal = make_signal(clock, quantity=Decimal(10))
    await manager.handle_signal(signal, "c1")
    assert (await decision_of(redis_client, signal.signal_id))["reason_code"] == "MAX_ORDER_VALUE"


async def test_duplicate_window_denies_the_same_intent_but_not_a_redelivery(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, om_settings: Settings
) -> None:
    await seed_account(redis_client)
    await controls.set_risk_limits(redis_client, om_settings, {"duplicate_window_s": 5})
    first = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(first, "c1")
    await manager.handle_signal(first, "c1")  # redelivered: same order, no denial
    again = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(again, "c2")
    assert len(await all_orders(redis_client)) == 1
    assert (await decision_of(redis_client, first.signal_id))["status"] == "accepted"
    assert (await decision_of(redis_client, again.signal_id))["reason_code"] == "DUPLICATE"
    assert len([m for m in await stream(redis_client, keys.ORDERS) if isinstance(m, SubmitOrder)]) == 1


async def test_order_rate_limit_per_account(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, om_settings: Settings
) -> None:
    await seed_account(redis_client)
    await controls.set_risk_limits(redis_client, om_settings, {"max_orders_per_minute": 2})
    signals = [make_signal(clock, quantity=Decimal(1), ticker=t) for t in ("005930", "000660", "035420")]
    for signal in signals:
        await manager.handle_signal(signal, "c")
    assert (await decision_of(redis_client, signals[2].signal_id))["reason_code"] == "RATE_LIMITED"
    clock.advance(61)
    late = make_signal(clock, quantity=Decimal(1), ticker="035720")
    await manager.handle_signal(late, "c")
    assert (await decision_of(redis_client, late.signal_id))["status"] == "accepted"


async def test_daily_loss_limit_turns_the_account_to_reducing(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, om_settings: Settings
) -> None:
    await controls.set_risk_limits(redis_client, om_settings, {"max_daily_loss": {"KRW": 500_000}})
    await seed_account(redis_client, cash=9_300_000, positions=[make_position(quantity=10)])
    await manager.handle_signal(make_signal(clock, quantity=Decimal(1)), "c")  # baseline: 10,000,000
    await seed_account(redis_client, cash=9_300_000, positions=[make_position(quantity=10, price=10_000)])
    losing = make_signal(clock, quantity=Decimal(1), ticker="000660")
    await manager.handle_signal(losing, "c")
    assert (await decision_of(redis_client, losing.signal_id))["reason_code"] == "DAILY_LOSS"
    assert await get_trading_state(redis_client, "main") is TradingState.REDUCING
    selling = make_signal(clock, action=SignalAction.SELL, quantity=Decimal(2))
    await manager.handle_signal(selling, "c")
    assert (await decision_of(redis_client, selling.signal_id))["status"] == "accepted"


async def test_an_account_sync_showing_the_daily_loss_turns_the_account_to_reducing(
    manager: OrderManager, redis_client: aioredis.Redis, om_settings: Settings
) -> None:
    await controls.set_risk_limits(redis_client, om_settings, {"max_daily_loss": {"KRW": 500_000}})
    handler = ExecutionHandler(manager)
    await handler.handle(AccountSynced(account="main", cash={"KRW": Decimal(10_000_000)}, positions=[]))
    await handler.handle(AccountSynced(account="main", cash={"KRW": Decimal(9_600_000)}, positions=[]))
    assert await get_trading_state(redis_client, "main") is TradingState.ACTIVE
    await handler.handle(AccountSynced(account="main", cash={"KRW": Decimal(9_500_000)}, positions=[]))
    assert await get_trading_state(redis_client, "main") is TradingState.REDUCING


async def test_symbol_deny_list_blocks_buys_not_sells(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, om_settings: Settings
) -> None:
    await seed_account(redis_client, positions=[make_position(quantity=3)])
    await controls.set_risk_limits(redis_client, om_settings, {"denied_symbols": ["KRX:005930"]})
    buying = make_signal(clock, quantity=Decimal(1))
    selling = make_signal(clock, action=SignalAction.EXIT)
    await manager.handle_signal(buying, "c")
    await manager.handle_signal(selling, "c")
    assert (await decision_of(redis_client, buying.signal_id))["reason_code"] == "SYMBOL_DENIED"
    assert (await decision_of(redis_client, selling.signal_id))["status"] == "accepted"


async def test_closed_market_and_unknown_strategy_are_denied(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    unknown = make_signal(clock, strategy="nope")
    await manager.handle_signal(unknown, "c")
    assert (await decision_of(redis_client, unknown.signal_id))["reason_code"] == "UNKNOWN_STRATEGY"
    clock.advance(4 * 86_400)  # Saturday
    weekend = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(weekend, "c")
    decision = await decision_of(redis_client, weekend.signal_id)
    assert decision["reason_code"] == "MARKET_CLOSED"
    assert "next open 2025-06-16T09:00:00+09:00" in decision["reason"]


async def test_limit_price_is_rounded_to_the_tick(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    signal = make_signal(clock, quantity=Decimal(1), order_type=OrderType.LIMIT, price=Decimal(70_090))
    await manager.handle_signal(signal, "c")
    [order] = await all_orders(redis_client)
    assert (order.order_type, order.limit_price) == (OrderType.LIMIT, Decimal(70_000))


async def test_each_account_of_a_strategy_is_decided_on_its_own(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, "main")  # isa has never been synced
    signal = make_signal(clock, strategy="both", quantity=Decimal(1))
    await manager.handle_signal(signal, "c")
    [order] = await all_orders(redis_client)
    assert order.account == "main"
    decision = await decision_of(redis_client, signal.signal_id)
    assert decision["status"] == "accepted"
    assert "isa: not traded: KRW cash is unknown: no account snapshot yet" in decision["note"]


async def test_cancel_signal_cancels_the_tickers_open_orders(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    nothing = make_signal(clock, action=SignalAction.CANCEL)
    await manager.handle_signal(nothing, "c")
    assert (await decision_of(redis_client, nothing.signal_id))["reason_code"] == "NOTHING_TO_CANCEL"
    await manager.handle_signal(make_signal(clock, quantity=Decimal(1)), "c")
    [order] = await all_orders(redis_client)
    cancel = make_signal(clock, action=SignalAction.CANCEL)
    await manager.handle_signal(cancel, "c")
    cancels = [m for m in await stream(redis_client, keys.ORDERS) if isinstance(m, CancelOrder)]
    assert [c.client_order_id for c in cancels] == [order.client_order_id]
    assert (await decision_of(redis_client, cancel.signal_id))["status"] == "accepted"


async def test_signals_from_the_stream_are_decided_in_arrival_order(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, om_settings: Settings
) -> None:
    await seed_account(redis_client, positions=[make_position(quantity=4)])
    sells = [make_signal(clock, action=SignalAction.SELL, quantity=Decimal(3)) for _ in range(2)]
    buy = make_signal(clock, quantity=Decimal(2), quantity_type=QuantityType.FIXED)
    for signal in [*sells, buy]:
        await publish(redis_client, keys.SIGNALS_WEBHOOK, SignalReceived(signal=signal))
    consumer = Consumer(
        redis_client,
        stream=keys.SIGNALS_WEBHOOK,
        group=keys.GROUP_ORDERMANAGER,
        name="om-1",
        handler=manager.handle,
        settings=om_settings.bus,
        partition_key=manager.partition_key,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        for _ in range(250):
            if (await decision_of(redis_client, buy.signal_id)).get("status") in ("accepted", "denied"):
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
    quantities = [(o.side, o.quantity) for o in sorted(await all_orders(redis_client), key=lambda o: o.created_at)]
    assert quantities == [(Side.SELL, 3), (Side.SELL, 1), (Side.BUY, 2)]  # the second sell gets what is left


async def test_a_signal_claiming_a_source_its_stream_may_not_carry_is_denied(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    # A compromised webhook host can write only the webhook stream; a "flatten" written there
    # must not sell through a HALT, and the refusal is visible in the decision log.
    await seed_account(redis_client, positions=[make_position(quantity=5)])
    await controls.set_trading_state(redis_client, TradingState.HALTED)
    forged = make_signal(clock, action=SignalAction.SELL, quantity=Decimal(3), source=SignalSource.FLATTEN)
    await manager.handle_from(keys.SIGNALS_WEBHOOK, SignalReceived(signal=forged))
    assert await all_orders(redis_client) == []
    decision = await decision_of(redis_client, forged.signal_id)
    assert (decision["status"], decision["reason_code"]) == ("denied", "FORGED_SOURCE")
    # The same flatten on the dashboard's stream is what the operator's button sends: it passes.
    genuine = make_signal(clock, action=SignalAction.SELL, quantity=Decimal(3), source=SignalSource.FLATTEN)
    await manager.handle_from(keys.SIGNALS_DASHBOARD, SignalReceived(signal=genuine))
    [order] = await all_orders(redis_client)
    assert (order.side, order.quantity) == (Side.SELL, 3)
