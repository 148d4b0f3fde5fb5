"""Account snapshots and positions cached in Valkey (the broker is the source of truth)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import Field

from yquant import keys
from yquant.bus import fields_of
from yquant.markets import symbol_key
from yquant.messages import FINAL_STATES, AccountSynced, Frozen, Position, utcnow

FINAL_STATE_NAMES = frozenset(state.value for state in FINAL_STATES)


class UnownedOrder(Frozen):
    """An order open at the broker that no order of ours placed (e.g. one placed in KIS's own app):
    never touched, only shown, because it holds the account's cash or shares."""

    market: str  # "KRX" or "US"
    ticker: str
    side: str
    remaining_quantity: int
    price: Decimal
    broker_order_id: str


class AccountSnapshot(Frozen):
    account: str
    cash: dict[str, Decimal]
    synced_at: str
    positions: list[Position]
    unowned_open_orders: list[UnownedOrder] = Field(default_factory=list)
    open_orders_checked_at: str = ""


async def store_snapshot(client: aioredis.Redis, event: AccountSynced, maxlen: int) -> None:
    """Replace the account's cached state with the broker's, keeping each position's strategy."""
    async with client.pipeline(transaction=False) as reads:
        reads.hgetall(keys.position_attribution(event.account))
        reads.hgetall(keys.unsettled_orders(event.account))
        attribution_raw, unsettled_raw = await reads.execute()
    attribution = {keys.text(k): keys.text(v) for k, v in attribution_raw.items()}
    settled = settled_orders(unsettled_raw, event.occurred_at)
    positions = [
        p.model_copy(update={"strategy": attribution.get(symbol_key(p.market, p.ticker), p.strategy)})
        for p in event.positions
    ]
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(
            keys.account(event.account),
            mapping={
                "cash": orjson.dumps({k: str(v) for k, v in event.cash.items()}),
                "synced_at": event.occurred_at.isoformat(),
                "stored_at": utcnow().isoformat(),
            },
        )
        pipe.sadd(keys.ACCOUNTS_INDEX, event.account)
        if settled:  # final before this sync: never changed again, and reflected in it
            pipe.hdel(keys.unsettled_orders(event.account), *settled)
        pipe.delete(keys.positions(event.account))
        if positions:
            pipe.hset(
                keys.positions(event.account),
                mapping={symbol_key(p.market, p.ticker): p.model_dump_json() for p in positions},
            )
        pipe.xadd(
            keys.EXECUTIONS,
            fields_of(event.model_copy(update={"positions": positions})),
            maxlen=maxlen,
            approximate=True,
        )
        await pipe.execute()


def settled_orders(unsettled: dict[Any, Any], synced_at: datetime) -> list[str]:
    """Orders of ``keys.unsettled_orders`` a sync at ``synced_at`` reflects: final, and last changed
    before it. A final order never changes again, so dropping it after reading it is safe."""
    settled: list[str] = []
    for coid, raw in unsettled.items():
        data = orjson.loads(raw)
        if data.get("state") not in FINAL_STATE_NAMES:
            continue
        try:
            changed = datetime.fromisoformat(data.get("updated_at", ""))
        except ValueError:
            continue
        if changed <= synced_at:
            settled.append(keys.text(coid))
    return settled


async def account_aliases(client: aioredis.Redis) -> list[str]:
    members = await client.smembers(keys.ACCOUNTS_INDEX)
    return sorted(keys.text(m) for m in members)


async def get_positions(client: aioredis.Redis, account: str) -> list[Position]:
    return _positions(await client.hgetall(keys.positions(account)))


def _positions(raw: dict[Any, Any]) -> list[Position]:
    return sorted((Position.model_validate_json(v) for v in raw.values()), key=lambda p: (p.market, p.ticker))


async def get_position(client: aioredis.Redis, account: str, market: str, ticker: str) -> Position | None:
    raw = await client.hget(keys.positions(account), symbol_key(market, ticker))
    return Position.model_validate_json(raw) if raw else None


async def get_account(client: aioredis.Redis, account: str) -> AccountSnapshot | None:
    async with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.account(account))
        pipe.hgetall(keys.positions(account))
        raw, raw_positions = await pipe.execute()
    return snapshot_of(account, raw, raw_positions)


def snapshot_of(account: str, raw: dict[Any, Any], raw_positions: dict[Any, Any]) -> AccountSnapshot | None:
    """The snapshot from HGETALLs of ``keys.account`` and ``keys.positions`` (None: never synced)."""
    data = {keys.text(k): keys.text(v) for k, v in raw.items()}
    if "cash" not in data:
        return None
    cash = {k: Decimal(v) for k, v in orjson.loads(data["cash"]).items()}
    return AccountSnapshot(
        account=account,
        cash=cash,
        synced_at=data.get("synced_at", ""),
        positions=_positions(raw_positions),
        unowned_open_orders=unowned_of(data),
        open_orders_checked_at=data.get("open_orders_checked_at", ""),
    )


def unowned_of(data: dict[str, str]) -> list[UnownedOrder]:
    """The unowned open orders of an account hash (as text), as the gateway last found them."""
    raw = data.get("unowned_open_orders", "")
    return [UnownedOrder.model_validate(item) for item in orjson.loads(raw)] if raw else []


async def store_open_order_check(client: aioredis.Redis, account: str, unowned: list[UnownedOrder]) -> None:
    """Record what the gateway's look at the broker's open orders found that is not ours."""
    await client.hset(
        keys.account(account),
        mapping={
            "unowned_open_orders": orjson.dumps([order.model_dump(mode="json") for order in unowned]),
            "open_orders_checked_at": utcnow().isoformat(),
        },
    )


async def forget_attribution(client: aioredis.Redis, account: str, market: str, ticker: str) -> None:
    await client.hdel(keys.position_attribution(account), symbol_key(market, ticker))
