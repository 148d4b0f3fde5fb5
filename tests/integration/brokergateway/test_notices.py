"""The execution-notice session: PINGPONG answered, reconnection after a drop, one session per app key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.integration.kissim.helpers import SimServer, base_config
from yquant.messages import OrderFilled, OrderState, OrderType

from .conftest import NO_POLLING, MakeHarness


@pytest.fixture(scope="module")
def pinging_sim() -> Iterator[SimServer]:
    server = SimServer(base_config(mode="virtual", ws_ping_interval_seconds=0.2)).start()
    yield server
    server.stop()


async def test_session_survives_pings_and_reconnects_after_a_drop(
    pinging_sim: SimServer, make_harness: MakeHarness
) -> None:
    pinging_sim.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    harness = await make_harness(pinging_sim, config=NO_POLLING)
    [feed] = harness.gateway.feeds
    assert feed.tr_ids == ["H0STCNI9", "H0GSCNI9"]  # the virtual domain's notice feeds
    await harness.until(
        lambda: pinging_sim.admin("/admin/stats")["counters"].get("ws_pingpong_echoes", 0) >= 2,
        "PINGPONGs answered",
        5,
    )
    assert (feed.connected, feed.sessions) == (True, 1)

    assert pinging_sim.admin("/admin/ws", {"disconnect": True})["disconnected"] == 1
    await harness.until(lambda: not feed.connected, "disconnect noticed", 3)
    await harness.until(lambda: feed.connected and feed.sessions == 2, "reconnected", 5)

    command = await harness.submit(quantity=2, order_type=OrderType.LIMIT, limit_price=Decimal(69000))
    await harness.state(command.client_order_id, OrderState.ACCEPTED)
    pinging_sim.admin("/admin/price", {"ticker": "005930", "price": "69000"})
    await harness.state(command.client_order_id, OrderState.FILLED)
    [fill] = [e for e in await harness.events(command.client_order_id) if isinstance(e, OrderFilled)]
    assert fill.source == "websocket"


async def test_second_session_for_an_app_key_is_refused_and_polling_covers_it(
    pinging_sim: SimServer, make_harness: MakeHarness
) -> None:
    pinging_sim.admin("/admin/price", {"ticker": "000660", "price": "180000"})
    first = await make_harness(pinging_sim)
    second = await make_harness(pinging_sim, accounts=first.settings.accounts, start=False)
    await second.start(wait_for_notices=False)
    await asyncio.sleep(0.5)
    assert first.gateway.feeds[0].connected
    assert not second.gateway.feeds[0].connected  # KIS allows one session per app key (OPSP8996)

    command = await second.submit(ticker="000660", quantity=1)  # accepted by the process without notices
    record = await second.state(command.client_order_id, OrderState.FILLED)
    assert record.filled_quantity == 1
    [fill] = [e for e in await second.events(command.client_order_id) if isinstance(e, OrderFilled)]
    assert fill.source in ("websocket", "poll")  # the other process's notice, or this one's poll: once
