"""Quotes by cache or request/reply (a stand-in answers for the gateway); runtime risk limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from ordermanager import controls
from yquant import keys, quotes, valkey
from yquant.messages import Market, Quote, QuoteRequested, decode
from yquant.settings import Settings, ValkeySettings


@pytest.fixture
async def responder(valkey_url: str) -> AsyncIterator[list[QuoteRequested]]:
    """Answers quote requests the way the gateway will: RPUSH the Quote's JSON to the reply list."""
    client = valkey.connect(ValkeySettings(url=valkey_url))
    seen: list[QuoteRequested] = []
    stop = asyncio.Event()

    async def answer() -> None:
        last = "0"
        while not stop.is_set():
            response = await client.xread({keys.QUERIES: last}, block=50)
            for _stream, entries in response or []:
                for entry_id, fields in entries:
                    last = entry_id
                    request = decode(fields[b"data"])
                    assert isinstance(request, QuoteRequested)
                    seen.append(request)
                    if request.ticker == "UNKNOWN":
                        await client.rpush(keys.reply(request.request_id), b'{"error": "no such ticker"}')
                        continue
                    quote = Quote(
                        market=request.market,
                        ticker=request.ticker,
                        price=Decimal("190.12"),
                        currency="USD",
                        as_of=datetime.now(UTC),
                    )
                    await client.rpush(keys.reply(request.request_id), quote.model_dump_json())

    task = asyncio.create_task(answer())
    yield seen
    stop.set()
    await task
    await client.aclose()


async def test_a_fresh_cached_quote_needs_no_request(
    redis_client: aioredis.Redis, responder: list[QuoteRequested]
) -> None:
    cached = Quote(market=Market.NASD, ticker="AAPL", price=Decimal(191), currency="USD", as_of=datetime.now(UTC))
    await redis_client.set(keys.quote("NASD", "AAPL"), cached.model_dump_json())
    assert await quotes.get_quote(redis_client, Market.NASD, "AAPL", 0.5) == cached
    assert responder == []


async def test_a_stale_cache_asks_the_gateway(redis_client: aioredis.Redis, responder: list[QuoteRequested]) -> None:
    old = Quote(
        market=Market.NASD,
        ticker="AAPL",
        price=Decimal(150),
        currency="USD",
        as_of=datetime.now(UTC) - timedelta(minutes=5),
    )
    await redis_client.set(keys.quote("NASD", "AAPL"), old.model_dump_json())
    quote = await quotes.get_quote(redis_client, Market.NASD, "AAPL", 1.0)
    assert quote is not None
    assert quote.price == Decimal("190.12")
    assert [r.ticker for r in responder] == ["AAPL"]
    assert await quotes.get_quote(redis_client, Market.NASD, "UNKNOWN", 1.0) is None


async def test_no_answer_is_none_after_the_timeout(redis_client: aioredis.Redis) -> None:
    started = asyncio.get_running_loop().time()
    assert await quotes.get_quote(redis_client, Market.KRX, "005930", 0.2) is None
    assert asyncio.get_running_loop().time() - started < 1.5
    [request] = [decode(f[b"data"]) for _id, f in await redis_client.xrange(keys.QUERIES)]
    assert isinstance(request, QuoteRequested)


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
