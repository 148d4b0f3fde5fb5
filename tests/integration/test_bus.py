"""The bus on a real Valkey: ack, redelivery after a crash, dead letters, order per key."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import orjson
import redis.asyncio as aioredis

from tests.replies import xrange
from yquant import keys
from yquant.bus import Consumer, ensure_group, publish
from yquant.errors import MessageRefused
from yquant.messages import AnyMessage, Market, Signal, SignalAction, SignalReceived
from yquant.settings import BusSettings


def make_signal(n: int, ticker: str = "005930") -> SignalReceived:
    return SignalReceived(
        signal=Signal(
            signal_id=f"s{n}",
            strategy="demo",
            ticker=ticker,
            market=Market.KRX,
            action=SignalAction.BUY,
            quantity=Decimal(1),
        )
    )


async def run_until(consumer: Consumer, condition: asyncio.Event, timeout: float = 5.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await asyncio.wait_for(condition.wait(), timeout)
    finally:
        stop.set()
        await task


async def test_published_messages_are_handled_once_and_acknowledged(redis_client: aioredis.Redis) -> None:
    seen: list[str] = []
    done = asyncio.Event()

    async def handler(message: AnyMessage) -> None:
        assert isinstance(message, SignalReceived)
        seen.append(message.signal.signal_id)
        if len(seen) == 3:
            done.set()

    for n in range(3):
        await publish(redis_client, keys.SIGNALS_WEBHOOK, make_signal(n))
    consumer = Consumer(
        redis_client,
        stream=keys.SIGNALS_WEBHOOK,
        group="g",
        name="c1",
        handler=handler,
        settings=BusSettings(block_ms=50),
    )
    await run_until(consumer, done)
    assert seen == ["s0", "s1", "s2"]
    pending = await redis_client.xpending(keys.SIGNALS_WEBHOOK, "g")
    assert pending["pending"] == 0


async def test_entries_of_a_crashed_consumer_are_reclaimed_by_another(redis_client: aioredis.Redis) -> None:
    await ensure_group(redis_client, keys.SIGNALS_WEBHOOK, "g")
    await publish(redis_client, keys.SIGNALS_WEBHOOK, make_signal(1))
    # A consumer reads the entry and dies before acknowledging it.
    await redis_client.xreadgroup("g", "dead", {keys.SIGNALS_WEBHOOK: ">"}, count=10)
    seen: list[str] = []
    done = asyncio.Event()

    async def handler(message: AnyMessage) -> None:
        assert isinstance(message, SignalReceived)
        seen.append(message.signal.signal_id)
        done.set()

    consumer = Consumer(
        redis_client,
        stream=keys.SIGNALS_WEBHOOK,
        group="g",
        name="alive",
        handler=handler,
        settings=BusSettings(block_ms=50, claim_idle_ms=200),
    )
    await run_until(consumer, done)
    assert seen == ["s1"]
    assert (await redis_client.xpending(keys.SIGNALS_WEBHOOK, "g"))["pending"] == 0


async def test_restarted_consumer_handles_its_own_pending_entries_first(redis_client: aioredis.Redis) -> None:
    await ensure_group(redis_client, keys.SIGNALS_WEBHOOK, "g")
    await publish(redis_client, keys.SIGNALS_WEBHOOK, make_signal(1))
    await redis_client.xreadgroup("g", "same", {keys.SIGNALS_WEBHOOK: ">"}, count=10)
    await publish(redis_client, keys.SIGNALS_WEBHOOK, make_signal(2))
    seen: list[str] = []
    done = asyncio.Event()

    async def handler(message: AnyMessage) -> None:
        assert isinstance(message, SignalReceived)
        seen.append(message.signal.signal_id)
        if len(seen) == 2:
            done.set()

    consumer = Consumer(
        redis_client,
        stream=keys.SIGNALS_WEBHOOK,
        group="g",
        name="same",
        handler=handler,
        settings=BusSettings(block_ms=50, claim_idle_ms=60_000),
    )
    await run_until(consumer, done)
    assert seen == ["s1", "s2"]


async def test_entry_failing_too_often_goes_to_dead_letters(redis_client: aioredis.Redis) -> None:
    attempts = 0

    async def handler(message: AnyMessage) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("boom")

    await publish(redis_client, keys.SIGNALS_WEBHOOK, make_signal(1))
    consumer = Consumer(
        redis_client,
        stream=keys.SIGNALS_WEBHOOK,
        group="g",
        name="c",
        handler=handler,
        settings=BusSettings(block_ms=20, claim_idle_ms=50, max_deliveries=2),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    for _ in range(100):
        if await redis_client.xlen(keys.DEAD_LETTERS):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert await redis_client.xlen(keys.DEAD_LETTERS) == 1
    assert attempts == 2
    assert (await redis_client.xpending(keys.SIGNALS_WEBHOOK, "g"))["pending"] == 0


async def test_undecodable_entry_is_dead_lettered_not_retried(redis_client: aioredis.Redis) -> None:
    await redis_client.xadd(keys.SIGNALS_WEBHOOK, {"type": "SignalReceived", "data": b"{not json"})
    called = asyncio.Event()

    async def handler(message: AnyMessage) -> None:
        called.set()

    consumer = Consumer(
        redis_client,
        stream=keys.SIGNALS_WEBHOOK,
        group="g",
        name="c",
        handler=handler,
        settings=BusSettings(block_ms=20),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    for _ in range(50):
        if await redis_client.xlen(keys.DEAD_LETTERS):
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    assert not called.is_set()
    assert await redis_client.xlen(keys.DEAD_LETTERS) == 1


async def test_same_partition_key_is_handled_in_arrival_order(redis_client: aioredis.Redis) -> None:
    order: list[str] = []
    done = asyncio.Event()

    async def handler(message: AnyMessage) -> None:
        assert isinstance(message, SignalReceived)
        # The first entry is slow: a concurrent run would let the second overtake it.
        await asyncio.sleep(0.05 if message.signal.signal_id == "s0" else 0)
        order.append(message.signal.signal_id)
        if len(order) == 3:
            done.set()

    for n in range(3):
        await publish(redis_client, keys.SIGNALS_WEBHOOK, make_signal(n))
    consumer = Consumer(
        redis_client,
        stream=keys.SIGNALS_WEBHOOK,
        group="g",
        name="c",
        handler=handler,
        settings=BusSettings(block_ms=50),
        partition_key=lambda m: m.signal.ticker if isinstance(m, SignalReceived) else "",
    )
    await run_until(consumer, done)
    assert order == ["s0", "s1", "s2"]


async def test_entries_of_other_types_are_acknowledged_without_handling(redis_client: aioredis.Redis) -> None:
    seen: list[str] = []
    done = asyncio.Event()

    async def handler(message: AnyMessage) -> None:
        seen.append(message.type)
        done.set()

    await redis_client.xadd(keys.SIGNALS_WEBHOOK, {"type": "OrderSubmitted", "data": b"{}"})
    await publish(redis_client, keys.SIGNALS_WEBHOOK, make_signal(1))
    consumer = Consumer(
        redis_client,
        stream=keys.SIGNALS_WEBHOOK,
        group="g",
        name="c",
        handler=handler,
        settings=BusSettings(block_ms=20),
        accept_types=frozenset({"SignalReceived"}),
    )
    await run_until(consumer, done)
    assert seen == ["SignalReceived"]
    assert (await redis_client.xpending(keys.SIGNALS_WEBHOOK, "g"))["pending"] == 0
    assert await redis_client.xlen(keys.DEAD_LETTERS) == 0


async def test_refused_entry_is_dead_lettered_once_and_later_entries_still_handled(
    redis_client: aioredis.Redis,
) -> None:
    calls: list[str] = []
    done = asyncio.Event()

    async def handler(message: AnyMessage) -> None:
        assert isinstance(message, SignalReceived)
        calls.append(message.signal.signal_id)
        if message.signal.signal_id == "s0":
            raise MessageRefused("not on this stream")
        done.set()

    await publish(redis_client, keys.SIGNALS_WEBHOOK, make_signal(0))
    await publish(redis_client, keys.SIGNALS_WEBHOOK, make_signal(1))
    consumer = Consumer(
        redis_client,
        stream=keys.SIGNALS_WEBHOOK,
        group="g",
        name="c1",
        handler=handler,
        settings=BusSettings(block_ms=50, claim_idle_ms=100, max_deliveries=5),
    )
    await run_until(consumer, done)

    assert calls == ["s0", "s1"]  # refused once: never handed to the handler again
    [(_id, fields)] = await xrange(redis_client, keys.DEAD_LETTERS)
    letter = orjson.loads(fields[b"data"])
    assert (letter["stream"], letter["reason"]) == (keys.SIGNALS_WEBHOOK, "refused: not on this stream")
    assert (await redis_client.xpending(keys.SIGNALS_WEBHOOK, "g"))["pending"] == 0
