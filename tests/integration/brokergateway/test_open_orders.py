"""KIS's open orders against our records at start: ours followed or settled from the order lists
exactly once, others left alone and reported (brokergateway/open_at_kis.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from tests.integration.kissim.helpers import Kis, SimServer
from yquant import orders, portfolio
from yquant.messages import OrderFilled, OrderState, OrderType
from yquant.settings import AccountSettings

from .conftest import NO_POLLING, Harness, MakeHarness, new_account


def unowned_gauge(alias: str, market: str) -> float | None:
    return REGISTRY.get_sample_value("yquant_gateway_unowned_open_orders", {"account": alias, "market": market})


async def resting_order(sim: SimServer, make_harness: MakeHarness, account: AccountSettings) -> tuple[str, str]:
    """A limit buy of 3 resting at KIS, placed by a gateway that then stops: (client order id, odno)."""
    sim.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    first = await make_harness(sim, config=NO_POLLING, accounts={"main": account})
    command = await first.submit(quantity=3, order_type=OrderType.LIMIT, limit_price=Decimal(60000))
    record = await first.state(command.client_order_id, OrderState.ACCEPTED)
    await first.close()
    return command.client_order_id, record.broker_order_id


async def restart(sim: SimServer, make_harness: MakeHarness, account: AccountSettings) -> Harness:
    """A gateway that never polls on its own: whatever it learns at start, the start taught it."""
    return await make_harness(sim, config=NO_POLLING, accounts={"main": account})


async def test_order_partly_filled_while_the_gateway_was_down_is_recognised_open_at_restart(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    account = new_account()
    coid, odno = await resting_order(sim, make_harness, account)
    sim.admin("/admin/fill", {"odno": odno, "quantity": 1})

    harness = await restart(sim, make_harness, account)
    record = await harness.state(coid, OrderState.PARTIALLY_FILLED)

    assert (record.filled_quantity, record.remaining_quantity) == (1, 2)
    assert record.average_price == Decimal(60000)
    assert coid in harness.gateway.workers["main"].tracking  # followed until KIS ends it
    [at_kis] = [o for o in harness.sim_orders() if int(o["odno"]) == int(odno)]
    assert at_kis["remaining_quantity"] == 2
    assert "psbl-rvsecncl" in " ".join(r.url.path for r in harness.sent)


async def test_order_filled_while_the_gateway_was_down_becomes_filled_exactly_once(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    account = new_account()
    coid, odno = await resting_order(sim, make_harness, account)
    sim.admin("/admin/fill", {"odno": odno})

    harness = await restart(sim, make_harness, account)
    # FILLED from the start-up pass alone: this gateway polls by itself only an hour after it started.
    record = await harness.state(coid, OrderState.FILLED)
    assert "psbl-rvsecncl" in " ".join(r.url.path for r in harness.sent)
    # Every other path that could apply the same fill, once more: it must not apply again.
    worker = harness.gateway.workers["main"]
    await harness.gateway.open_orders.reconcile(worker)
    await harness.gateway.poller.poll(worker)

    assert record.filled_quantity == 3
    fills = [e for e in await harness.events(coid) if isinstance(e, OrderFilled)]
    assert [(e.source, e.fill_quantity, e.cumulative_quantity) for e in fills] == [("poll", 3, 3)]
    assert (await harness.order(coid)).filled_quantity == 3


async def test_order_placed_after_the_start_is_left_to_its_notices_and_polls_by_the_start_up_pass(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    """The start-up pass may read KIS's list late (a slow token, retries), after orders placed since
    the start had fills at KIS: those fills are their notices' and polls' to apply, not its own."""
    account = new_account()
    sim.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    harness = await make_harness(sim, config=NO_POLLING, accounts={"main": account})
    check = harness.gateway.open_orders
    await harness.until(lambda: "main" in check.unowned, "start-up check done")
    worker = harness.gateway.workers["main"]
    sim.admin("/admin/ws", {"drop_notices": True})
    try:
        command = await harness.submit(quantity=3, order_type=OrderType.LIMIT, limit_price=Decimal(60000))
        accepted = await harness.state(command.client_order_id, OrderState.ACCEPTED)
        sim.admin("/admin/fill", {"odno": accepted.broker_order_id, "quantity": 1})
        await check.reconcile(worker)  # the start-up pass, reading KIS's list only now
        assert (await harness.order(command.client_order_id)).state is OrderState.ACCEPTED
        await harness.gateway.poller.poll(worker)
    finally:
        sim.admin("/admin/ws", {"drop_notices": False})

    record = await harness.state(command.client_order_id, OrderState.PARTIALLY_FILLED)
    assert (record.filled_quantity, record.remaining_quantity) == (1, 2)
    fills = [e for e in await harness.events(command.client_order_id) if isinstance(e, OrderFilled)]
    assert [(e.source, e.fill_quantity) for e in fills] == [("poll", 1)]
    assert unowned_gauge("main", "KRX") == 0  # ours, though not the start-up pass's to settle


@pytest.mark.parametrize(
    ("domain", "krx_path", "krx_tr_id", "us_tr_id"),
    [
        ("real", "/inquire-psbl-rvsecncl", "TTTC0084R", "TTTS3018R"),
        ("virtual", "/inquire-daily-ccld", "VTTC0081R", "VTTS3018R"),  # no psbl-rvsecncl on the virtual domain
    ],
)
async def test_each_domain_reads_its_open_orders_with_its_own_calls(
    domain: str,
    krx_path: str,
    krx_tr_id: str,
    us_tr_id: str,
    sim: SimServer,
    virtual_sim: SimServer,
    make_harness: MakeHarness,
) -> None:
    server = sim if domain == "real" else virtual_sim
    account = new_account(domain)
    coid, _ = await resting_order(server, make_harness, account)

    harness = await restart(server, make_harness, account)
    await harness.until(lambda: "main" in harness.gateway.open_orders.unowned, "start-up check done")

    assert set(harness.tr_ids(krx_path)) == {krx_tr_id}
    assert set(harness.tr_ids("/inquire-nccs")) == {us_tr_id}
    if domain == "virtual":
        assert harness.tr_ids("/inquire-psbl-rvsecncl") == []
        assert {r.url.params["CCLD_DVSN"] for r in harness.sent if r.url.path.endswith(krx_path)} == {"02"}
    assert unowned_gauge("main", "KRX") == 0  # our resting order is not counted as not ours
    assert (await harness.order(coid)).state is OrderState.ACCEPTED


async def test_order_placed_at_kis_outside_yquant_is_counted_shown_and_left_alone(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    account = new_account()
    sim.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    sim.admin("/admin/price", {"ticker": "AAPL", "price": "190.00", "market": "US"})
    app = Kis(sim, cano=account.cano).login()  # KIS's own app, say
    try:
        assert app.order_cash("buy", "005930", 2, price="61000").json()["rt_cd"] == "0"
        assert app.us_order("TTTT1002U", "AAPL", 1, "150.00").json()["rt_cd"] == "0"
    finally:
        app.close()

    harness = await make_harness(sim, config=NO_POLLING, accounts={"main": account})
    await harness.until(lambda: unowned_gauge("main", "KRX") == 1 and unowned_gauge("main", "US") == 1, "counted")

    snapshot = await harness.until(lambda: portfolio.get_account(harness.client, "main"), "account synced")
    assert snapshot is not None
    shown = sorted((o.market, o.ticker, o.side, o.remaining_quantity, o.price) for o in snapshot.unowned_open_orders)
    assert shown == [("KRX", "005930", "buy", 2, Decimal(61000)), ("US", "AAPL", "buy", 1, Decimal("150"))]
    assert harness.gateway.health()["unowned_open_orders"] == "main:KRX=1,main:US=1"
    # Left alone: still open at KIS, nothing cancelled or revised, no order record of ours.
    at_kis = harness.sim_orders()
    assert sorted((o["ticker"], o["kind"], o["remaining_quantity"]) for o in at_kis) == [
        ("005930", "new", 2),
        ("AAPL", "new", 1),
    ]
    assert not [r for r in await orders.open_orders(harness.client) if r.account == "main"]
    assert not harness.gateway.workers["main"].tracking


async def test_our_own_open_order_is_not_counted_as_unowned(sim: SimServer, make_harness: MakeHarness) -> None:
    account = new_account()
    coid, _ = await resting_order(sim, make_harness, account)
    harness = await restart(sim, make_harness, account)
    await harness.until(lambda: unowned_gauge("main", "KRX") == 0, "checked")
    assert coid in harness.gateway.workers["main"].tracking
    assert (await harness.order(coid)).state is OrderState.ACCEPTED
