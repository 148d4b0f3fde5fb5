"""Factories and stand-ins for the parts around the order manager (the gateway's side)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis

from tests.harness.clock import ManualClock
from tests.order_paths import walk_to
from tests.replies import xrange
from yquant import keys, orders, portfolio
from yquant.messages import (
    AccountSynced,
    AnyMessage,
    Market,
    OrderFilled,
    OrderRejected,
    OrderState,
    Position,
    Quote,
    Signal,
    SignalAction,
    decode,
)
from yquant.orders import OrderRecord


def make_signal(clock: ManualClock, **fields: Any) -> Signal:
    values: dict[str, Any] = {
        "signal_id": f"t-{uuid.uuid4().hex[:12]}",
        "strategy": "swing",
        "ticker": "005930",
        "market": Market.KRX,
        "action": SignalAction.BUY,
        "price": Decimal(70_000),
        "fired_at": clock.now(),
        "received_at": clock.now(),
    }
    values.update(fields)
    return Signal.model_validate(values)


def make_position(
    ticker: str = "005930", quantity: int = 10, price: int = 70_000, sellable: int | None = None
) -> Position:
    """A KRX holding as the gateway's sync stores it; ``sellable``: KIS's ord_psbl_qty (default: all)."""
    return Position(
        market=Market.KRX,
        ticker=ticker,
        quantity=quantity,
        sellable_quantity=quantity if sellable is None else sellable,
        average_price=Decimal(price),
        current_price=Decimal(price),
        market_value=Decimal(price * quantity),
        unrealized_pnl=Decimal(0),
        return_pct=Decimal(0),
        currency="KRW",
    )


async def seed_account(
    client: aioredis.Redis, account: str = "main", cash: int = 10_000_000, positions: list[Position] | None = None
) -> None:
    """What the gateway's account sync writes."""
    event = AccountSynced(account=account, cash={"KRW": Decimal(cash)}, positions=positions or [])
    await portfolio.store_snapshot(client, event, 10_000)


async def put_quote(client: aioredis.Redis, clock: ManualClock, ticker: str, price: int) -> None:
    """What the gateway's quote cache holds."""
    quote = Quote(market=Market.KRX, ticker=ticker, price=Decimal(price), currency="KRW", as_of=clock.now())
    await client.set(keys.quote("KRX", ticker), quote.model_dump_json(), ex=60)


async def decision_of(client: aioredis.Redis, signal_id: str) -> dict[str, str]:
    raw = await client.hgetall(keys.signal_record(signal_id))
    return {keys.text(k): keys.text(v) for k, v in raw.items()}


async def stream(client: aioredis.Redis, name: str) -> list[AnyMessage]:
    return [decode(fields[b"data"]) for _id, fields in await xrange(client, name)]


async def all_orders(client: aioredis.Redis) -> list[OrderRecord]:
    return await orders.recent_orders(client, 1000)


async def fill(client: aioredis.Redis, client_order_id: str, price: int) -> OrderFilled:
    """The gateway's side of a fill: the record changes state and OrderFilled is appended."""
    record = await orders.get_order(client, client_order_id)
    assert record is not None
    await walk_to(client, client_order_id, OrderState.ACCEPTED, fields={"broker_order_id": "0001"})
    event = OrderFilled(
        client_order_id=client_order_id,
        account=record.account,
        broker_order_id="0001",
        market=record.market,
        ticker=record.ticker,
        side=record.side,
        fill_quantity=record.quantity,
        fill_price=Decimal(price),
        cumulative_quantity=record.quantity,
        average_price=Decimal(price),
        remaining_quantity=0,
    )
    await walk_to(
        client,
        client_order_id,
        OrderState.FILLED,
        fields={"filled_quantity": record.quantity, "average_price": price},
        event=event,
    )
    return event


async def reject(client: aioredis.Redis, client_order_id: str, reason: str) -> None:
    record = await orders.get_order(client, client_order_id)
    assert record is not None
    event = OrderRejected(client_order_id=client_order_id, account=record.account, reason_code="X", reason=reason)
    await walk_to(client, client_order_id, OrderState.REJECTED, event=event)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
