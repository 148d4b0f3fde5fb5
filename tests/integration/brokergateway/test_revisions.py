"""Revising an open limit order at KIS: the order follows its new KIS number, its later fills land on
it once (notices and the order list alike), and a revision KIS refuses leaves it as it was."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest

from brokergateway.kis import trading
from tests.integration.kissim.helpers import SimServer
from yquant import orders
from yquant.messages import (
    Market,
    OrderFilled,
    OrderRevised,
    OrderRevisionRefused,
    OrderState,
    OrderType,
    ReviseOrder,
)
from yquant.orders import OrderRecord

from .conftest import NO_POLLING, Harness, MakeHarness, new_account


def by_admin(coid: str, account: str, **change: object) -> ReviseOrder:
    """The command the order manager passes on after the dashboard's Revise."""
    return ReviseOrder.model_validate({"client_order_id": coid, "account": account, "by": "admin", **change})


async def fills(harness: Harness, coid: str) -> list[tuple[int, Decimal, int]]:
    return [
        (e.fill_quantity, e.fill_price, e.cumulative_quantity)
        for e in await harness.events(coid)
        if isinstance(e, OrderFilled)
    ]


async def revised_notes(harness: Harness, coid: str) -> list[str]:
    return [str(h.get("note")) for h in await orders.order_history(harness.client, coid) if h["state"] == "REVISED"]


async def resting_krx_buy(
    sim: SimServer, make_harness: MakeHarness, ticker: str, price: int, limit: int, quantity: int, **harness: Any
) -> tuple[Harness, str, OrderRecord]:
    """A gateway without polling (unless ``harness`` says otherwise) and its limit buy of ``ticker``
    resting at KIS below the price: the harness, the client order id, the accepted record."""
    sim.admin("/admin/price", {"ticker": ticker, "price": str(price)})
    gateway = await make_harness(sim, **{"config": NO_POLLING, **harness})
    command = await gateway.submit(
        ticker=ticker, quantity=quantity, order_type=OrderType.LIMIT, limit_price=Decimal(limit)
    )
    coid = command.client_order_id
    return gateway, coid, await gateway.state(coid, OrderState.ACCEPTED)


@contextmanager
def notices_dropped(sim: SimServer) -> Iterator[None]:
    """KIS's execution notices lost while inside: only the order list tells of fills."""
    sim.admin("/admin/ws", {"drop_notices": True})
    try:
        yield
    finally:
        sim.admin("/admin/ws", {"drop_notices": False})


async def test_a_domestic_revision_is_followed_under_its_new_number_and_filled_once(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    """Fills before and after the revision come by notice; a poll afterwards adds nothing."""
    harness, coid, record = await resting_krx_buy(sim, make_harness, "012330", 250000, 240000, 5)
    worker = harness.gateway.workers[harness.alias]
    first_number = record.broker_order_id
    sim.admin("/admin/fill", {"odno": first_number, "quantity": 2})
    await harness.until(lambda: fills(harness, coid), "the first fill")

    revision = by_admin(coid, harness.alias, limit_price=Decimal(245000))
    await harness.gateway.handle(revision)
    await harness.gateway.handle(revision)  # redelivered: carried out once
    record = await harness.order(coid)
    assert record.broker_order_id != first_number
    assert (record.limit_price, record.quantity, record.filled_quantity) == (Decimal(245000), 5, 2)
    at_kis = {o["odno"]: o for o in harness.sim_orders()}
    assert [o["kind"] for o in at_kis.values()] == ["new", "revise"]
    [revised] = [e for e in await harness.events(coid) if isinstance(e, OrderRevised)]
    assert (revised.broker_order_id, revised.limit_price, revised.quantity, revised.by) == (
        record.broker_order_id,
        Decimal(245000),
        5,
        "admin",
    )
    assert at_kis[record.broker_order_id]["original_odno"] == first_number
    assert Decimal(at_kis[record.broker_order_id]["price"]) == Decimal(245000)

    sim.admin("/admin/price", {"ticker": "012330", "price": "245000"})  # the revised buy fills at KIS
    record = await harness.state(coid, OrderState.FILLED)
    await harness.gateway.poller.poll(worker)  # the order list says the same: nothing new
    assert await fills(harness, coid) == [(2, Decimal(240000), 2), (3, Decimal(245000), 5)]
    assert (record.filled_quantity, record.average_price) == (5, Decimal(243000))
    assert await revised_notes(harness, coid) == [
        f"price KRW 240,000 -> KRW 245,000, revised by admin (KIS order {first_number} -> {record.broker_order_id})"
    ]


async def test_a_us_revision_found_by_polling_alone_fills_at_the_new_price(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    sim.admin("/admin/price", {"ticker": "ORCL", "price": "150.00", "market": "US"})
    harness = await make_harness(sim)
    with notices_dropped(sim):
        command = await harness.submit(
            market=Market.NASD, ticker="ORCL", quantity=6, order_type=OrderType.LIMIT, limit_price=Decimal("140.00")
        )
        coid = command.client_order_id
        record = await harness.state(coid, OrderState.ACCEPTED)
        first_number = record.broker_order_id
        sim.admin("/admin/fill", {"odno": first_number, "quantity": 1})
        await harness.state(coid, OrderState.PARTIALLY_FILLED)

        await harness.gateway.handle(by_admin(coid, harness.alias, limit_price=Decimal("145.50"), quantity=4))
        record = await harness.order(coid)
        assert (record.limit_price, record.quantity) == (Decimal("145.50"), 4)
        assert record.broker_order_id != first_number
        sim.admin("/admin/price", {"ticker": "ORCL", "price": "145.50", "market": "US"})
        record = await harness.state(coid, OrderState.FILLED)
    assert await fills(harness, coid) == [(1, Decimal("140.00"), 1), (3, Decimal("145.50"), 4)]
    assert record.filled_quantity == 4
    at_kis = {o["odno"]: o for o in harness.sim_orders()}
    assert at_kis[first_number]["remaining_quantity"] == 0
    assert at_kis[record.broker_order_id]["quantity"] == 3  # what was left of 4: the two dropped went first
    assert await revised_notes(harness, coid) == [
        "quantity 6 -> 4, revised by admin",
        f"price USD 140.00 -> USD 145.50, revised by admin (KIS order {first_number} -> {record.broker_order_id})",
    ]

    # The partial fill's sync may land first (quantity 1); the fill of the rest schedules another.
    async def position_of_four() -> dict[str, Any] | None:
        position = await harness.position("NASD", "ORCL")
        return position if position and position["quantity"] == 4 else None

    position = await harness.until(position_of_four, "US position synced after the last fill")
    assert (position["quantity"], position["currency"]) == (4, "USD")


async def test_a_revision_kis_refuses_leaves_the_order_as_it_was_with_kis_message(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness, coid, before = await resting_krx_buy(sim, make_harness, "000270", 100000, 95000, 3)
    worker = harness.gateway.workers[harness.alias]
    with notices_dropped(sim):
        sim.admin("/admin/fill", {"odno": before.broker_order_id})  # filled at KIS; the gateway has not seen it
        await harness.gateway.handle(by_admin(coid, harness.alias, limit_price=Decimal(96000)))

    record = await harness.order(coid)
    assert (record.state, record.limit_price, record.broker_order_id) == (
        OrderState.ACCEPTED,
        Decimal(95000),
        before.broker_order_id,
    )
    assert record.reason.startswith("revision to price 96000 by admin refused: KIS refused it: ")
    assert len(record.reason) > len("revision to price 96000 by admin refused: KIS refused it: ")
    refused = [h for h in await orders.order_history(harness.client, coid) if h["state"] == "REVISION REFUSED"]
    assert [h["note"] for h in refused] == [record.reason]
    [event] = [e for e in await harness.events(coid) if isinstance(e, OrderRevisionRefused)]
    assert event.reason == record.reason  # live pages are told
    await harness.gateway.poller.poll(worker)
    record = await harness.state(coid, OrderState.FILLED)
    assert await fills(harness, coid) == [(3, Decimal(95000), 3)]


async def test_a_fill_of_the_old_number_seen_only_after_the_revision_counts_once(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    """KIS filled part of the order just before it moved the rest to the new number; the gateway
    learns of that fill later, from the order list, under the old number."""
    harness, coid, accepted = await resting_krx_buy(sim, make_harness, "066570", 100000, 95000, 4)
    worker = harness.gateway.workers[harness.alias]
    first_number = accepted.broker_order_id
    with notices_dropped(sim):
        sim.admin("/admin/fill", {"odno": first_number, "quantity": 1})  # unseen by the gateway
        await harness.gateway.handle(by_admin(coid, harness.alias, limit_price=Decimal(96000)))
        record = await harness.order(coid)
        assert (record.broker_order_id != first_number, record.filled_quantity) == (True, 0)
        await harness.gateway.poller.poll(worker)
        record = await harness.state(coid, OrderState.PARTIALLY_FILLED)
        sim.admin("/admin/fill", {"odno": record.broker_order_id})
        await harness.gateway.poller.poll(worker)
        await harness.gateway.poller.poll(worker)
        record = await harness.state(coid, OrderState.FILLED)
    assert await fills(harness, coid) == [(1, Decimal(95000), 1), (3, Decimal(96000), 4)]
    assert (record.filled_quantity, record.average_price) == (4, Decimal("95750"))


async def test_a_revision_whose_answer_never_came_is_found_in_kis_order_list_and_followed(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    """KIS booked the revision but its answer was lost: the old number then shows nothing left,
    which must not read as a cancellation; the revise row naming it is adopted instead."""
    harness, coid, accepted = await resting_krx_buy(sim, make_harness, "051900", 300000, 290000, 3)
    worker = harness.gateway.workers[harness.alias]
    first_number = accepted.broker_order_id
    sim.admin("/admin/faults", {"drop_order_response": 1})
    try:
        await harness.gateway.handle(by_admin(coid, harness.alias, limit_price=Decimal(295000)))
    finally:
        sim.admin("/admin/faults/clear", {})
    record = await harness.order(coid)
    assert (record.broker_order_id, record.limit_price) == (first_number, Decimal(290000))
    assert record.reason.startswith("revision to price 295000 by admin unconfirmed: no answer from KIS")

    await harness.gateway.poller.poll(worker)
    record = await harness.order(coid)
    assert (record.state, record.reason) == (OrderState.ACCEPTED, "")  # not cancelled; confirmed
    assert (record.broker_order_id != first_number, record.limit_price) == (True, Decimal(295000))
    [revised] = [e for e in await harness.events(coid) if isinstance(e, OrderRevised)]
    assert (revised.by, revised.broker_order_id) == ("KIS order list", record.broker_order_id)

    sim.admin("/admin/price", {"ticker": "051900", "price": "295000"})
    record = await harness.state(coid, OrderState.FILLED)
    await harness.gateway.poller.poll(worker)
    assert await fills(harness, coid) == [(3, Decimal(295000), 3)]


@pytest.mark.parametrize("domain", ["real", "virtual"])
async def test_a_revision_left_unanswered_before_a_restart_is_followed_from_the_start(
    domain: str, sim: SimServer, virtual_sim: SimServer, make_harness: MakeHarness
) -> None:
    """The start-up pass reads KIS's open orders (inquire-psbl-rvsecncl on the real domain, the
    unfilled daily orders on the virtual one): the revised order open there is ours."""
    server = sim if domain == "real" else virtual_sim
    account = new_account(domain)
    server.admin("/admin/price", {"ticker": "028260", "price": "150000"})
    first = await make_harness(server, config=NO_POLLING, accounts={"main": account})
    command = await first.submit(ticker="028260", quantity=2, order_type=OrderType.LIMIT, limit_price=Decimal(140000))
    coid = command.client_order_id
    first_number = (await first.state(coid, OrderState.ACCEPTED)).broker_order_id
    server.admin("/admin/faults", {"drop_order_response": 1})
    try:
        await first.gateway.handle(by_admin(coid, first.alias, limit_price=Decimal(145000)))
    finally:
        server.admin("/admin/faults/clear", {})
    await first.close()

    harness = await make_harness(server, config=NO_POLLING, accounts={"main": account})
    record = await harness.until(
        lambda: _revised(harness, coid, first_number), "the revision followed at start", timeout_s=30
    )
    assert (record.state, record.limit_price) == (OrderState.ACCEPTED, Decimal(145000))
    assert harness.gateway.open_orders.summary() == "none"  # not counted as someone else's order
    server.admin("/admin/fill", {"odno": record.broker_order_id})
    await harness.gateway.poller.poll(harness.gateway.workers["main"])
    record = await harness.state(coid, OrderState.FILLED)
    assert await fills(harness, coid) == [(2, Decimal(145000), 2)]


async def _revised(harness: Harness, coid: str, first_number: str) -> OrderRecord | None:
    record = await harness.order(coid)
    return record if record.broker_order_id != first_number else None


class FillBeforeAmend(httpx.AsyncBaseTransport):
    """Real HTTP to the simulator; before the first revise/cancel POST goes out, KIS fills the
    order (``fill``), and the POST waits until the gateway has stored that fill (``stored``)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.fill: Callable[[], None] | None = None
        self.stored: Callable[[], Awaitable[bool]] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/order-rvsecncl") and self.fill is not None:
            fill, stored, self.fill = self.fill, self.stored, None
            await asyncio.to_thread(fill)
            assert stored is not None
            deadline = time.monotonic() + 30
            while not await stored():
                assert time.monotonic() < deadline, "the fill was never stored"
                await asyncio.sleep(0.02)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_an_order_filled_up_to_its_lowered_quantity_meanwhile_ends_filled(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    transport = FillBeforeAmend()
    harness, coid, accepted = await resting_krx_buy(sim, make_harness, "009150", 150000, 140000, 5, transport=transport)
    number = accepted.broker_order_id

    async def stored() -> bool:
        return (await harness.order(coid)).filled_quantity == 3

    transport.fill = lambda: sim.admin("/admin/fill", {"odno": number, "quantity": 3})
    transport.stored = stored
    await harness.gateway.handle(by_admin(coid, harness.alias, quantity=3))

    record = await harness.order(coid)
    assert (record.state, record.quantity, record.filled_quantity) == (OrderState.FILLED, 3, 3)
    [at_kis] = [o for o in harness.sim_orders() if o["odno"] == number]
    assert (at_kis["filled_quantity"], at_kis["remaining_quantity"]) == (3, 0)
    history = await orders.order_history(harness.client, coid)
    assert history[-1]["state"] == "FILLED"
    assert history[-1]["note"] == "quantity 5 -> 3, revised by admin; every share left is filled"


async def test_a_last_fill_reckoned_against_the_old_quantity_is_settled_by_the_next_poll(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    """The other order of the same race: the fill was reckoned against 5 and stored after the
    quantity became 3, so it says PARTIALLY_FILLED with 3 of 3. KIS's list shows the order done."""
    harness, coid, record = await resting_krx_buy(sim, make_harness, "010130", 500000, 480000, 5)
    worker = harness.gateway.workers[harness.alias]
    await trading.cancel_order(
        worker.kis, Market.KRX, "010130", record.broker_order_id, record.broker_org_no, 2, everything=False
    )  # KIS took 2 off (the revision's partial cancel) ...
    await orders.update_order(
        harness.client, coid, only_in=(OrderState.ACCEPTED,), fields={"quantity": 3}, maxlen=100_000
    )  # ... and the record says 3
    with notices_dropped(sim):
        sim.admin("/admin/fill", {"odno": record.broker_order_id, "quantity": 3})
    stale = record.model_copy(update={"quantity": 5})  # the fill as reckoned against the old quantity
    change = harness.gateway.fills.fill_change(worker, stale, 3, Decimal(1_440_000), "websocket")
    assert change is not None
    await harness.gateway.fills._store(worker, change)
    assert (await harness.order(coid)).state is OrderState.PARTIALLY_FILLED

    await harness.gateway.poller.poll(worker)
    record = await harness.order(coid)
    assert (record.state, record.quantity, record.filled_quantity) == (OrderState.FILLED, 3, 3)
    assert await fills(harness, coid) == [(3, Decimal(480000), 3)]
