"""What a compromised dashboard can still ask of the gateway, on a Valkey that runs the production ACL.

The Valkey here is started by valkey/start.sh with valkey/users.acl.template rendered (as
``make deploy-check`` starts it), and every party logs in as its own ACL user: the gateway as
``brokergateway``, the order manager's order records as ``ordermanager``, the dashboard as
``dashboard``. The gateway consumes its streams as ``__main__`` does (``Gateway.consumers``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from redis.exceptions import NoPermissionError

from brokergateway.bootstrap import build_gateway
from brokergateway.ratelimit import RateLimiter
from dashboard import actions
from tests.integration.kissim.helpers import SimServer
from tests.replies import encodable, xrange
from yquant import keys, orders, quotes
from yquant.bus import Consumer, fields_of
from yquant.messages import Market, OrderState, OrderType, QuoteRequested, Side, SubmitOrder
from yquant.settings import BusSettings, KisSettings, Settings, ValkeySettings

from .conftest import FAST, Harness, new_account

REPO = Path(__file__).resolve().parents[3]
BUS = BusSettings(block_ms=50, claim_idle_ms=500)
DASHBOARD = actions.Actor(user="alice", address="10.0.0.2")


Connect = Callable[[str], aioredis.Redis]


@pytest.fixture
async def as_user(acl_valkey: tuple[int, dict[str, str]]) -> AsyncIterator[Connect]:
    """A client logged in as one ACL user; the database is emptied and the functions loaded first."""
    port, passwords = acl_valkey
    made: list[aioredis.Redis] = []

    def connect(user: str) -> aioredis.Redis:
        client = aioredis.Redis(host="127.0.0.1", port=port, username=user, password=passwords[user])
        made.append(client)
        return client

    admin = connect("admin")
    await admin.flushall()
    await admin.function_load((REPO / "yquant" / "functions.lua").read_text(), replace=True)
    yield connect
    for client in made:
        await client.aclose()


def _settings(sim: SimServer, port: int, user: str, password: str, **gateway: Any) -> Settings:
    return Settings(
        valkey=ValkeySettings(url=f"redis://127.0.0.1:{port}/0", username=user, password=SecretStr(password)),
        bus=BUS,
        kis=KisSettings(
            rest_url=sim.url, ws_url=sim.ws_url, order_timeout_s=1.0, token_min_interval_s=0, rate_limit_per_s=0
        ),
        accounts={"main": new_account()},
        **gateway,
    )


@pytest.fixture
async def gateway(
    sim: SimServer, acl_valkey: tuple[int, dict[str, str]], as_user: Connect
) -> AsyncIterator[Callable[..., Any]]:
    """Start a gateway as the ``brokergateway`` user, consuming every stream it consumes in production."""
    port, passwords = acl_valkey
    running: list[tuple[Harness, asyncio.Event, list[asyncio.Task[None]]]] = []

    async def start(**config: Any) -> Harness:
        settings = _settings(sim, port, "brokergateway", passwords["brokergateway"])
        client = as_user("brokergateway")
        sent: list[httpx.Request] = []

        async def record(request: httpx.Request) -> None:
            sent.append(request)

        http = httpx.AsyncClient(timeout=5.0, trust_env=False, event_hooks={"request": [record]})
        built = build_gateway(settings, client, http, replace(FAST, **config))
        harness = await Harness(sim, settings, client, http, built, sent).start()
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(
                Consumer(
                    client, stream=stream, group=keys.GROUP_BROKERGATEWAY, name="g1", handler=handler, settings=BUS
                ).run(stop)
            )
            for stream, handler in built.consumers().items()
        ]
        running.append((harness, stop, tasks))
        return harness

    yield start
    for harness, stop, tasks in running:
        stop.set()
        await asyncio.gather(*tasks)
        await harness.close()


def _order(account: str, **fields: Any) -> SubmitOrder:
    values: dict[str, Any] = {
        "client_order_id": f"yq-{uuid.uuid4().hex[:12]}",
        "account": account,
        "market": Market.KRX,
        "ticker": "005930",
        "side": Side.BUY,
        "quantity": 1,
        "order_type": OrderType.MARKET,
        "strategy": "test",
    }
    values.update(fields)
    return SubmitOrder.model_validate(values)


async def _until(probe: Callable[[], Any], what: str, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = await probe()
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout_s}s: {what}")


async def _dead_letters(client: aioredis.Redis) -> list[dict[str, Any]]:
    return [orjson.loads(fields[b"data"]) for _id, fields in await xrange(client, keys.DEAD_LETTERS)]


def _order_requests(harness: Harness) -> list[httpx.Request]:
    return [r for r in harness.sent if r.url.path.endswith(("/order-cash", "/order-rvsecncl", "/order"))]


async def test_dashboard_user_when_appending_to_the_order_managers_streams_then_refused(as_user: Connect) -> None:
    dashboard = as_user("dashboard")
    attack = fields_of(_order("main"))

    with pytest.raises(NoPermissionError):
        await dashboard.xadd(keys.ORDERS, attack)
    query = fields_of(QuoteRequested(request_id="dash-x", market=Market.KRX, ticker="005930"))
    with pytest.raises(NoPermissionError):
        await dashboard.xadd(keys.QUERIES, query)

    assert await as_user("admin").exists(keys.ORDERS, keys.QUERIES) == 0


async def test_submit_order_on_the_cancel_stream_when_the_gateway_reads_it_then_refused_and_nothing_reaches_kis(
    sim: SimServer, as_user: Connect, gateway: Callable[..., Any]
) -> None:
    admin, dashboard = as_user("admin"), as_user("dashboard")
    # An order the order manager recorded (NEW) and whose command the gateway has not read yet:
    # exactly what a SubmitOrder from anyone would send.
    waiting = _order("main", quantity=7)
    assert await orders.create_order(as_user("ordermanager"), waiting, 100_000)
    await admin.delete(keys.ORDERS)
    harness = await gateway()
    attack = _order("main", client_order_id=waiting.client_order_id, quantity=7)

    await dashboard.xadd(keys.CANCELS, fields_of(attack))

    async def refused() -> list[dict[str, Any]]:
        return [d for d in await _dead_letters(admin) if d["stream"] == keys.CANCELS]

    [letter] = await _until(refused, "the SubmitOrder dead-lettered")
    assert letter["reason"].startswith("refused: SubmitOrder on yq:stream:cancels")
    assert letter["fields"]["type"] == "SubmitOrder"

    async def acknowledged() -> bool:
        groups = await admin.xinfo_groups(keys.CANCELS)
        return bool(groups) and groups[0]["pending"] == 0 and groups[0]["lag"] == 0

    await _until(acknowledged, "the refused entry acknowledged, not retried")
    assert _order_requests(harness) == []
    assert harness.sim_orders() == []
    record = await orders.get_order(admin, waiting.client_order_id)
    assert record is not None
    assert record.state is OrderState.NEW


async def test_cancel_from_the_dashboard_when_an_order_rests_at_kis_then_it_is_cancelled_with_who_did_it(
    sim: SimServer, as_user: Connect, gateway: Callable[..., Any]
) -> None:
    sim.admin("/admin/price", {"ticker": "068270", "price": "180000"})
    harness = await gateway()
    admin, dashboard = as_user("admin"), as_user("dashboard")
    resting = _order("main", ticker="068270", quantity=4, order_type=OrderType.LIMIT, limit_price=Decimal(170000))
    assert await orders.create_order(as_user("ordermanager"), resting, 100_000)  # the gateway reads its command
    record = await harness.state(resting.client_order_id, OrderState.ACCEPTED)

    await actions.cancel_order(dashboard, harness.settings, record, DASHBOARD)

    cancelled = await harness.state(resting.client_order_id, OrderState.CANCELLED)
    assert cancelled.reason == "cancelled on the dashboard by alice"
    [at_sim] = [o for o in harness.sim_orders() if o["odno"] == record.broker_order_id]
    assert (at_sim["cancelled_quantity"], at_sim["remaining_quantity"]) == (4, 0), at_sim
    assert [d for d in await _dead_letters(admin)] == []
    assert await admin.xlen(keys.ORDERS) == 1  # the order manager's SubmitOrder, and nothing from VM2


async def test_dashboard_quote_flood_when_past_the_cache_then_one_kis_call_per_interval_and_om_still_answered(
    sim: SimServer, as_user: Connect, gateway: Callable[..., Any]
) -> None:
    harness = await gateway(dashboard_quote_interval_s=300.0)
    admin, dashboard = as_user("admin"), as_user("dashboard")
    tickers = [f"{n:06d}" for n in range(5930, 5950)]
    for ticker in tickers:
        sim.admin("/admin/price", {"ticker": ticker, "price": "70000"})

    answers = await asyncio.gather(
        *(quotes.request_quote(dashboard, Market.KRX, ticker, 10.0, requester="dash") for ticker in tickers)
    )

    assert sum(quote is not None for quote in answers) == 1  # the one call the budget allowed
    assert len(harness.tr_ids("/inquire-price")) == 1
    # The order manager's quotes are on its own stream: not queued behind the dashboard's, not budgeted.
    om = await quotes.request_quote(as_user("ordermanager"), Market.KRX, "005931", 10.0)
    assert om is not None
    assert om.price == Decimal(70000)
    # A ticker quoted a moment ago is served from the cache, without KIS.
    again = await quotes.request_quote(dashboard, Market.KRX, "005931", 10.0, requester="dash")
    assert again is not None
    assert again.price == Decimal(70000)
    assert len(harness.tr_ids("/inquire-price")) == 2
    assert await admin.xlen(keys.ORDERS) == 0


async def test_dashboard_quote_request_when_it_names_the_order_managers_reply_key_then_refused(
    sim: SimServer, as_user: Connect, gateway: Callable[..., Any]
) -> None:
    harness = await gateway()
    admin, dashboard = as_user("admin"), as_user("dashboard")
    request = QuoteRequested(request_id="om-stolen", market=Market.KRX, ticker="005930")

    await dashboard.xadd(keys.QUERIES_DASHBOARD, fields_of(request))

    async def refused() -> list[dict[str, Any]]:
        return [d for d in await _dead_letters(admin) if d["stream"] == keys.QUERIES_DASHBOARD]

    [letter] = await _until(refused, "the request dead-lettered")
    assert "dash-" in letter["reason"]
    assert await admin.exists(keys.reply("om-stolen")) == 0
    assert harness.tr_ids("/inquire-price") == []


async def test_cancel_for_an_order_not_yet_sent_when_asked_on_the_cancel_stream_then_never_sent(
    sim: SimServer, as_user: Connect, gateway: Callable[..., Any]
) -> None:
    """A cancel and the order's command on different streams: whichever the gateway reads first,
    the order ends CANCELLED and KIS never sees it when the cancel came first."""
    admin, dashboard = as_user("admin"), as_user("dashboard")
    waiting = _order("main", quantity=2)
    assert await orders.create_order(as_user("ordermanager"), waiting, 100_000)
    record = await orders.get_order(admin, waiting.client_order_id)
    assert record is not None
    await actions.cancel_order(dashboard, Settings(bus=BUS), record, DASHBOARD)
    commands = await xrange(admin, keys.ORDERS)
    await admin.delete(keys.ORDERS)  # the order manager's command is read only after the cancel
    harness = await gateway()

    cancelled = await harness.state(waiting.client_order_id, OrderState.CANCELLED)
    assert cancelled.reason == "cancelled on the dashboard by alice, before it was sent to KIS"
    await admin.xadd(keys.ORDERS, encodable(commands[0][1]))  # now the gateway reads the SubmitOrder too

    async def read() -> bool:
        groups = await admin.xinfo_groups(keys.ORDERS)
        return bool(groups) and groups[0]["lag"] == 0 and groups[0]["pending"] == 0

    await _until(read, "the SubmitOrder handled")
    assert _order_requests(harness) == []
    assert (await harness.order(waiting.client_order_id)).state is OrderState.CANCELLED


async def test_spare_slot_when_the_window_is_half_taken_then_none_and_orders_keep_the_rest(
    redis_client: aioredis.Redis,
) -> None:
    real = RateLimiter(redis_client, "spare-real", 18.0)
    spared = [await real.try_spare() for _ in range(12)]
    assert sum(slot is not None for slot in spared) == 9  # half of 18 stays for the requests that wait
    assert await redis_client.zcard(keys.rate_limit("spare-real")) == 9
    virtual = RateLimiter(redis_client, "spare-virtual", 1.0)
    await virtual.acquire()  # an order's slot
    assert await virtual.try_spare() is None  # a one-request account: only an idle window is spared
