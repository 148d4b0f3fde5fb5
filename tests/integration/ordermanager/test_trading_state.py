"""Trading state: HALTED stops everything but cancels and flatten; REDUCING only reduces; the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from decimal import Decimal

import orjson
import redis.asyncio as aioredis

from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.factories import (
    all_orders,
    decision_of,
    make_position,
    make_signal,
    seed_account,
    stream,
)
from yquant import controls, keys
from yquant.messages import CancelOrder, Side, SignalAction, SignalReceived
from yquant.settings import Settings
from yquant.trading_state import TradingState, effective_trading_state


async def feed_appended_signals(manager: OrderManager, client: aioredis.Redis) -> list[str]:
    """Hand the signals appended to the stream to the order manager, in order (as its consumer would)."""
    handled: list[str] = []
    for message in await stream(client, keys.SIGNALS_DASHBOARD):
        assert isinstance(message, SignalReceived)
        await manager.handle_signal(message.signal, message.correlation_id)
        handled.append(message.signal.signal_id)
    return handled


async def test_halted_denies_a_buy_and_still_executes_flatten_all(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, om_settings: Settings
) -> None:
    await seed_account(redis_client, positions=[make_position("005930", 10), make_position("000660", 3, 180_000)])
    await manager.handle_signal(make_signal(clock, ticker="035420", quantity=Decimal(1)), "c")  # an open buy
    await controls.set_trading_state(redis_client, TradingState.HALTED)

    buy = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(buy, "c")
    decision = await decision_of(redis_client, buy.signal_id)
    assert decision["reason_code"] == "TRADING_HALTED"
    assert "HALTED globally" in decision["reason"]

    signal_ids = await controls.flatten_all(redis_client, om_settings, now=clock.now())
    assert len(signal_ids) == 3  # two positions, one ticker with only an open buy
    await feed_appended_signals(manager, redis_client)
    sells = {(o.ticker, o.quantity, o.origin) for o in await all_orders(redis_client) if o.side is Side.SELL}
    assert sells == {("005930", 10, "liquidation"), ("000660", 3, "liquidation")}
    cancels = [m for m in await stream(redis_client, keys.ORDERS) if isinstance(m, CancelOrder)]
    assert [c.account for c in cancels] == ["main"]
    for signal_id in signal_ids:
        assert (await decision_of(redis_client, signal_id))["status"] == "accepted"


async def test_halted_denies_stop_loss_exits_too(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, positions=[make_position(quantity=2)])
    await controls.set_trading_state(redis_client, TradingState.HALTED, account="main")
    exit_signal = make_signal(clock, action=SignalAction.EXIT, source="exit", account="main")
    await manager.handle_signal(exit_signal, "c")
    decision = await decision_of(redis_client, exit_signal.signal_id)
    assert decision["reason_code"] == "TRADING_HALTED"
    assert "for this account" in decision["reason"]


async def test_reducing_allows_only_position_reducing_orders(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, positions=[make_position(quantity=4)])
    await controls.set_trading_state(redis_client, "REDUCING", account="main")
    buy = make_signal(clock, quantity=Decimal(1))
    sell = make_signal(clock, action=SignalAction.SELL, quantity=Decimal(1))
    await manager.handle_signal(buy, "c")
    await manager.handle_signal(sell, "c")
    assert (await decision_of(redis_client, buy.signal_id))["reason_code"] == "TRADING_REDUCING"
    assert (await decision_of(redis_client, sell.signal_id))["status"] == "accepted"


async def test_the_stricter_of_global_and_account_applies(redis_client: aioredis.Redis) -> None:
    await controls.set_trading_state(redis_client, TradingState.REDUCING)
    await controls.set_trading_state(redis_client, TradingState.HALTED, account="isa")
    assert await effective_trading_state(redis_client, "main") == (TradingState.REDUCING, "global")
    assert await effective_trading_state(redis_client, "isa") == (TradingState.HALTED, "account")
    states = await controls.get_trading_states(redis_client)
    assert states == {"*": TradingState.REDUCING, "isa": TradingState.HALTED}


async def test_liquidate_filters_by_strategy(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock, om_settings: Settings
) -> None:
    await redis_client.hset(keys.position_attribution("main"), "KRX:005930", "swing")
    await redis_client.hset(keys.position_attribution("main"), "KRX:000660", "manual")
    await seed_account(redis_client, positions=[make_position("005930", 10), make_position("000660", 3, 180_000)])
    signal_ids = await controls.liquidate(redis_client, om_settings, strategy="swing", now=clock.now())
    await feed_appended_signals(manager, redis_client)
    assert len(signal_ids) == 1
    [order] = await all_orders(redis_client)
    assert (order.ticker, order.quantity, order.strategy) == ("005930", 10, "swing")


async def test_cli_sets_and_shows_trading_states(valkey_url: str, redis_client: aioredis.Redis) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YQ_")}
    env["YQ_VALKEY__URL"] = valkey_url

    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "yquant", *args], env=env, capture_output=True, timeout=30)

    # A typo in a kill switch must not look like success.
    typo = await asyncio.to_thread(cli, "trading-state", "halted", "--account", "mian")
    assert typo.returncode == 2
    assert b"unknown account 'mian'" in typo.stderr
    assert orjson.loads((await asyncio.to_thread(cli, "trading-state", "--json")).stdout) == {"*": "ACTIVE"}
    unknown = await asyncio.to_thread(cli, "positions", "--account", "mian")
    assert (unknown.returncode, unknown.stdout) == (2, b"")
    await redis_client.sadd(keys.ACCOUNTS_INDEX, "main")  # what the gateway's first sync records
    assert (await asyncio.to_thread(cli, "trading-state", "halted", "--account", "main")).returncode == 0
    shown = await asyncio.to_thread(cli, "trading-state", "--json")
    assert orjson.loads(shown.stdout) == {"*": "ACTIVE", "main": "HALTED"}
    refused = await asyncio.to_thread(cli, "trading-state", "PAUSED")
    assert refused.returncode == 2
    assert b"unknown trading state" in refused.stderr


async def test_an_unreadable_stored_state_fails_closed(redis_client: aioredis.Redis) -> None:
    from yquant import keys, trading_state

    await redis_client.hset(keys.TRADING_STATE, "main", "PAUSED-ISH")
    state, scope = await trading_state.effective_trading_state(redis_client, "main")
    assert (state.value, scope) == ("HALTED", "account")
