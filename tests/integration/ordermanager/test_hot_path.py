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
from redis.typing import EncodableT

from ordermanager.executions import ExecutionHandler
from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.factories import (
    all_orders,
    decision_of,
    fill,
    make_signal,
    seed_account,
    stream,
)
from yquant import controls, exit_rules, keys
from yquant.messages import AccountSynced, Market, SignalDenied
from yquant.settings import Settings
from yquant.trading_state import TradingState, get_trading_state

# Valkey commands of one buy: the read pipeline (received record, limits, the account's view with
# its unsettled orders and trading state, EXISTS) and one yq_order_place: the throttles, the
# reservation, the order (the commands yq_order_create runs, its copy among the account's
# unsettled orders included) and the decision record and event. Before, this buy took 12 round
# trips and 34 commands (the same test against 7f3ca72), then 4 and 33 (against 7d99b55), then 2
# and 29 (against 3beb4d1); now 2 and 28, the order's unsettled copy made without reading back
# the record just written.
MAX_ROUND_TRIPS = 2
MAX_COMMANDS = 28


class Sent:
    """Requests written to Valkey (one per command sent alone, one per pipeline) and the commands
    they carried."""

    def __init__(self) -> None:
        self.count = 0
        self.commands = 0


def counting_client(url: str, sent: Sent) -> aioredis.Redis:
    class CountingConnection(aioredis.Connection):
        async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
            sent.count += 1
            await super().send_packed_command(command, check_health)

        def pack_command(self, *args: EncodableT) -> list[bytes]:
            sent.commands += 1  # a pipeline packs each of its commands here too
            return super().pack_command(*args)

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


# With neither throttle on (as make bench runs), the buy's order and decision went as a
# transaction of ten commands (MULTI, the reservation's HSET and EXPIRE, yq_order_create, the
# record's HSET and EXPIRE, ZADD, XADD, EXEC): 20 commands sent and 27 run against 3beb4d1. Now
# they are one yq_order_place, whose throttles are off: 12 sent (the reads and one FCALL), 24 run.
MAX_UNTHROTTLED_SENT = 12
MAX_UNTHROTTLED_COMMANDS = 24


async def test_a_buy_with_no_throttle_sends_its_order_and_decision_as_one_command(
    counted: tuple[aioredis.Redis, Sent], redis_client: aioredis.Redis, om_settings: Settings, clock: ManualClock
) -> None:
    client, sent = counted
    manager = OrderManager(client, om_settings, clock=clock)
    await seed_account(redis_client)
    await controls.set_risk_limits(redis_client, om_settings, {"duplicate_window_s": 0, "max_orders_per_minute": 0})
    await manager.handle_signal(make_signal(clock, ticker="000660", quantity=Decimal(1)), "c")

    signal = make_signal(clock, quantity=Decimal(2))
    before_sent, before_commands, before_run = sent.count, sent.commands, await commands_run(redis_client)
    await manager.handle_signal(signal, "c")
    round_trips, commands = sent.count - before_sent, sent.commands - before_commands
    run = await commands_run(redis_client) - before_run - 1

    record = await decision_of(redis_client, signal.signal_id)
    [order] = [o for o in await all_orders(redis_client) if o.ticker == "005930"]
    assert (record["status"], record["orders"]) == ("accepted", f'["{order.client_order_id}"]')
    assert len(await redis_client.hgetall(keys.reservations("main"))) == 2  # both buys reserved their cash
    assert [m.type for m in await stream(redis_client, keys.DECISIONS)] == ["SignalAccepted", "SignalAccepted"]
    assert round_trips <= MAX_ROUND_TRIPS, round_trips
    assert commands <= MAX_UNTHROTTLED_SENT, commands
    assert run <= MAX_UNTHROTTLED_COMMANDS, run

    # Redelivered, the signal writes nothing twice.
    await manager.handle_signal(signal, "c")
    assert len(await all_orders(redis_client)) == 2
    assert len(await stream(redis_client, keys.ORDERS)) == 2


# A filled buy this process placed: nothing is read (its strategy, origin, stop and target are
# remembered from the placement, and only a sell can hold a reverse's entry). A buy placed
# elsewhere or before a restart: its order record, then its signal's record. Before (3beb4d1) one
# round trip each for every buy: 3; before the reverse entry was left to sells, 1. Writing a rule
# costs one more.
MAX_FILL_ROUND_TRIPS = 0
MAX_FILL_ROUND_TRIPS_UNKNOWN_BUY = 2


async def test_a_filled_buy_costs_the_order_manager_no_round_trip(
    counted: tuple[aioredis.Redis, Sent], redis_client: aioredis.Redis, om_settings: Settings, clock: ManualClock
) -> None:
    client, sent = counted
    manager = OrderManager(client, om_settings, clock=clock)
    await seed_account(redis_client)
    plain = make_signal(clock, quantity=Decimal(1))
    priced = make_signal(clock, ticker="000660", quantity=Decimal(1), stop_loss=Decimal(170_000))
    elsewhere = make_signal(clock, ticker="035420", quantity=Decimal(1), take_profit=Decimal(250_000))
    for signal in (plain, priced, elsewhere):
        await manager.handle_signal(signal, "c")
    by_ticker = {o.ticker: o.client_order_id for o in await all_orders(redis_client)}
    handler = ExecutionHandler(manager)

    event = await fill(redis_client, by_ticker["005930"], 70_000)
    before = sent.count
    await handler.handle(event)
    assert sent.count - before <= MAX_FILL_ROUND_TRIPS, sent.count - before
    assert await exit_rules.get_rule(redis_client, "main", Market.KRX, "005930") is None  # nothing asked for one

    # The alert's stop still becomes the position's rule.
    event = await fill(redis_client, by_ticker["000660"], 180_000)
    before = sent.count
    await handler.handle(event)
    assert sent.count - before <= MAX_FILL_ROUND_TRIPS + 1, sent.count - before
    rule = await exit_rules.get_rule(redis_client, "main", Market.KRX, "000660")
    assert rule is not None
    assert (rule.stop_loss_price, rule.strategy) == (Decimal(170_000), "swing")

    # After a restart the buy is read from Valkey, and its alert's target still becomes the rule.
    restarted = ExecutionHandler(OrderManager(client, om_settings, clock=clock))
    event = await fill(redis_client, by_ticker["035420"], 200_000)
    before = sent.count
    await restarted.handle(event)
    assert sent.count - before <= MAX_FILL_ROUND_TRIPS_UNKNOWN_BUY + 1, sent.count - before
    rule = await exit_rules.get_rule(redis_client, "main", Market.KRX, "035420")
    assert rule is not None
    assert (rule.take_profit_price, rule.strategy) == (Decimal(250_000), "swing")


# An account sync: the limits, the account's exit rules and the day's baseline in one transaction.
# Before (3beb4d1) one round trip each: 3 for an account of one currency.
MAX_SYNC_ROUND_TRIPS = 1


async def test_an_account_sync_costs_the_order_manager_one_round_trip(
    counted: tuple[aioredis.Redis, Sent], redis_client: aioredis.Redis, om_settings: Settings, clock: ManualClock
) -> None:
    client, sent = counted
    manager = OrderManager(client, om_settings, clock=clock)
    handler = ExecutionHandler(manager)
    await controls.set_risk_limits(redis_client, om_settings, {"max_daily_loss": {"KRW": 500_000}})
    await handler.handle(AccountSynced(account="main", cash={"KRW": Decimal(10_000_000)}, positions=[]))

    before = sent.count
    await handler.handle(AccountSynced(account="main", cash={"KRW": Decimal(9_600_000)}, positions=[]))
    assert sent.count - before <= MAX_SYNC_ROUND_TRIPS, sent.count - before
    assert await get_trading_state(redis_client, "main") is TradingState.ACTIVE  # 400,000 lost: within the limit

    # The loss past the limit still turns the account to REDUCING (a round trip more, to write it).
    await handler.handle(AccountSynced(account="main", cash={"KRW": Decimal(9_500_000)}, positions=[]))
    assert await get_trading_state(redis_client, "main") is TradingState.REDUCING


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
