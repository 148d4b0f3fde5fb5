"""What one signal costs in Valkey, and that nothing it reads once per signal can be stale.

The order manager reads what a signal needs in one pipeline and writes its order with the
decision, behind the duplicate window and the order rate, in one server function; limits,
trading state and the account's snapshot are parsed again only when what is stored changed.
The counts here are of a real Valkey (its INFO commandstats, commands run inside server
functions included) and of the requests the client sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.factories import all_orders, decision_of, make_signal, seed_account, stream
from yquant import controls, keys
from yquant.messages import SignalDenied
from yquant.settings import Settings
from yquant.trading_state import TradingState

# Valkey commands of one buy: the read pipeline (received record, limits, the account's view with
# its unsettled orders and trading state, EXISTS) and one yq_order_place: the throttles, the
# reservation, the order (the commands yq_order_create runs, its copy among the account's
# unsettled orders included) and the decision record and event. Before, this buy took 12 round
# trips and 34 commands (the same test against 7f3ca72), then 4 and 33 (against 7d99b55); now 2
# and 29.
MAX_ROUND_TRIPS = 2
MAX_COMMANDS = 30


class Sent:
    """Requests written to Valkey: one per command sent alone, one per pipeline."""

    def __init__(self) -> None:
        self.count = 0


def counting_client(url: str, sent: Sent) -> aioredis.Redis:
    class CountingConnection(aioredis.Connection):
        async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
            sent.count += 1
            await super().send_packed_command(command, check_health)

    pool = aioredis.ConnectionPool.from_url(url, connection_class=CountingConnection, driver_info=None)
    return aioredis.Redis.from_pool(pool)


@pytest.fixture
async def counted(valkey_url: str) -> AsyncIterator[tuple[aioredis.Redis, Sent]]:
    sent = Sent()
    client = counting_client(valkey_url, sent)
    yield client, sent
    await client.aclose()


async def commands_run(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(int(value["calls"]) for name, value in stats.items() if name != "cmdstat_info")


async def test_one_buy_takes_few_round_trips_and_commands(
    counted: tuple[aioredis.Redis, Sent], redis_client: aioredis.Redis, om_settings: Settings, clock: ManualClock
) -> None:
    client, sent = counted
    manager = OrderManager(client, om_settings, clock=clock)
    await seed_account(redis_client)
    # An earlier buy, still open: the next one counts it as pending, read with the account.
    await manager.handle_signal(make_signal(clock, ticker="000660", quantity=Decimal(1)), "c")

    signal = make_signal(clock, quantity=Decimal(2))
    before_sent, before_commands = sent.count, await commands_run(redis_client)
    await manager.handle_signal(signal, "c")
    round_trips = sent.count - before_sent
    commands = await commands_run(redis_client) - before_commands - 1  # less the INFO's own count

    assert (await decision_of(redis_client, signal.signal_id))["status"] == "accepted"
    assert {o.ticker for o in await all_orders(redis_client)} == {"000660", "005930"}
    assert round_trips <= MAX_ROUND_TRIPS, round_trips
    assert commands <= MAX_COMMANDS, commands


async def test_a_limit_change_applies_to_the_next_signal(
    manager: OrderManager, redis_client: aioredis.Redis, om_settings: Settings, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    first = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(first, "c")
    assert (await decision_of(redis_client, first.signal_id))["status"] == "accepted"

    await controls.set_risk_limits(redis_client, om_settings, {"max_order_value": {"KRW": 100_000}})
    second = make_signal(clock, quantity=Decimal(2))  # 140,000 KRW
    await manager.handle_signal(second, "c")
    assert (await decision_of(redis_client, second.signal_id))["reason_code"] == "MAX_ORDER_VALUE"

    # A change made by hand in Valkey (no tool, no version to bump) is seen all the same.
    await redis_client.hset(keys.RISK_LIMITS, "max_order_value", '{"KRW": "1000000"}')
    third = make_signal(clock, quantity=Decimal(2))
    await manager.handle_signal(third, "c")
    assert (await decision_of(redis_client, third.signal_id))["status"] == "accepted"

    await redis_client.hset(keys.RISK_LIMITS, "denied_symbols", '["005930"]')
    fourth = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(fourth, "c")
    assert (await decision_of(redis_client, fourth.signal_id))["reason_code"] == "SYMBOL_DENIED"

    await controls.reset_risk_limits(redis_client, om_settings)
    fifth = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(fifth, "c")
    assert (await decision_of(redis_client, fifth.signal_id))["status"] == "accepted"


async def test_a_halt_applies_to_the_very_next_signal(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    first = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(first, "c")
    assert (await decision_of(redis_client, first.signal_id))["status"] == "accepted"

    await controls.set_trading_state(redis_client, TradingState.HALTED, "main")
    second = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(second, "c")
    assert (await decision_of(redis_client, second.signal_id))["reason_code"] == "TRADING_HALTED"

    await controls.set_trading_state(redis_client, TradingState.ACTIVE, "main")
    third = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(third, "c")
    assert (await decision_of(redis_client, third.signal_id))["status"] == "accepted"

    await redis_client.hset(keys.TRADING_STATE, "*", "REDUCING")  # by hand, globally
    fourth = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(fourth, "c")
    assert (await decision_of(redis_client, fourth.signal_id))["reason_code"] == "TRADING_REDUCING"


async def test_a_new_account_snapshot_applies_to_the_next_signal(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, cash=1_000_000)
    first = make_signal(clock, quantity=Decimal(10))  # 700,000 KRW
    await manager.handle_signal(first, "c")
    assert (await decision_of(redis_client, first.signal_id))["status"] == "accepted"
    second = make_signal(clock, ticker="000660", quantity=Decimal(10))
    await manager.handle_signal(second, "c")
    assert (await decision_of(redis_client, second.signal_id))["reason_code"] == "INSUFFICIENT_CASH"

    await seed_account(redis_client, cash=100_000_000)  # the next sync: more cash
    third = make_signal(clock, ticker="000660", quantity=Decimal(10))
    await manager.handle_signal(third, "c")
    assert (await decision_of(redis_client, third.signal_id))["status"] == "accepted"


async def test_two_concurrent_buys_never_spend_the_same_cash(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, cash=1_000_000)
    # Different tickers: different partitions, handled at the same time by the consumer.
    signals = [make_signal(clock, ticker=ticker, quantity=Decimal(10)) for ticker in ("005930", "000660", "035420")]
    await asyncio.gather(*(manager.handle_signal(s, "c") for s in signals))
    outcomes = sorted([(await decision_of(redis_client, s.signal_id)).get("reason_code", "") for s in signals])
    assert outcomes == ["", "INSUFFICIENT_CASH", "INSUFFICIENT_CASH"]
    assert len(await all_orders(redis_client)) == 1


async def test_a_throttled_buy_is_refused_in_the_step_that_would_write_it(
    counted: tuple[aioredis.Redis, Sent], redis_client: aioredis.Redis, om_settings: Settings, clock: ManualClock
) -> None:
    client, sent = counted
    manager = OrderManager(client, om_settings, clock=clock)
    await seed_account(redis_client)
    await controls.set_risk_limits(redis_client, om_settings, {"duplicate_window_s": 5, "max_orders_per_minute": 2})
    first = make_signal(clock, quantity=Decimal(1))
    await manager.handle_signal(first, "c")

    again = make_signal(clock, quantity=Decimal(1))  # the same intent from another alert
    before = sent.count
    await manager.handle_signal(again, "c")
    assert sent.count - before <= MAX_ROUND_TRIPS, sent.count - before
    record = await decision_of(redis_client, again.signal_id)
    assert (record["status"], record["reason_code"]) == ("denied", "DUPLICATE")
    assert record["reason"] == "main: the same buy of 005930 for swing came less than 5s ago"
    assert len(await all_orders(redis_client)) == 1
    assert len(await redis_client.hgetall(keys.reservations("main"))) == 1  # the refused buy reserved nothing

    # The refused buy took no slot of the two a minute: another ticker still goes, a third does not.
    second = make_signal(clock, ticker="000660", quantity=Decimal(1))
    third = make_signal(clock, ticker="035420", quantity=Decimal(1))
    await manager.handle_signal(second, "c")
    await manager.handle_signal(third, "c")
    assert (await decision_of(redis_client, second.signal_id))["status"] == "accepted"
    assert (await decision_of(redis_client, third.signal_id))["reason_code"] == "RATE_LIMITED"
    assert {o.ticker for o in await all_orders(redis_client)} == {"005930", "000660"}

    # The signal log shows every denial with its reason, as it did when the throttles ran apart.
    denied = [m for m in await stream(redis_client, keys.DECISIONS) if isinstance(m, SignalDenied)]
    assert [(d.signal_id, d.reason_code, d.account) for d in denied] == [
        (again.signal_id, "DUPLICATE", "main"),
        (third.signal_id, "RATE_LIMITED", "main"),
    ]
