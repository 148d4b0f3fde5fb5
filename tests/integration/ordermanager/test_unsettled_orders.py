"""The account's unsettled orders the risk checks read in one HGETALL stay exactly what reading
every order record would give, through partial fills, cancels, rejections, redeliveries and syncs.

Every change goes through the real server functions on a real Valkey; the reference is the view
built from all of the account's records, as the order manager read it before.
"""

from __future__ import annotations

from decimal import Decimal

import redis.asyncio as aioredis

from ordermanager import exposure
from ordermanager.exposure import AccountReader, AccountView
from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.factories import all_orders, make_position, make_signal, reject, seed_account
from tests.order_paths import walk_to
from yquant import keys, orders
from yquant.messages import Market, OrderState, SignalAction


async def views(client: aioredis.Redis, account: str = "main") -> tuple[AccountView, AccountView]:
    """(the view as a signal reads it, the view from every record of the account)."""
    read = (await AccountReader().read(client, account, [])).view
    records = [r for r in await all_orders(client) if r.account == account]
    return read, AccountView(account, read.snapshot, read.synced_at, records, read.estimates)


async def assert_same(client: aioredis.Redis) -> AccountView:
    read, reference = await views(client)
    for ticker in ("005930", "000660"):
        assert read.buy_exposure(Market.KRX, ticker, Decimal(70_000)) == reference.buy_exposure(
            Market.KRX, ticker, Decimal(70_000)
        )
        assert read.sellable(Market.KRX, ticker) == reference.sellable(Market.KRX, ticker)
    assert read.pending_buys("KRW") == reference.pending_buys("KRW")
    return read


async def test_pending_buys_and_sells_stay_exact_as_orders_change(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, positions=[make_position("000660", quantity=20)])
    buys = [make_signal(clock, ticker="005930", quantity=Decimal(n)) for n in (3, 4, 5)]
    sell = make_signal(clock, ticker="000660", action=SignalAction.SELL, quantity=Decimal(6))
    for signal in [*buys, sell]:
        await manager.handle_signal(signal, "c")
    coids = {o.quantity: o.client_order_id for o in await all_orders(redis_client)}
    view = await assert_same(redis_client)
    assert view.pending_buys("KRW") == Decimal(70_000 * 12)
    assert view.sellable(Market.KRX, "000660") == 14

    # A partial fill at another price, then the rest cancelled.
    await walk_to(
        redis_client, coids[3], OrderState.PARTIALLY_FILLED, fields={"filled_quantity": 1, "average_price": "70100"}
    )
    assert (await assert_same(redis_client)).pending_buys("KRW") == Decimal(70_100 + 70_000 * 11)
    await walk_to(redis_client, coids[3], OrderState.CANCELLED)
    assert (await assert_same(redis_client)).pending_buys("KRW") == Decimal(70_100 + 70_000 * 9)
    # A rejection releases all of its cash; a partial sell holds only what it sold once cancelled.
    await reject(redis_client, coids[4], "no")
    assert (await assert_same(redis_client)).pending_buys("KRW") == Decimal(70_100 + 70_000 * 5)
    await walk_to(redis_client, coids[6], OrderState.PARTIALLY_FILLED, fields={"filled_quantity": 2})
    await walk_to(redis_client, coids[6], OrderState.CANCELLED)
    assert (await assert_same(redis_client)).sellable(Market.KRX, "000660") == 18

    # A crash between steps redelivers what was done already: the same signal, the same fill.
    await manager.handle_signal(buys[2], "c")
    await walk_to(redis_client, coids[5], OrderState.ACCEPTED, fields={"broker_order_id": "1"})
    for _ in range(2):
        await orders.update_order(
            redis_client,
            coids[5],
            new_state=OrderState.FILLED,
            fields={"filled_quantity": 5, "average_price": "69900"},
            condition=("filled_quantity", "0"),
        )
    assert (await assert_same(redis_client)).pending_buys("KRW") == Decimal(70_100 + 69_900 * 5)

    # The next sync reflects all of it: every order is final, none is held any more, none is kept.
    clock.advance(1)
    await seed_account(redis_client, positions=[make_position("000660", quantity=18)])
    view = await assert_same(redis_client)
    assert view.pending_buys("KRW") == 0
    assert view.sellable(Market.KRX, "000660") == 18
    assert await redis_client.hgetall(keys.unsettled_orders("main")) == {}


async def test_an_open_order_stays_counted_across_a_sync(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    signal = make_signal(clock, quantity=Decimal(2))
    await manager.handle_signal(signal, "c")
    await seed_account(redis_client)  # a sync while the buy is open: it still holds its cash
    view = await assert_same(redis_client)
    assert view.pending_buys("KRW") == Decimal(140_000)
    assert len(await redis_client.hgetall(keys.unsettled_orders("main"))) == 1


async def test_open_orders_recorded_without_a_copy_are_added_at_start(
    manager: OrderManager, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    await manager.handle_signal(make_signal(clock, quantity=Decimal(2)), "c")
    await redis_client.delete(keys.unsettled_orders("main"))  # as before the functions kept copies
    assert (await views(redis_client))[0].pending_buys("KRW") == 0
    assert await exposure.backfill_unsettled(redis_client) == 1
    assert (await assert_same(redis_client)).pending_buys("KRW") == Decimal(140_000)
    assert await exposure.backfill_unsettled(redis_client) == 0  # a copy there is never replaced
