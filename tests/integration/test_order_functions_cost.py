"""What an order's writes cost inside Valkey: each server function reads the order's record at
most once, and the account's unsettled copy comes from what the function holds, not a second read.

Counted by Valkey itself (INFO commandstats: the FCALL and every command it runs).
"""

from __future__ import annotations

from decimal import Decimal

import orjson
import redis.asyncio as aioredis

from tests.order_paths import walk_to
from yquant import keys, orders
from yquant.messages import Market, OrderFilled, OrderState, Side, SubmitOrder

# yq_order_create: FCALL, EXISTS, HSET, RPUSH, ZADD, SADD, the unsettled copy's HSET, XADD. Before,
# 9 (the copy re-read the record it had just written: HGETALL).
MAX_CREATE_COMMANDS = 8
# A fill (yq_order_update with a condition): FCALL, HGETALL, HSET, the copy's HSET, RPUSH, XADD.
# Before, 8 (HGET state, HGET of the condition's field, and the copy's HGETALL).
MAX_FILL_COMMANDS = 6


async def commands_run(client: aioredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


async def counted(client: aioredis.Redis, before: dict[str, int]) -> dict[str, int]:
    after = await commands_run(client)
    spent = {name: calls - before.get(name, 0) for name, calls in after.items() if name != "info"}
    return {name: calls for name, calls in spent.items() if calls}


def buy() -> SubmitOrder:
    return SubmitOrder(
        client_order_id="yq-cost", account="main", market=Market.KRX, ticker="005930",
        side=Side.BUY, quantity=3, strategy="demo",
    )  # fmt: skip


async def unsettled_copy(client: aioredis.Redis) -> dict[str, str]:
    raw = await client.hget(keys.unsettled_orders("main"), "yq-cost")
    assert isinstance(raw, bytes)
    copy: dict[str, str] = orjson.loads(raw)
    return copy


async def stored(client: aioredis.Redis) -> dict[str, str]:
    return {keys.text(k): keys.text(v) for k, v in (await client.hgetall(keys.order("yq-cost"))).items()}


async def test_creating_an_order_reads_nothing_back(redis_client: aioredis.Redis) -> None:
    before = await commands_run(redis_client)
    assert await orders.create_order(redis_client, buy(), 1000)
    spent = await counted(redis_client, before)
    assert "hgetall" not in spent, spent
    assert sum(spent.values()) <= MAX_CREATE_COMMANDS, spent
    assert await unsettled_copy(redis_client) == await stored(redis_client)


async def test_a_fill_reads_the_order_once(redis_client: aioredis.Redis) -> None:
    assert await orders.create_order(redis_client, buy(), 1000)
    await walk_to(redis_client, "yq-cost", OrderState.ACCEPTED, fields={"broker_order_id": "0001"})
    event = OrderFilled(
        client_order_id="yq-cost", account="main", broker_order_id="0001", market=Market.KRX, ticker="005930",
        side=Side.BUY, fill_quantity=1, fill_price=Decimal(70_000), cumulative_quantity=1,
        average_price=Decimal(70_000), remaining_quantity=2,
    )  # fmt: skip

    before = await commands_run(redis_client)
    applied, previous = await orders.update_order(
        redis_client,
        "yq-cost",
        new_state=OrderState.PARTIALLY_FILLED,
        fields={"filled_quantity": 1, "average_price": "70000"},
        condition=("filled_quantity", "0"),
        event=event,
    )
    spent = await counted(redis_client, before)

    assert (applied, previous) == (True, OrderState.ACCEPTED)
    assert spent.get("hgetall") == 1, spent
    assert "hget" not in spent, spent
    assert sum(spent.values()) <= MAX_FILL_COMMANDS, spent
    record = await stored(redis_client)
    assert (record["state"], record["filled_quantity"]) == ("PARTIALLY_FILLED", "1")
    assert await unsettled_copy(redis_client) == record

    # The condition still guards the change: a fill computed from a stale count is refused.
    stale, current = await orders.update_order(
        redis_client, "yq-cost", new_state=OrderState.FILLED, fields={"filled_quantity": 3},
        condition=("filled_quantity", "0"),
    )  # fmt: skip
    assert (stale, current) == (False, OrderState.PARTIALLY_FILLED)
    assert (await stored(redis_client))["filled_quantity"] == "1"
    assert await orders.update_order(redis_client, "missing", new_state=OrderState.FILLED) == (False, None)


async def test_a_change_asked_with_its_record_replies_with_it_and_reads_no_more(
    redis_client: aioredis.Redis,
) -> None:
    """The gateway's submission takes the record from the change's reply instead of reading it first."""
    assert await orders.create_order(redis_client, buy(), 1000)
    before = await commands_run(redis_client)
    reply = await redis_client.fcall(
        "yq_order_update",
        *orders.update_arguments(
            "yq-cost", new_state=OrderState.SUBMITTING, fields={"submitted_at": "2026-12-08T01:00:00+00:00"},
            take_lease=("holder", 60_000), with_record=True,
        ),
    )  # fmt: skip
    spent = await counted(redis_client, before)
    assert spent.get("hgetall") == 1, spent
    assert orders.update_result(reply) == (True, OrderState.NEW)
    record = orders.record_result(reply)
    assert record is not None
    assert record == orders.parse_record(await redis_client.hgetall(keys.order("yq-cost")))
    assert (record.state, record.account, record.quantity) == (OrderState.SUBMITTING, "main", 3)

    # Not applied (SUBMITTING again): no record in the reply. A final change asked with its record
    # still leaves the open set.
    again = await redis_client.fcall(
        "yq_order_update", *orders.update_arguments("yq-cost", new_state=OrderState.SUBMITTING, with_record=True)
    )
    assert orders.update_result(again) == (False, OrderState.SUBMITTING)
    assert orders.record_result(again) is None
    assert await redis_client.sismember(keys.ORDERS_OPEN, "yq-cost")
    failed = await redis_client.fcall(
        "yq_order_update", *orders.update_arguments("yq-cost", new_state=OrderState.FAILED, with_record=True)
    )
    assert orders.record_result(failed) is not None
    assert not await redis_client.sismember(keys.ORDERS_OPEN, "yq-cost")
