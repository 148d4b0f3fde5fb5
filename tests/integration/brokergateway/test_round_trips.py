"""What the gateway's handling of one order command costs in Valkey, counted on the gateway's own
client: requests written (one per command sent alone, one per pipeline) and commands they carry.

Only the command's own work is counted: the polling, sync and notice loops run in tasks started
before it, which do not see the context variable the count is kept under; the handshake of a
connection the pool opens meanwhile (those tasks may hold the others) and the KIS token's reads
and writes, should the token need issuing again, are left out.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest
import redis.asyncio as aioredis
from redis.typing import EncodableT

from brokergateway.bootstrap import build_gateway
from brokergateway.kis.values import order_number
from tests.integration.brokergateway.conftest import FAST, Harness, gateway_settings, new_account
from tests.integration.kissim.helpers import SimServer
from yquant import keys, orders
from yquant.messages import Market, OrderAccepted, OrderState, OrderType, Side, SubmitOrder

# An order KIS books: NEW -> SUBMITTING taking the lease, its reply carrying the record (one
# FCALL), then SUBMITTING -> ACCEPTED dropping the lease, its reply telling of a cancel asked for
# meanwhile, with the broker-order key (a pipeline of SET and FCALL). 2 round trips, 3 commands;
# against 3beb4d1, 3 and 7 (the record read first, the lease's SET and DEL sent beside the
# changes, an HGET for the cancel); against 3c9c08c, 3 and 4 (the record read first).
BOOKED_ROUND_TRIPS = 2
BOOKED_COMMANDS = 3
# An order KIS refuses: the submission, then REJECTED with the lease dropped in one FCALL, the
# record already in hand. 2 round trips, 2 commands; against 3beb4d1, 5 and 6 (the record read
# twice, the lease's DEL on its own); against 3c9c08c, 3 and 3.
REFUSED_ROUND_TRIPS = 2
REFUSED_COMMANDS = 2

counting: contextvars.ContextVar[bool] = contextvars.ContextVar("counting", default=False)


@dataclass
class Sent:
    requests: int = 0
    commands: int = 0
    names: list[str] = field(default_factory=list)  # what was sent, for a failure's message


# A connection the pool opens meanwhile introduces itself first: its handshake is not the order's.
HANDSHAKE = frozenset({"HELLO", "CLIENT", "AUTH", "SELECT"})


def not_the_orders(args: tuple[EncodableT, ...]) -> bool:
    """A connection's handshake, or a command on the shared KIS token or its lock (the token's life,
    should it need issuing again meanwhile): neither is what the order costs."""
    name = keys.text(args[0]).split()[0].upper() if args and isinstance(args[0], bytes | str) else ""
    key = keys.text(args[1]) if len(args) > 1 and isinstance(args[1], bytes | str) else ""
    return name in HANDSHAKE or key.startswith((f"{keys.PREFIX}token:", f"{keys.PREFIX}lock:token:"))


def counting_client(url: str, sent: Sent) -> aioredis.Redis:
    class CountingConnection(aioredis.Connection):
        packed: list[bool] | None = None  # per request being packed: whether each command is not the order's

        async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
            packed, self.packed = self.packed or [], None
            if counting.get() and not (packed and all(packed)):
                sent.requests += 1
            await super().send_packed_command(command, check_health)

        def pack_command(self, *args: EncodableT) -> list[bytes]:
            if counting.get():
                other = not_the_orders(args)
                self.packed = [*(self.packed or []), other]
                if not other:
                    sent.commands += 1
                    sent.names.append(" ".join(keys.text(a) for a in args[:2] if isinstance(a, bytes | str)))
            return super().pack_command(*args)

    pool = aioredis.ConnectionPool.from_url(url, connection_class=CountingConnection, driver_info=None)
    return aioredis.Redis.from_pool(pool)


@pytest.fixture
async def counted(sim: SimServer, valkey_url: str) -> AsyncIterator[tuple[Harness, Sent]]:
    sent = Sent()
    client = counting_client(valkey_url, sent)
    settings = gateway_settings(sim, valkey_url, {"main": new_account()})
    http = httpx.AsyncClient(timeout=5.0, trust_env=False)
    harness = Harness(sim, settings, client, http, build_gateway(settings, client, http, FAST))
    await harness.start()
    yield harness, sent
    await harness.close()
    await client.aclose()


async def handled(harness: Harness, sent: Sent, command: SubmitOrder) -> Sent:
    """The gateway's requests and commands while it handles ``command``."""
    assert await orders.create_order(harness.client, command, 100_000)
    before = Sent(sent.requests, sent.commands, list(sent.names))
    token = counting.set(True)
    try:
        await harness.gateway.handle(command)
    finally:
        counting.reset(token)
    return Sent(sent.requests - before.requests, sent.commands - before.commands, sent.names[len(before.names) :])


def order(**fields: object) -> SubmitOrder:
    values: dict[str, object] = {
        "client_order_id": f"yq-rt-{fields.pop('n')}", "account": "main", "market": Market.KRX,
        "ticker": "005930", "side": Side.BUY, "quantity": 1, "strategy": "test",
    }  # fmt: skip
    return SubmitOrder.model_validate(values | fields)


async def test_an_order_kis_books_costs_two_round_trips(counted: tuple[Harness, Sent]) -> None:
    harness, sent = counted
    # A limit far below the market: it rests at KIS, so no fill rides with the acceptance.
    command = order(n=1, order_type=OrderType.LIMIT, limit_price=Decimal(60_000))
    spent = await handled(harness, sent, command)

    record = await harness.state(command.client_order_id, OrderState.ACCEPTED)
    assert record.broker_order_id
    assert await harness.client.exists(keys.order_lease(command.client_order_id)) == 0
    assert await harness.client.get(keys.broker_order("main", order_number(record.broker_order_id))) == (
        command.client_order_id.encode()
    )
    assert [type(e).__name__ for e in await harness.events(command.client_order_id)] == [
        "OrderSubmitted",
        OrderAccepted.__name__,
    ]
    assert spent.requests <= BOOKED_ROUND_TRIPS, spent
    assert spent.commands <= BOOKED_COMMANDS, spent


async def test_an_order_kis_refuses_costs_two_round_trips(counted: tuple[Harness, Sent]) -> None:
    harness, sent = counted
    command = order(n=2, side=Side.SELL, ticker="068270", quantity=5)  # nothing to sell
    spent = await handled(harness, sent, command)

    record = await harness.state(command.client_order_id, OrderState.REJECTED)
    assert "주문가능수량을 초과" in record.reason
    assert await harness.client.exists(keys.order_lease(command.client_order_id)) == 0
    assert spent.requests <= REFUSED_ROUND_TRIPS, spent
    assert spent.commands <= REFUSED_COMMANDS, spent
