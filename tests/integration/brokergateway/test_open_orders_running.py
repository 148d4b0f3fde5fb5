"""KIS's open-orders list while the gateway runs: the fill poll and reconciliation recognise an order of
ours still open at KIS from it when notices are lost and the daily order list fails, look up only the
orders it no longer lists, read it once per account per pass, and recount the orders there that are
not ours (brokergateway/open_list.py, polling.py, reconcile.py, open_at_kis.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from tests.integration.kissim.helpers import Kis, SimServer
from yquant import portfolio
from yquant.messages import Market, OrderAccepted, OrderFilled, OrderState, OrderType

from .conftest import NO_POLLING, Harness, MakeHarness, new_account

REAL_DAILY = "TTTC0081R"  # inquire-daily-ccld; the real domain's open orders are inquire-psbl-rvsecncl
VIRTUAL_US_DAILY = "VTTS3035R"  # inquire-ccnl; the US open orders are inquire-nccs (VTTS3018R)
ALWAYS = 100_000  # a burst no test outlasts: the call fails until the faults are cleared


def unowned_gauge(alias: str, market: str) -> float | None:
    return REGISTRY.get_sample_value("yquant_gateway_unowned_open_orders", {"account": alias, "market": market})


@pytest.fixture(autouse=True)
def clear_faults(sim: SimServer, virtual_sim: SimServer) -> Iterator[None]:
    yield
    for server in (sim, virtual_sim):
        server.admin("/admin/faults/clear", {})
        server.admin("/admin/ws", {"drop_notices": False})


def fail_daily_list(server: SimServer, tr_id: str) -> None:
    server.admin("/admin/faults", {"http500_tr_ids": {tr_id: ALWAYS}})


async def resting(harness: Harness, market: Market = Market.KRX, quantity: int = 3) -> tuple[str, str]:
    """A limit buy of ours resting at KIS: (client order id, KIS's order number)."""
    if market is Market.KRX:
        command = await harness.submit(quantity=quantity, order_type=OrderType.LIMIT, limit_price=Decimal(60000))
    else:
        command = await harness.submit(
            market=market, ticker="AAPL", quantity=quantity, order_type=OrderType.LIMIT, limit_price=Decimal(150)
        )
    record = await harness.state(command.client_order_id, OrderState.ACCEPTED)
    return command.client_order_id, record.broker_order_id


def prices(server: SimServer) -> None:
    server.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    server.admin("/admin/price", {"ticker": "AAPL", "price": "190.00", "market": "US"})


LISTS = ("inquire-psbl-rvsecncl", "inquire-daily-ccld", "inquire-nccs", "inquire-ccnl")


def lists_asked(harness: Harness, since: int) -> list[str]:
    """The order lists the gateway read from its ``since``-th request on (syncs and quotes aside)."""
    paths = [r.url.path.rsplit("/", 1)[-1] for r in harness.sent[since:]]
    return [path for path in paths if path in LISTS]


async def fills_of(harness: Harness, coid: str) -> list[tuple[str, int, int]]:
    return [
        (e.source, e.fill_quantity, e.cumulative_quantity)
        for e in await harness.events(coid)
        if isinstance(e, OrderFilled)
    ]


@pytest.mark.parametrize(
    ("domain", "market", "daily_tr_id"),
    [("real", Market.KRX, REAL_DAILY), ("virtual", Market.NASD, VIRTUAL_US_DAILY)],
)
async def test_order_open_at_kis_is_settled_from_the_open_list_when_notices_are_lost_and_the_daily_list_fails(
    domain: str, market: Market, daily_tr_id: str, sim: SimServer, virtual_sim: SimServer, make_harness: MakeHarness
) -> None:
    server = sim if domain == "real" else virtual_sim
    prices(server)
    harness = await make_harness(server, accounts={"main": new_account(domain)})  # polls on its own
    await harness.until(lambda: "main" in harness.gateway.open_orders.unowned, "start-up check done")
    started = len(harness.sent)
    coid, odno = await resting(harness, market)
    server.admin("/admin/ws", {"drop_notices": True})
    fail_daily_list(server, daily_tr_id)

    server.admin("/admin/fill", {"odno": odno, "quantity": 1})
    record = await harness.state(coid, OrderState.PARTIALLY_FILLED)
    assert (record.filled_quantity, record.remaining_quantity) == (1, 2)
    # The polls ask for the open orders of the order's market only (virtual: per US exchange).
    exchanges = {r.url.params["OVRS_EXCG_CD"] for r in harness.sent[started:] if r.url.path.endswith("/inquire-nccs")}
    assert exchanges == ({"NASD"} if market.is_us else set())

    # Once KIS no longer lists it, it is looked up in the daily list: filled once the list answers.
    server.admin("/admin/fill", {"odno": odno})
    await harness.until(lambda: server.admin("/admin/stats")["faults"]["http500_tr_ids"][daily_tr_id] < ALWAYS, "asked")
    assert (await harness.order(coid)).state is OrderState.PARTIALLY_FILLED
    server.admin("/admin/faults/clear", {})
    record = await harness.state(coid, OrderState.FILLED)
    assert record.filled_quantity == 3
    assert await fills_of(harness, coid) == [("poll", 1, 1), ("poll", 2, 3)]


async def test_a_poll_reads_the_open_list_once_for_all_orders_and_the_daily_list_only_for_those_it_does_not_list(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    prices(sim)
    harness = await make_harness(sim, config=NO_POLLING, accounts={"main": new_account()})
    await harness.until(lambda: "main" in harness.gateway.open_orders.unowned, "start-up check done")
    worker = harness.gateway.workers["main"]
    sim.admin("/admin/ws", {"drop_notices": True})  # the fills below are the poll's to find
    placed = [await resting(harness) for _ in range(3)]
    sim.admin("/admin/fill", {"odno": placed[0][1], "quantity": 1})

    before = len(harness.sent)
    await harness.gateway.poller.poll(worker)
    assert lists_asked(harness, before) == ["inquire-psbl-rvsecncl"]  # one list for three orders, no daily list
    assert (await harness.order(placed[0][0])).filled_quantity == 1

    sim.admin("/admin/fill", {"odno": placed[1][1]})  # filled: no longer open at KIS
    before = len(harness.sent)
    await harness.gateway.poller.poll(worker)
    asked = lists_asked(harness, before)
    assert asked[:1] + sorted(set(asked[1:])) == ["inquire-psbl-rvsecncl", "inquire-daily-ccld"]
    assert (await harness.order(placed[1][0])).state is OrderState.FILLED
    assert (await harness.order(placed[2][0])).state is OrderState.ACCEPTED

    await harness.gateway.poller.poll(worker)  # the same again: nothing applied twice
    assert await fills_of(harness, placed[0][0]) == [("poll", 1, 1)]
    assert await fills_of(harness, placed[1][0]) == [("poll", 3, 3)]


@pytest.mark.parametrize(
    ("domain", "market", "daily_tr_id"),
    [("real", Market.KRX, REAL_DAILY), ("virtual", Market.NASD, VIRTUAL_US_DAILY)],
)
async def test_order_whose_answer_is_lost_is_adopted_from_the_open_list_when_the_daily_list_fails(
    domain: str, market: Market, daily_tr_id: str, sim: SimServer, virtual_sim: SimServer, make_harness: MakeHarness
) -> None:
    server = sim if domain == "real" else virtual_sim
    prices(server)
    harness = await make_harness(server, config=NO_POLLING, accounts={"main": new_account(domain)})
    fail_daily_list(server, daily_tr_id)
    server.admin("/admin/faults", {"drop_order_response": 1})
    if market is Market.KRX:
        command = await harness.submit(quantity=2, order_type=OrderType.LIMIT, limit_price=Decimal(60000))
    else:
        command = await harness.submit(
            market=market, ticker="AAPL", quantity=2, order_type=OrderType.LIMIT, limit_price=Decimal(150)
        )

    record = await harness.state(command.client_order_id, OrderState.ACCEPTED, OrderState.FAILED)
    assert record.state is OrderState.ACCEPTED, record.reason
    [booked] = [o for o in harness.sim_orders() if o["response_dropped"]]
    assert int(record.broker_order_id) == int(booked["odno"])
    accepted = [e for e in await harness.events(command.client_order_id) if isinstance(e, OrderAccepted)]
    assert [e.reconciled for e in accepted] == [True]
    assert len(harness.sim_orders()) == 1  # adopted, never sent again
    assert server.admin("/admin/stats")["faults"]["http500_tr_ids"][daily_tr_id] < ALWAYS  # it was asked


async def test_orders_placed_outside_yquant_are_recounted_by_each_poll_of_their_market(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    account = new_account()
    prices(sim)
    app = Kis(sim, cano=account.cano).login()  # KIS's own app, say
    try:
        assert app.us_order("TTTT1002U", "AAPL", 1, "150.00").json()["rt_cd"] == "0"
        harness = await make_harness(sim, config=NO_POLLING, accounts={"main": account})
        await harness.until(lambda: unowned_gauge("main", "US") == 1, "the start-up check counted the US order")
        assert unowned_gauge("main", "KRX") == 0
        worker = harness.gateway.workers["main"]
        await resting(harness)  # ours: the poll has a KRX order to follow

        placed = app.order_cash("buy", "005930", 2, price="61000").json()
    finally:
        app.close()
    assert placed["rt_cd"] == "0"
    await harness.gateway.poller.poll(worker)

    assert unowned_gauge("main", "KRX") == 1
    assert unowned_gauge("main", "US") == 1  # not read by a KRX-only poll: as last found
    snapshot = await harness.until(lambda: portfolio.get_account(harness.client, "main"), "account synced")
    assert sorted((o.market, o.ticker, o.remaining_quantity) for o in snapshot.unowned_open_orders) == [
        ("KRX", "005930", 2),
        ("US", "AAPL", 1),
    ]
    assert harness.gateway.health()["unowned_open_orders"] == "main:KRX=1,main:US=1"

    sim.admin("/admin/fill", {"odno": placed["output"]["ODNO"]})  # no longer open at KIS
    await harness.gateway.poller.poll(worker)
    assert unowned_gauge("main", "KRX") == 0
    snapshot = await portfolio.get_account(harness.client, "main")
    assert snapshot is not None
    assert [(o.market, o.ticker) for o in snapshot.unowned_open_orders] == [("US", "AAPL")]


async def test_an_order_placed_outside_yquant_while_it_runs_is_counted_with_the_periodic_sync(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    """No order of ours to poll: the account sync's pace still reads KIS's list."""
    account = new_account()
    prices(sim)
    config = replace(NO_POLLING, sync_interval_s=0.5)
    harness = await make_harness(sim, config=config, accounts={"main": account})
    await harness.until(lambda: unowned_gauge("main", "KRX") == 0, "the start-up check found none")
    assert not harness.gateway.workers["main"].tracking

    app = Kis(sim, cano=account.cano).login()
    try:
        assert app.order_cash("buy", "005930", 2, price="61000").json()["rt_cd"] == "0"
    finally:
        app.close()
    await harness.until(lambda: unowned_gauge("main", "KRX") == 1, "counted without a restart")

    async def shown() -> list[tuple[str, str, int]]:
        snapshot = await portfolio.get_account(harness.client, "main")
        return [(o.market, o.ticker, o.remaining_quantity) for o in snapshot.unowned_open_orders] if snapshot else []

    assert await harness.until(shown, "written to the account's state") == [("KRX", "005930", 2)]


async def test_passes_asking_for_the_open_list_at_the_same_time_share_one_read(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    """Three passes asking at once (a poll and two reconciliations, say): one call per segment, one answer."""
    prices(sim)
    harness = await make_harness(sim, config=NO_POLLING, accounts={"main": new_account()})
    await harness.until(lambda: "main" in harness.gateway.open_orders.unowned, "start-up check done")
    worker = harness.gateway.workers["main"]
    _, odno = await resting(harness)

    before = len(harness.sent)
    answers = await asyncio.gather(*(harness.gateway.listed.read(worker) for _ in range(3)))
    assert lists_asked(harness, before) == ["inquire-psbl-rvsecncl", "inquire-nccs"]
    assert all(answer == answers[0] for answer in answers)
    assert [int(s.broker_order_id) for s in answers[0]["KRX"]] == [int(odno)]

    before = len(harness.sent)
    await harness.gateway.listed.read(worker)  # after the shared read ended: a read of its own
    assert lists_asked(harness, before) == ["inquire-psbl-rvsecncl", "inquire-nccs"]
