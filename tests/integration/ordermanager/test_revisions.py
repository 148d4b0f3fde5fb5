"""A person's revisions through the order manager on a real Valkey: a buy revised to be worth more
passes the limits of a new buy, or is refused on the order and never reaches the gateway."""

from __future__ import annotations

import time
from decimal import Decimal

import orjson
import pytest
import redis.asyncio as aioredis

from ordermanager import exposure
from ordermanager.bootstrap import Parts
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.factories import all_orders, decision_of, make_signal, seed_account, stream
from tests.order_paths import walk_to
from yquant import controls, keys, orders, trading_state
from yquant.errors import MessageRefused
from yquant.messages import CancelOrder, OrderState, OrderType, ReviseOrder, SubmitOrder
from yquant.settings import Settings
from yquant.trading_state import TradingState


async def resting_buy(parts: Parts, client: aioredis.Redis, clock: ManualClock) -> str:
    """A limit buy of 10 at 70,000 the gateway has booked at KIS."""
    signal = make_signal(clock, quantity=Decimal(10), order_type=OrderType.LIMIT, price=Decimal(70_000))
    await parts.manager.handle_signal(signal, "c1")
    [record] = await all_orders(client)
    await walk_to(client, record.client_order_id, OrderState.ACCEPTED, fields={"broker_order_id": "0000001234"})
    return record.client_order_id


async def revisions_sent(client: aioredis.Redis) -> list[ReviseOrder]:
    return [m for m in await stream(client, keys.ORDERS) if isinstance(m, ReviseOrder)]


async def test_a_buy_revised_above_the_order_value_limit_is_refused_and_not_sent(
    parts: Parts, redis_client: aioredis.Redis, clock: ManualClock, om_settings: Settings
) -> None:
    await seed_account(redis_client)
    coid = await resting_buy(parts, redis_client, clock)
    await controls.set_risk_limits(redis_client, om_settings, {"max_order_value": {"KRW": "1000000"}})

    too_much = ReviseOrder(client_order_id=coid, account="main", limit_price=Decimal(110_000), by="admin")
    await parts.revisions.handle(too_much)
    record = await orders.get_order(redis_client, coid)
    assert record is not None
    assert record.reason == (
        "revision to price 110000 by admin refused: order value KRW 1,100,000 is above the limit KRW 1,000,000"
    )
    assert (record.limit_price, record.state) == (Decimal(70_000), OrderState.ACCEPTED)
    history = await orders.order_history(redis_client, coid)
    assert history[-1] == {"at": history[-1]["at"], "state": "REVISION REFUSED", "note": record.reason}
    assert await revisions_sent(redis_client) == []

    within = ReviseOrder(client_order_id=coid, account="main", limit_price=Decimal(90_000), by="admin")
    await parts.revisions.handle(within)
    assert await revisions_sent(redis_client) == [within]  # the gateway gets it as the person sent it


async def test_the_order_own_reservation_is_not_counted_twice_against_cash(
    parts: Parts, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    """700,000 held by the order itself, 1,000,000 cash: a revision to 90,000 (900,000) fits."""
    await seed_account(redis_client, cash=1_000_000)
    coid = await resting_buy(parts, redis_client, clock)
    await parts.revisions.handle(ReviseOrder(client_order_id=coid, account="main", limit_price=Decimal(90_000), by="a"))
    await parts.revisions.handle(
        ReviseOrder(client_order_id=coid, account="main", limit_price=Decimal(110_000), by="a")
    )
    [sent] = await revisions_sent(redis_client)
    assert sent.limit_price == Decimal(90_000)
    record = await orders.get_order(redis_client, coid)
    assert record is not None
    assert "order needs KRW 1,100,000 but KRW 1,000,000 is available" in record.reason


async def test_while_halted_only_a_lower_quantity_goes_and_a_wrong_type_is_refused(
    parts: Parts, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client)
    coid = await resting_buy(parts, redis_client, clock)
    await trading_state.set_trading_state(redis_client, TradingState.HALTED)
    await parts.revisions.handle(ReviseOrder(client_order_id=coid, account="main", limit_price=Decimal(69_000), by="a"))
    await parts.revisions.handle(ReviseOrder(client_order_id=coid, account="main", quantity=4, by="a"))
    assert [(m.limit_price, m.quantity) for m in await revisions_sent(redis_client)] == [(None, 4)]
    record = await orders.get_order(redis_client, coid)
    assert record is not None
    assert record.reason.endswith("trading is HALTED globally: a revision may only lower the quantity")

    with pytest.raises(MessageRefused):
        await parts.revisions.handle(CancelOrder(client_order_id=coid, account="main"))
    submit = [m for m in await stream(redis_client, keys.ORDERS) if isinstance(m, SubmitOrder)]
    assert len(submit) == 1  # the order's own command; nothing else was sent


async def test_a_dearer_buy_counts_at_its_new_price_until_the_gateway_records_the_revision(
    parts: Parts, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    """1,000,000 cash, a resting buy of 10 at 70,000 revised to 90,000: while the gateway carries
    the revision out, a signal's buy of 2 at 70,000 (140,000) must not spend the 200,000 the
    revision has taken; once the order says 90,000 the order's own price counts, as before."""
    await seed_account(redis_client, cash=1_000_000)
    coid = await resting_buy(parts, redis_client, clock)
    revision = ReviseOrder(client_order_id=coid, account="main", limit_price=Decimal(90_000), by="admin")
    await parts.revisions.handle(revision)
    assert await revisions_sent(redis_client) == [revision]

    meanwhile = make_signal(clock, quantity=Decimal(2))
    await parts.manager.handle_signal(meanwhile, "c2")
    decision = await decision_of(redis_client, meanwhile.signal_id)
    assert decision["reason_code"] == "INSUFFICIENT_CASH"
    assert "KRW 100,000 is available (KRW 900,000 held by pending buys)" in decision["reason"]

    # The gateway's record of the revision (OrderDesk.revise): the new price and the revision's id.
    await orders.update_order(
        redis_client,
        coid,
        only_in=(OrderState.ACCEPTED,),
        fields={"limit_price": "90000", "last_revision": revision.id},
        maxlen=100_000,
    )
    cheaper = ReviseOrder(client_order_id=coid, account="main", limit_price=Decimal(80_000), by="admin")
    await parts.revisions.handle(cheaper)  # a cheaper revision reserves nothing more
    after = make_signal(clock, quantity=Decimal(1))
    await parts.manager.handle_signal(after, "c3")
    assert (await decision_of(redis_client, after.signal_id))["status"] == "accepted"  # 70,000 of 100,000


async def test_a_dearer_revision_kis_never_carried_out_stops_counting_after_a_while(
    parts: Parts, redis_client: aioredis.Redis, clock: ManualClock
) -> None:
    await seed_account(redis_client, cash=1_000_000)
    coid = await resting_buy(parts, redis_client, clock)
    await parts.revisions.handle(
        ReviseOrder(client_order_id=coid, account="main", limit_price=Decimal(90_000), by="admin")
    )
    # As if passed on longer ago than a revision takes (refused by KIS, or its answer lost).
    [raw] = await redis_client.hvals(keys.reservations("main"))
    stale = {**orjson.loads(raw), "at": time.time() - exposure.REVISION_IN_FLIGHT_S - 1}
    await redis_client.hset(keys.reservations("main"), coid, orjson.dumps(stale))
    signal = make_signal(clock, quantity=Decimal(2))
    await parts.manager.handle_signal(signal, "c2")
    assert (await decision_of(redis_client, signal.signal_id))["status"] == "accepted"  # 140,000 of 300,000
