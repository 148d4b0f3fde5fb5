"""Fills from WebSocket notices or REST polling, partial fills applied once, cancels confirmed."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx

from tests.integration.kissim.helpers import SimServer
from yquant import orders
from yquant.messages import CancelOrder, Market, OrderCancelled, OrderFilled, OrderState, OrderType, Side, SubmitOrder

from .conftest import NO_POLLING, MakeHarness


def by_admin(client_order_id: str, account: str) -> CancelOrder:
    """The command the dashboard's Cancel button appends."""
    return CancelOrder(client_order_id=client_order_id, account=account, reason="cancelled on the dashboard by admin")


def fills(events: list[object]) -> list[OrderFilled]:
    return [e for e in events if isinstance(e, OrderFilled)]


async def test_fill_delivered_only_by_websocket_ends_filled_and_updates_the_position(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    sim.admin("/admin/price", {"ticker": "105560", "price": "80000"})
    harness = await make_harness(sim, config=NO_POLLING)
    command = await harness.submit(ticker="105560", quantity=4, order_type=OrderType.LIMIT, limit_price=Decimal(79000))
    await harness.state(command.client_order_id, OrderState.ACCEPTED)
    sim.admin("/admin/price", {"ticker": "105560", "price": "79000"})  # the resting buy fills at the simulator

    record = await harness.state(command.client_order_id, OrderState.FILLED)
    assert (record.filled_quantity, record.average_price) == (4, Decimal(79000))
    assert record.fee == Decimal(47)  # 316,000 KRW x 0.015 %, floored to the won
    [fill] = fills(await harness.events(command.client_order_id))
    assert (fill.source, fill.fill_quantity, fill.cumulative_quantity) == ("websocket", 4, 4)
    assert record.last_fill_at == fill.occurred_at  # realised P/L replays the order at this time
    assert harness.tr_ids("/inquire-daily-ccld") == []  # no REST poll was involved
    position = await harness.until(lambda: harness.position("KRX", "105560"), "position synced")
    assert (position["quantity"], Decimal(position["average_price"])) == (4, Decimal(79000))


async def test_fill_delivered_only_by_polling_when_notices_are_dropped(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    sim.admin("/admin/price", {"ticker": "051910", "price": "300000"})
    harness = await make_harness(sim)
    sim.admin("/admin/ws", {"drop_notices": True})
    try:
        command = await harness.submit(
            ticker="051910", quantity=2, order_type=OrderType.LIMIT, limit_price=Decimal(299500)
        )
        await harness.state(command.client_order_id, OrderState.ACCEPTED)
        sim.admin("/admin/price", {"ticker": "051910", "price": "299500"})
        record = await harness.state(command.client_order_id, OrderState.FILLED)
    finally:
        sim.admin("/admin/ws", {"drop_notices": False})
    assert harness.gateway.feeds[0].connected  # the feed was up: the safety-net poll found the fill
    [fill] = fills(await harness.events(command.client_order_id))
    assert (fill.source, fill.fill_quantity, record.average_price) == ("poll", 2, Decimal(299500))
    position = await harness.until(lambda: harness.position("KRX", "051910"), "position synced")
    assert position["quantity"] == 2


async def test_partial_fills_reported_by_notices_and_polls_are_applied_once(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    sim.admin("/admin/price", {"ticker": "035420", "price": "190000"})
    harness = await make_harness(sim, config=NO_POLLING)
    worker = harness.gateway.workers[harness.alias]
    command = await harness.submit(
        ticker="035420", quantity=10, order_type=OrderType.LIMIT, limit_price=Decimal(189000)
    )
    record = await harness.state(command.client_order_id, OrderState.ACCEPTED)

    sim.admin("/admin/fill", {"odno": record.broker_order_id, "quantity": 4})
    await harness.state(command.client_order_id, OrderState.PARTIALLY_FILLED)
    await harness.gateway.poller.poll(worker)  # KIS's list says the same 4 shares: nothing new
    sim.admin("/admin/fill", {"odno": record.broker_order_id, "quantity": 6})
    record = await harness.state(command.client_order_id, OrderState.FILLED)
    await harness.gateway.poller.poll(worker)

    events = fills(await harness.events(command.client_order_id))
    assert [(e.fill_quantity, e.cumulative_quantity, e.remaining_quantity) for e in events] == [(4, 4, 6), (6, 10, 0)]
    assert {e.source for e in events} == {"websocket"}
    assert (record.filled_quantity, record.average_price) == (10, Decimal(189000))
    assert record.fee == sum((e.fee for e in events), Decimal(0))


async def test_us_fill_found_by_polling_the_overseas_order_list(sim: SimServer, make_harness: MakeHarness) -> None:
    sim.admin("/admin/price", {"ticker": "NVDA", "price": "120.00", "market": "US"})
    harness = await make_harness(sim)
    sim.admin("/admin/ws", {"drop_notices": True})
    try:
        command = await harness.submit(
            market=Market.NASD, ticker="NVDA", quantity=3, order_type=OrderType.LIMIT, limit_price=Decimal("119.50")
        )
        await harness.state(command.client_order_id, OrderState.ACCEPTED)
        sim.admin("/admin/price", {"ticker": "NVDA", "price": "119.50", "market": "US"})
        record = await harness.state(command.client_order_id, OrderState.FILLED)
    finally:
        sim.admin("/admin/ws", {"drop_notices": False})
    assert record.average_price == Decimal("119.5")
    assert set(harness.tr_ids("/inquire-ccnl")) == {"TTTS3035R"}
    position = await harness.until(lambda: harness.position("NASD", "NVDA"), "US position synced")
    assert (position["quantity"], position["currency"]) == (3, "USD")


async def test_us_fill_delivered_only_by_websocket_in_kis_current_notice_layout(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    """The simulator sends KIS's 25-field US notice with the price in implied decimals: the fill
    comes from the notice at its real price, not from a poll after a notice that did not fit."""
    sim.admin("/admin/price", {"ticker": "AMD", "price": "160.00", "market": "US"})
    harness = await make_harness(sim, config=NO_POLLING)
    command = await harness.submit(
        market=Market.NASD, ticker="AMD", quantity=2, order_type=OrderType.LIMIT, limit_price=Decimal("159.25")
    )
    await harness.state(command.client_order_id, OrderState.ACCEPTED)
    sim.admin("/admin/price", {"ticker": "AMD", "price": "159.25", "market": "US"})
    record = await harness.state(command.client_order_id, OrderState.FILLED)
    assert (record.filled_quantity, record.average_price) == (2, Decimal("159.25"))
    [fill] = fills(await harness.events(command.client_order_id))
    assert (fill.source, fill.fill_quantity, fill.fill_price) == ("websocket", 2, Decimal("159.25"))
    assert harness.tr_ids("/inquire-ccnl") == []  # no REST poll was involved


async def test_cancel_of_a_resting_order_is_confirmed_by_kis(sim: SimServer, make_harness: MakeHarness) -> None:
    sim.admin("/admin/price", {"ticker": "068270", "price": "180000"})
    harness = await make_harness(sim)
    command = await harness.submit(ticker="068270", quantity=5, order_type=OrderType.LIMIT, limit_price=Decimal(170000))
    record = await harness.state(command.client_order_id, OrderState.ACCEPTED)
    sim.admin("/admin/fill", {"odno": record.broker_order_id, "quantity": 2})
    await harness.state(command.client_order_id, OrderState.PARTIALLY_FILLED)

    why = "cancelled on the dashboard by admin"
    await harness.gateway.handle(
        CancelOrder(client_order_id=command.client_order_id, account=harness.alias, reason=why)
    )
    record = await harness.state(command.client_order_id, OrderState.CANCELLED)
    [cancelled] = [e for e in await harness.events(command.client_order_id) if isinstance(e, OrderCancelled)]
    assert (cancelled.cancelled_quantity, record.filled_quantity) == (3, 2)
    assert (cancelled.reason, record.reason) == (why, why)  # the order list says who cancelled it
    assert set(harness.tr_ids("/order-rvsecncl")) == {"TTTC0013U"}


async def test_cancel_of_an_order_not_yet_sent_cancels_it_and_it_is_never_sent(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(sim)
    command = SubmitOrder(
        client_order_id="yq-queued-000660", account=harness.alias, market=Market.KRX, ticker="000660",
        side=Side.BUY, quantity=1, strategy="test",
    )  # fmt: skip
    assert await orders.create_order(harness.client, command, 100_000)  # NEW: queued behind the pacing

    await harness.gateway.handle(by_admin(command.client_order_id, harness.alias))
    record = await harness.state(command.client_order_id, OrderState.CANCELLED)
    assert record.reason == "cancelled on the dashboard by admin, before it was sent to KIS"
    await harness.gateway.handle(command)  # its command is handled after all
    assert (await harness.order(command.client_order_id)).state is OrderState.CANCELLED
    assert harness.tr_ids("/order-cash") == []
    assert [o for o in harness.sim_orders() if o["ticker"] == "000660"] == []


class HeldOrderPost(httpx.AsyncBaseTransport):
    """Real HTTP to the simulator; the first order POST waits until the test lets it go."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/order-cash") and not self.release.is_set():
            self.reached.set()
            await self.release.wait()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_cancel_while_the_order_is_being_sent_is_carried_out_once_kis_answers(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    sim.admin("/admin/price", {"ticker": "035720", "price": "50000"})
    held = HeldOrderPost()
    harness = await make_harness(sim, transport=held)
    submitting = asyncio.create_task(
        harness.submit(ticker="035720", quantity=3, order_type=OrderType.LIMIT, limit_price=Decimal(45000))
    )
    await asyncio.wait_for(held.reached.wait(), 30)  # SUBMITTING, its POST on the way
    [record] = [r for r in await orders.open_orders(harness.client) if r.ticker == "035720"]
    assert record.state is OrderState.SUBMITTING
    await harness.gateway.handle(by_admin(record.client_order_id, harness.alias))
    assert (await harness.order(record.client_order_id)).state is OrderState.SUBMITTING  # nothing to cancel yet

    held.release.set()
    await asyncio.wait_for(submitting, 30)
    record = await harness.state(record.client_order_id, OrderState.CANCELLED)
    assert record.reason == "cancelled on the dashboard by admin"
    assert set(harness.tr_ids("/order-rvsecncl")) == {"TTTC0013U"}


async def test_an_accepted_order_the_gateway_lost_sight_of_is_followed_again_and_its_fill_recorded(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    # Valkey frozen as the acceptance is written: the write lands when Valkey answers again, but
    # the gateway saw it time out and never began following the order. Modelled here by dropping
    # the order from the gateway's view right after it was accepted, with notices lost too.
    sim.admin("/admin/price", {"ticker": "000660", "price": "180000"})
    harness = await make_harness(sim)
    worker = harness.gateway.workers[harness.alias]
    sim.admin("/admin/ws", {"drop_notices": True})
    try:
        command = await harness.submit(
            ticker="000660", quantity=3, order_type=OrderType.LIMIT, limit_price=Decimal(179000)
        )
        await harness.state(command.client_order_id, OrderState.ACCEPTED)
        harness.gateway.fills.forget(worker, command.client_order_id)
        sim.admin("/admin/price", {"ticker": "000660", "price": "179000"})  # it fills at KIS
        await harness.gateway.poller.poll(worker)
        assert (await harness.order(command.client_order_id)).state is OrderState.ACCEPTED  # nobody follows it

        await harness.gateway.sweep_open_orders()
        record = await harness.state(command.client_order_id, OrderState.FILLED)
    finally:
        sim.admin("/admin/ws", {"drop_notices": False})
    assert (record.filled_quantity, record.average_price) == (3, Decimal(179000))
    [fill] = fills(await harness.events(command.client_order_id))
    assert (fill.source, fill.fill_quantity) == ("poll", 3)
