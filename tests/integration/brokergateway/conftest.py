"""Fixtures: kissim servers on free ports (real and virtual domain) and gateways running in the test's loop."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from brokergateway.bootstrap import build_gateway
from brokergateway.config import GatewayConfig
from brokergateway.service import Gateway
from tests.integration.kissim.helpers import SimServer, base_config, fresh_cano
from tests.replies import xrange
from yquant import keys, orders
from yquant.messages import Market, OrderState, OrderType, Side, SubmitOrder, decode
from yquant.orders import OrderRecord
from yquant.settings import AccountSettings, KisSettings, Settings, ValkeySettings

FAST = GatewayConfig(
    poll_interval_s=0.2,
    safety_poll_interval_s=0.5,
    notice_grace_s=0.5,
    fill_check_delay_s=0.05,
    sync_debounce_s=0.05,
    sync_min_interval_s=0.1,
    reconcile_delay_s=0.1,
    resubmit_settle_s=0.5,
)
NO_POLLING = replace(
    FAST, poll_interval_s=3600, safety_poll_interval_s=3600, notice_grace_s=3600, fill_check_delay_s=3600
)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    """Real-domain simulator: always open, no rate limit, no token throttle, frozen prices."""
    server = SimServer(base_config(mode="real")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def virtual_sim() -> Iterator[SimServer]:
    server = SimServer(base_config(mode="virtual")).start()
    yield server
    server.stop()


def new_account(env: str = "real", **overrides: Any) -> AccountSettings:
    values: dict[str, Any] = {
        "cano": fresh_cano(),
        "product_code": "01",
        "app_key": SecretStr(f"PS{uuid.uuid4().hex}"[:36]),
        "app_secret": SecretStr("secret-" + uuid.uuid4().hex),
        "env": env,
        "hts_id": "yqtest",
    }
    values.update(overrides)
    return AccountSettings.model_validate(values)


def gateway_settings(sim: SimServer, valkey_url: str, accounts: dict[str, AccountSettings], **kis: Any) -> Settings:
    """Settings for a gateway on ``sim``: no pacing unless asked (the fixtures' simulators do not limit)."""
    values: dict[str, Any] = {"rest_url": sim.url, "ws_url": sim.ws_url, "order_timeout_s": 1.0}
    values |= {"token_min_interval_s": 0, "rate_limit_per_s": 0}
    values.update(kis)
    return Settings(valkey=ValkeySettings(url=valkey_url), kis=KisSettings(**values), accounts=accounts)


@dataclass
class Harness:
    """A gateway running in the test's event loop, with the KIS requests it sent."""

    sim: SimServer
    settings: Settings
    client: aioredis.Redis
    http: httpx.AsyncClient
    gateway: Gateway
    sent: list[httpx.Request] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    background: asyncio.Task[None] | None = None

    @property
    def alias(self) -> str:
        return next(iter(self.gateway.workers))

    def account_number(self, alias: str | None = None) -> str:
        return self.gateway.workers[alias or self.alias].kis.account.number

    async def start(self, *, wait_for_notices: bool = True) -> Harness:
        await self.gateway.start()
        self.background = asyncio.create_task(self.gateway.run_background(self.stop))
        if wait_for_notices and self.gateway.feeds:
            await self.until(lambda: all(feed.connected for feed in self.gateway.feeds), "notices subscribed")
        return self

    async def close(self) -> None:
        self.stop.set()
        if self.background is not None:
            await self.background
        await self.gateway.close()
        await self.http.aclose()

    async def submit(self, **fields: Any) -> SubmitOrder:
        """Record an order as the order manager does, then hand its command to the gateway."""
        values: dict[str, Any] = {
            "client_order_id": f"yq-{uuid.uuid4().hex[:12]}",
            "account": self.alias,
            "market": Market.KRX,
            "ticker": "005930",
            "side": Side.BUY,
            "quantity": 1,
            "order_type": OrderType.MARKET,
            "strategy": "test",
        }
        values.update(fields)
        command = SubmitOrder.model_validate(values)
        assert await orders.create_order(self.client, command, 100_000)
        await self.gateway.handle(command)
        return command

    async def until(self, probe: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = probe()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.02)
        raise AssertionError(f"not within {timeout_s}s: {what}")

    async def order(self, coid: str) -> OrderRecord:
        record = await orders.get_order(self.client, coid)
        assert record is not None
        return record

    async def state(self, coid: str, *states: OrderState, timeout_s: float = 30.0) -> OrderRecord:
        async def probe() -> OrderRecord | None:
            record = await self.order(coid)
            return record if record.state in states else None

        record: OrderRecord = await self.until(probe, f"{coid} in {states}", timeout_s)
        return record

    async def events(self, coid: str) -> list[Any]:
        """The order's events on both streams, in the order they were appended."""
        entries = [*await xrange(self.client, keys.EXECUTIONS), *await xrange(self.client, keys.PROGRESS)]
        found = []
        for _id, entry in sorted(entries, key=lambda e: tuple(int(part) for part in e[0].split(b"-"))):
            message = decode(entry[b"data"])
            if getattr(message, "client_order_id", None) == coid:
                found.append(message)
        return found

    def sim_orders(self, alias: str | None = None) -> list[dict[str, Any]]:
        number = self.account_number(alias)
        return [o for o in self.sim.admin("/admin/orders") if o["account"] == number]

    def tr_ids(self, path_end: str) -> list[str]:
        return [r.headers["tr_id"] for r in self.sent if r.url.path.endswith(path_end)]

    async def position(self, market: str, ticker: str) -> dict[str, Any] | None:
        raw = await self.client.hget(keys.positions(self.alias), f"{market}:{ticker}")
        return json.loads(raw) if raw else None

    async def cash(self) -> dict[str, Decimal]:
        raw = await self.client.hget(keys.account(self.alias), "cash")
        return {k: Decimal(v) for k, v in json.loads(raw).items()} if raw else {}


MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(valkey_url: str, redis_client: aioredis.Redis) -> AsyncIterator[MakeHarness]:
    harnesses: list[Harness] = []

    async def make(
        sim: SimServer,
        *,
        config: GatewayConfig = FAST,
        accounts: dict[str, AccountSettings] | None = None,
        start: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        **kis: Any,
    ) -> Harness:
        env = "virtual" if sim.config.is_virtual else "real"
        settings = gateway_settings(sim, valkey_url, accounts or {"main": new_account(env)}, **kis)
        sent: list[httpx.Request] = []

        async def record(request: httpx.Request) -> None:
            sent.append(request)

        http = httpx.AsyncClient(timeout=5.0, trust_env=False, event_hooks={"request": [record]}, transport=transport)
        harness = Harness(sim, settings, redis_client, http, build_gateway(settings, redis_client, http, config), sent)
        harnesses.append(harness)
        if start:
            await harness.start()
        return harness

    yield make
    for harness in harnesses:
        await harness.close()
