"""What an account holds and has in flight, read from Valkey for the risk checks.

The broker's snapshot (``portfolio``) lags our own orders by up to one sync, so an order
created after the snapshot, or filled after it, is counted here as pending: buys hold
cash and add exposure, sells hold shares. Market buys have no limit price, so the order
manager records the price it sized them with (``keys.reservations``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from ordermanager.risk import BuyExposure, position_value
from yquant import keys, orders, portfolio, trading_state
from yquant.messages import Market, Position, Side
from yquant.orders import OrderRecord
from yquant.portfolio import AccountSnapshot
from yquant.trading_state import TradingState

RESERVATION_TTL_S = 7 * 86_400


@dataclass
class AccountView:
    account: str
    snapshot: AccountSnapshot | None
    synced_at: datetime | None
    orders: list[OrderRecord] = field(default_factory=list)  # open, or created after the snapshot
    estimates: dict[str, Decimal] = field(default_factory=dict)  # client order id -> sizing price

    def position(self, market: Market, ticker: str) -> Position | None:
        if self.snapshot is None:
            return None
        for position in self.snapshot.positions:
            if position.market is market and position.ticker == ticker:
                return position
        return None

    def after_sync(self, moment: datetime) -> bool:
        return self.synced_at is None or moment > self.synced_at

    def sellable(self, market: Market, ticker: str) -> int:
        """Shares that can be sold now: the broker's sellable quantity less our sells since the sync."""
        position = self.position(market, ticker)
        held = position.sellable_quantity if position else 0
        for order in self.orders:
            if order.side is not Side.SELL or order.market is not market or order.ticker != ticker:
                continue
            if self.after_sync(order.created_at):
                held -= order.filled_quantity if order.is_final else order.quantity
        return max(held, 0)

    def pending_buys(self, currency: str, market: Market | None = None, ticker: str | None = None) -> Decimal:
        """Value of buys the snapshot's cash does not reflect yet (open, or filled since the sync)."""
        total, of_symbol = self._pending(currency, market, ticker)
        return total if ticker is None else of_symbol

    def _pending(self, currency: str, market: Market | None, ticker: str | None) -> tuple[Decimal, Decimal]:
        """(all pending buys in ``currency``, those of ``market``/``ticker``) in one pass."""
        total = of_symbol = Decimal(0)
        for order in self.orders:
            if order.side is not Side.BUY or order.market.currency != currency:
                continue
            estimate = order.limit_price or self.estimates.get(order.client_order_id) or Decimal(0)
            value = Decimal(0)
            if not order.is_final:
                value += estimate * order.remaining_quantity
            if order.filled_quantity and self.after_sync(order.updated_at):
                value += (order.average_price or estimate) * order.filled_quantity
            total += value
            if order.market is market and order.ticker == ticker:
                of_symbol += value
        return total, of_symbol

    def buy_exposure(self, market: Market, ticker: str, price: Decimal) -> BuyExposure:
        currency = market.currency
        cash = self.snapshot.cash.get(currency) if self.snapshot else None  # None: unknown, never assumed
        positions_value = Decimal(0)
        if self.snapshot is not None:
            for position in self.snapshot.positions:
                if position.currency != currency:
                    continue
                same = position.market is market and position.ticker == ticker
                positions_value += position_value(position, price) if same else position.market_value
        pending, of_symbol = self._pending(currency, market, ticker)
        return BuyExposure(
            cash=cash,
            pending_buys=pending,
            symbol_value=position_value(self.position(market, ticker), price) + of_symbol,
            total_value=positions_value + pending,
        )


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


async def load_account_view(client: aioredis.Redis, account: str, cache: orders.RecordCache) -> AccountView:
    """The account's view on its own (tools and tests; a signal reads it with ``AccountReader``)."""
    return (await AccountReader(cache).read(client, account, [])).view


@dataclass
class AccountRead:
    """What one signal reads of one account, in the same round trip as its other reads."""

    view: AccountView
    trading_state: tuple[TradingState, str]  # (state, "global" or "account"), read with the view
    existing: frozenset[str]  # of the client order ids asked about, those already recorded


class AccountReader:
    """Reads an account's view for a signal: one pipeline (``queue``, sent with the signal's other
    reads) and at most one more round trip for the records of its open and recent orders.

    The orders since the last sync are asked from the order index from the sync before it (a
    superset, trimmed here), so the snapshot and the index come in the same round trip; only
    when the snapshot is older than the one seen last (or none was seen) is the index asked again.
    An unchanged snapshot is not parsed again.
    """

    QUEUED = 6  # commands ``queue`` adds, besides one EXISTS per client order id

    def __init__(self, cache: orders.RecordCache) -> None:
        self.cache = cache
        self._since_ms: dict[str, float] = {}  # per account: where the index was last read from
        self._snapshots: dict[str, tuple[dict[Any, Any], dict[Any, Any], AccountSnapshot | None]] = {}

    def queue(self, pipe: Pipeline, account: str, client_order_ids: list[str]) -> None:
        pipe.hgetall(keys.account(account))
        pipe.hgetall(keys.positions(account))
        pipe.smembers(keys.ORDERS_OPEN)
        pipe.zrangebyscore(keys.ORDERS_INDEX, self._since_ms.get(account, float("inf")), "+inf", withscores=True)
        pipe.hgetall(keys.reservations(account))
        pipe.hgetall(keys.TRADING_STATE)
        for coid in client_order_ids:
            pipe.exists(keys.order(coid))

    async def finish(
        self, client: aioredis.Redis, account: str, client_order_ids: list[str], replies: list[Any]
    ) -> AccountRead:
        raw, raw_positions, open_raw, recent_raw, raw_estimates, states = replies[: self.QUEUED]
        exists = replies[self.QUEUED : self.QUEUED + len(client_order_ids)]
        snapshot = self._snapshot(account, raw, raw_positions)
        synced_at = _parse_time(snapshot.synced_at) if snapshot else None
        since_ms = (synced_at.timestamp() * 1000 - 1000) if synced_at else 0
        if since_ms < self._since_ms.get(account, float("inf")):
            recent_raw = await client.zrangebyscore(keys.ORDERS_INDEX, since_ms, "+inf", withscores=True)
        self._since_ms[account] = since_ms
        open_ids = {keys.text(i) for i in open_raw}
        recent_ids = {keys.text(i) for i, score in recent_raw if score >= since_ms}
        records = await self.cache.get_many(client, sorted(open_ids | recent_ids))
        estimates: dict[str, Decimal] = {}
        for coid, value in raw_estimates.items():
            data = orjson.loads(value)
            estimates[keys.text(coid)] = Decimal(str(data["price"]))
        view = AccountView(
            account=account,
            snapshot=snapshot,
            synced_at=synced_at,
            orders=[r for r in records if r.account == account],
            estimates=estimates,
        )
        existing = frozenset(coid for coid, found in zip(client_order_ids, exists, strict=True) if found)
        return AccountRead(view, trading_state.effective_in(states, account), existing)

    async def read(self, client: aioredis.Redis, account: str, client_order_ids: list[str]) -> AccountRead:
        async with client.pipeline(transaction=False) as pipe:
            self.queue(pipe, account, client_order_ids)
            replies = await pipe.execute()
        return await self.finish(client, account, client_order_ids, replies)

    def _snapshot(self, account: str, raw: dict[Any, Any], raw_positions: dict[Any, Any]) -> AccountSnapshot | None:
        known = self._snapshots.get(account)
        if known is not None and known[0] == raw and known[1] == raw_positions:
            return known[2]
        snapshot = portfolio.snapshot_of(account, raw, raw_positions)
        self._snapshots[account] = (raw, raw_positions, snapshot)
        return snapshot


async def reserve(client: aioredis.Redis, account: str, client_order_id: str, currency: str, price: Decimal) -> None:
    """Remember the price a buy was sized with, for pending-cash accounting."""
    async with client.pipeline(transaction=False) as pipe:
        queue_reserve(pipe, account, client_order_id, currency, price)
        await pipe.execute()


def queue_reserve(pipe: Pipeline, account: str, client_order_id: str, currency: str, price: Decimal) -> None:
    """``reserve`` queued on a pipeline (sent with the order it is for)."""
    pipe.hset(keys.reservations(account), client_order_id, reservation_value(currency, price))
    pipe.expire(keys.reservations(account), RESERVATION_TTL_S)


def reservation_value(currency: str, price: Decimal) -> bytes:
    """A reservation's stored value (``keys.reservations``)."""
    return orjson.dumps({"currency": currency, "price": str(price), "at": time.time()})


def settled(view: AccountView) -> list[str]:
    """Estimates to forget: of orders that are final and reflected in the snapshot, or neither
    open nor recent (settled)."""
    done = [
        o.client_order_id
        for o in view.orders
        if o.is_final and o.client_order_id in view.estimates and not view.after_sync(o.updated_at)
    ]
    known = {o.client_order_id for o in view.orders}
    done += [coid for coid in view.estimates if coid not in known]
    return done


async def release_settled(client: aioredis.Redis, view: AccountView) -> None:
    """Forget estimates of orders that are final and reflected in the snapshot."""
    done = settled(view)
    if done:
        await client.hdel(keys.reservations(view.account), *done)
