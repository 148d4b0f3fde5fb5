"""When the order manager asks the gateway for a quote; runtime risk limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from tests.replies import xrange
from yquant import controls, keys, quotes
from yquant.messages import Market, Quote, QuoteRequested, decode
from yquant.settings import Settings


async def requests_on_the_query_stream(client: aioredis.Redis) -> list[QuoteRequested]:
    requests = [decode(fields[b"data"]) for _id, fields in await xrange(client, keys.QUERIES)]
    assert all(isinstance(r, QuoteRequested) for r in requests)
    return [r for r in requests if isinstance(r, QuoteRequested)]


# The gateway's answer to a request is tested against the real gateway and the simulator in
# tests/integration/brokergateway/test_sync_and_quotes.py; here: when the order manager asks.


async def test_a_fresh_cached_quote_needs_no_request(redis_client: aioredis.Redis) -> None:
    cached = Quote(market=Market.NASD, ticker="AAPL", price=Decimal(191), currency="USD", as_of=datetime.now(UTC))
    await redis_client.set(keys.quote("NASD", "AAPL"), cached.model_dump_json())
    assert await quotes.get_quote(redis_client, Market.NASD, "AAPL", 0.5) == cached
    assert await requests_on_the_query_stream(redis_client) == []


async def test_a_stale_cached_quote_is_not_used_and_the_gateway_is_asked(redis_client: aioredis.Redis) -> None:
    old = Quote(
        market=Market.NASD,
        ticker="AAPL",
        price=Decimal(150),
        currency="USD",
        as_of=datetime.now(UTC) - timedelta(minutes=5),
    )
    await redis_client.set(keys.quote("NASD", "AAPL"), old.model_dump_json())
    assert await quotes.get_quote(redis_client, Market.NASD, "AAPL", 0.2) is None
    [request] = await requests_on_the_query_stream(redis_client)
    assert (request.market, request.ticker) == (Market.NASD, "AAPL")


async def test_no_answer_is_none_after_the_timeout(redis_client: aioredis.Redis) -> None:
    started = asyncio.get_running_loop().time()
    assert await quotes.get_quote(redis_client, Market.KRX, "005930", 0.2) is None
    assert asyncio.get_running_loop().time() - started < 1.5
    [request] = [decode(f[b"data"]) for _id, f in await xrange(redis_client, keys.QUERIES)]
    assert isinstance(request, QuoteRequested)


async def test_a_gateway_silent_at_first_is_asked_again_and_its_late_answer_counts(
    redis_client: aioredis.Redis,
) -> None:
    """A restarting gateway misses the first request; the second is answered within the wait."""

    async def gateway_back_for_the_second_request() -> None:
        while len(requests := await requests_on_the_query_stream(redis_client)) < 2:
            await asyncio.sleep(0.02)
        second = requests[1]
        answer = Quote(
            market=Market.KRX, ticker="005930", price=Decimal(71_000), currency="KRW", as_of=datetime.now(UTC)
        )
        await redis_client.rpush(keys.reply(second.request_id), answer.model_dump_json())

    gateway = asyncio.create_task(gateway_back_for_the_second_request())
    # The wait is long so a slow machine still asks twice before it ends; the answer ends it early.
    quote = await quotes.get_quote(redis_client, Market.KRX, "005930", 0.5, wait_s=60)
    await gateway
    assert quote is not None
    assert quote.price == Decimal(71_000)


async def test_a_refusal_ends_the_wait_at_once(redis_client: aioredis.Redis) -> None:
    async def gateway_refuses() -> None:
        while not (requests := await requests_on_the_query_stream(redis_client)):
            await asyncio.sleep(0.02)
        await redis_client.rpush(keys.reply(requests[0].request_id), b'{"error": "unknown ticker"}')

    gateway = asyncio.create_task(gateway_refuses())
    assert await quotes.get_quote(redis_client, Market.KRX, "NOSUCH", 30, wait_s=60) is None
    await gateway
    assert len(await requests_on_the_query_stream(redis_client)) == 1


async def test_risk_limits_are_overridden_validated_and_reset(redis_client: aioredis.Redis, settings: Settings) -> None:
    defaults = await controls.get_risk_limits(redis_client, settings)
    assert defaults.max_order_value == {"KRW": Decimal(10_000_000), "USD": Decimal(10_000)}
    changed = await controls.set_risk_limits(
        redis_client, settings, {"max_order_value": {"krw": "5000000"}, "max_orders_per_minute": 5}
    )
    assert changed.max_order_value == {"KRW": Decimal(5_000_000)}
    assert set(await controls.get_risk_limit_overrides(redis_client)) == {"max_order_value", "max_orders_per_minute"}
    with pytest.raises(ValueError, match="unknown risk limits"):
        await controls.set_risk_limits(redis_client, settings, {"max_leverage": 3})
    with pytest.raises(ValueError, match="currency"):
        await controls.set_risk_limits(redis_client, settings, {"max_daily_loss": {"EUR": 1}})
    await redis_client.hset(keys.RISK_LIMITS, "max_orders_per_minute", b'"lots"')  # broken by hand
    assert (await controls.get_risk_limits(redis_client, settings)).max_orders_per_minute == 30
    reset = await controls.reset_risk_limits(redis_client, settings, ["max_order_value"])
    assert reset.max_order_value == defaults.max_order_value
