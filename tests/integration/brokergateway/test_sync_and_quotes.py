"""Account sync (cash per currency, KRX and US positions), quotes on request, several accounts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest

from brokergateway.bootstrap import key_pair
from tests.integration.kissim.helpers import Kis, SimServer
from yquant import keys, quotes
from yquant.bus import Consumer, publish
from yquant.messages import Market, OrderState, OrderType, QuoteRequested, utcnow
from yquant.settings import BusSettings

from .conftest import Harness, MakeHarness, new_account


@pytest.fixture
async def answering(sim: SimServer, make_harness: MakeHarness) -> AsyncIterator[Harness]:
    """A gateway that answers the query stream, as ``__main__`` runs it."""
    harness = await make_harness(sim)
    consumer = Consumer(
        harness.client,
        stream=keys.QUERIES,
        group=keys.GROUP_BROKERGATEWAY,
        name="test",
        handler=harness.gateway.handle_query,
        settings=BusSettings(block_ms=50),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    yield harness
    stop.set()
    await task


async def test_account_sync_stores_cash_per_currency_and_positions_with_average_price(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    sim.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    sim.admin("/admin/price", {"ticker": "AAPL", "price": "190.00", "market": "US"})
    harness = await make_harness(sim)
    krx = await harness.submit(ticker="005930", quantity=3)
    us = await harness.submit(market=Market.NASD, ticker="AAPL", quantity=2, order_type=OrderType.LIMIT,
                              limit_price=Decimal("190.50"))  # fmt: skip
    await harness.state(krx.client_order_id, OrderState.FILLED)
    await harness.state(us.client_order_id, OrderState.FILLED)
    sim.admin("/admin/price", {"ticker": "005930", "price": "71000"})
    await harness.gateway.sync.sync(harness.gateway.workers[harness.alias])

    cash = await harness.cash()
    assert cash["KRW"] == Decimal(100_000_000) - 3 * 70000 - 31  # fee 0.015 %, floored
    assert cash["USD"] == Decimal(100_000) - Decimal(380) - Decimal("0.95")  # fee 0.25 %
    position = await harness.position("KRX", "005930")
    assert position is not None
    assert (position["quantity"], Decimal(position["average_price"])) == (3, Decimal(70000))
    assert (Decimal(position["unrealized_pnl"]), position["strategy"]) == (Decimal(3000), "test")
    us_position = await harness.position("NASD", "AAPL")
    assert us_position is not None
    assert (us_position["quantity"], Decimal(us_position["average_price"])) == (2, Decimal(190))


async def test_quote_request_is_answered_and_cached(answering: Harness) -> None:
    answering.sim.admin("/admin/price", {"ticker": "000660", "price": "180000"})
    await answering.client.delete(keys.quote("KRX", "000660"))
    quote = await quotes.get_quote(answering.client, Market.KRX, "000660", 3.0)
    assert quote is not None
    assert (quote.price, quote.tick_size, quote.currency) == (Decimal(180000), Decimal(100), "KRW")
    assert quote.upper_limit == Decimal(234000)
    ttl = await answering.client.ttl(keys.quote("KRX", "000660"))
    assert 0 < ttl <= 10
    cached = await quotes.cached_quote(answering.client, Market.KRX, "000660")
    assert cached == quote

    answering.sim.admin("/admin/price", {"ticker": "AMZN", "price": "180.25", "market": "US"})
    us = await quotes.get_quote(answering.client, Market.NASD, "AMZN", 3.0)
    assert us is not None
    assert (us.price, us.currency, us.tick_size) == (Decimal("180.25"), "USD", Decimal("0.01"))
    assert answering.tr_ids("/quotations/price") == ["HHDFS00000300"]


async def test_quote_for_an_unknown_ticker_is_an_error_answer_not_a_price(answering: Harness) -> None:
    assert await quotes.get_quote(answering.client, Market.KRX, "NOTAKRXCODE", 3.0) is None


async def test_a_quote_request_older_than_the_asker_waits_is_dropped(answering: Harness) -> None:
    old = QuoteRequested(market=Market.KRX, ticker="005930", occurred_at=utcnow() - timedelta(seconds=60))
    await publish(answering.client, keys.QUERIES, old)
    fresh = QuoteRequested(market=Market.KRX, ticker="005930")
    await publish(answering.client, keys.QUERIES, fresh)
    assert await answering.client.blpop([keys.reply(fresh.request_id)], timeout=3)
    assert not await answering.client.exists(keys.reply(old.request_id))


async def test_several_accounts_each_with_its_own_token_and_snapshot(sim: SimServer, make_harness: MakeHarness) -> None:
    accounts = {"main": new_account(), "isa": new_account(markets=["KRX"])}
    harness = await make_harness(sim, accounts=accounts)
    first = await harness.submit(account="main", ticker="035720", quantity=1)
    second = await harness.submit(account="isa", ticker="035720", quantity=2)
    refused = await harness.submit(account="isa", market=Market.NASD, ticker="AAPL", quantity=1,
                                   order_type=OrderType.LIMIT, limit_price=Decimal(190))  # fmt: skip
    await harness.state(first.client_order_id, OrderState.FILLED)
    await harness.state(second.client_order_id, OrderState.FILLED)
    assert (await harness.state(refused.client_order_id, OrderState.FAILED)).reason == (
        "account 'isa' does not trade NASD"
    )
    assert [o["quantity"] for o in harness.sim_orders("main")] == [1]
    assert [o["quantity"] for o in harness.sim_orders("isa")] == [2]
    stats = sim.admin("/admin/stats")
    for alias, account in accounts.items():
        app_key, _secret = key_pair(alias, account)
        assert stats["tokens_issued"][app_key] == 1
    await harness.until(lambda: harness.client.hget(keys.positions("isa"), "KRX:035720"), "isa position synced")
    assert len(harness.gateway.feeds) == 2  # one notice session per app key


async def test_account_sync_stores_what_kis_says_is_sellable_beside_what_is_held(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    """The order manager sizes sells from ``sellable_quantity`` (KIS's ord_psbl_qty): shares held by
    a sell resting at KIS, placed outside yQuant here, are held but not sellable."""
    sim.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    account = new_account()
    harness = await make_harness(sim, accounts={"main": account})
    bought = await harness.submit(ticker="005930", quantity=10)
    await harness.state(bought.client_order_id, OrderState.FILLED)
    app = Kis(sim, cano=account.cano).login()  # KIS's own app, say
    try:
        assert app.order_cash("sell", "005930", 6, price="90000").json()["rt_cd"] == "0"  # rests
    finally:
        app.close()
    await harness.gateway.sync.sync(harness.gateway.workers["main"])

    position = await harness.position("KRX", "005930")
    assert position is not None
    assert (position["quantity"], position["sellable_quantity"]) == (10, 4)
