"""The order-record cache re-reads an order only when it changed, and never serves a stale one."""

from __future__ import annotations

import redis.asyncio as aioredis

from tests.order_paths import walk_to
from yquant import orders
from yquant.messages import Market, OrderState, Side, SubmitOrder


def command(n: int) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=f"yq-{n}", account="main", market=Market.KRX, ticker="005930",
        side=Side.BUY, quantity=n + 1, strategy="demo",
    )  # fmt: skip


async def test_cache_returns_current_records_after_a_change(redis_client: aioredis.Redis) -> None:
    for n in range(3):
        assert await orders.create_order(redis_client, command(n), 1000)
    cache = orders.RecordCache()
    first = await cache.get_many(redis_client, ["yq-0", "yq-1", "yq-2", "missing"])
    assert [r.client_order_id for r in first] == ["yq-0", "yq-1", "yq-2"]
    assert all(r.state is OrderState.NEW for r in first)

    applied, _ = await orders.update_order(redis_client, "yq-1", new_state=OrderState.SUBMITTING)
    assert applied
    second = await cache.get_many(redis_client, ["yq-0", "yq-1", "yq-2"])
    assert [r.state for r in second] == [OrderState.NEW, OrderState.SUBMITTING, OrderState.NEW]
    assert second[0] is first[0]  # unchanged orders are not parsed again


async def test_final_orders_are_served_from_memory(redis_client: aioredis.Redis) -> None:
    assert await orders.create_order(redis_client, command(3), 1000)
    await walk_to(redis_client, "yq-3", OrderState.REJECTED)
    cache = orders.RecordCache()
    first = await cache.get_many(redis_client, ["yq-3"])
    assert first[0].state is OrderState.REJECTED
    await redis_client.hset("yq:order:yq-3", "reason", "changed behind the cache's back")
    again = await cache.get_many(redis_client, ["yq-3"])
    assert again[0] is first[0]


async def test_cache_drops_orders_that_disappeared(redis_client: aioredis.Redis) -> None:
    assert await orders.create_order(redis_client, command(7), 1000)
    cache = orders.RecordCache()
    assert len(await cache.get_many(redis_client, ["yq-7"])) == 1
    await redis_client.delete("yq:order:yq-7")
    assert await cache.get_many(redis_client, ["yq-7"]) == []
