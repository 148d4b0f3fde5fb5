"""What an account holds and has in flight, read from Valkey for the risk checks.

The broker's snapshot (``portfolio``) lags our own orders by up to one sync, so an order
created after the snapshot, or filled after it, is counted here as pending: buys hold
cash and add exposure, sells hold shares. Market buys have no limit price, so the order
manager records the price it sized them with (``keys.reservations``).

Which orders those are is kept, not searched for: the server functions that create and change
an order (``yquant/functions.lua``) copy its record to the account's ``keys.unsettled_orders``
in the same atomic step (the gateway's fills and cancels included), and the account sync that
reflects a final order drops it there (``portfolio.store_snapshot``: final orders never change
again, so dropping one read earlier is safe). A signal reads that hash with its other reads,
in one round trip, instead of the open set, the order index and each order's record.

A copy can only be missing, never stale, since no order changes without its function: orders
recorded before the functions kept copies are added once at start (``backfill_unsettled``, for
open orders, with HSETNX so a newer copy is never replaced). Nothing else writes the hash.
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
# How long a dearer revision the order manager passed on counts at its new price before the gateway
# records it (``OrderRecord.last_revision``): KIS answers in seconds; one it refused, or whose
# answer was lost, stops counting after this.
REVISION_IN_FLIGHT_S = 60.0


@dataclass
class AccountView:
    account: str
    snapshot: AccountSnapshot | None
    synced_at: datetime | None
    orders: list[OrderRecord] = field(default_factory=list)  # open, or created after the snapshot
    estimates: dict[str, Decimal] = field(default_factory=dict)  # client order id -> sizing price
    # client order id -> (ReviseOrder id, wall time passed on, new price) of a dearer buy revision
    revisions: dict[str, tuple[str, float, Decimal]] = field(default_factory=dict)

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
        """Value of buys the snapshot's cash does not reflect yet (open, or filled since the sync;
        those resting at KIS outside yQuant included)."""
        total, of_symbol, _ = self._pending(currency, market, ticker)
        return total if ticker is None else of_symbol

    def _outside_buys(self, currency: str, ticker: str | None) -> tuple[Decimal, Decimal]:
        """(all, those of ``ticker``) in value of the buys in ``currency`` resting at KIS that yQuant
        did not place (``portfolio.UnownedOrder``, as the gateway last read KIS's open orders): the
        cash they hold is not out of ``cash`` yet (KIS takes it at the fill) and no order of ours
        counts it. A market buy there has no price: 0."""
        segment = "KRX" if currency == "KRW" else "US"
        total = of_ticker = Decimal(0)
        for order in self.snapshot.unowned_open_orders if self.snapshot else []:
            if order.side != Side.BUY.value or order.market != segment:
                continue
            value = order.price * order.remaining_quantity
            total += value
            if order.ticker == ticker:
                of_ticker += value
        return total, of_ticker

    def _pending(self, currency: str, market: Market | None, ticker: str | None) -> tuple[Decimal, Decimal, Decimal]:
        """(all pending buys in ``currency``, those of ``market``/``ticker``, the part of the first
        that buys resting at KIS outside yQuant hold) in one pass."""
        outside, of_symbol = self._outside_buys(currency, ticker)
        total = outside
        for order in self.orders:
            if order.side is not Side.BUY or order.market.currency != currency:
                continue
            estimate = order.limit_price or self.estimates.get(order.client_order_id) or Decimal(0)
            value = Decimal(0)
            if not order.is_final:
                value += max(estimate, self._revised_price(order)) * order.remaining_quantity
            if order.filled_quantity and self.after_sync(order.updated_at):
                value += (order.average_price or estimate) * order.filled_quantity
            total += value
            if order.market is market and order.ticker == ticker:
                of_symbol += value
        return total, of_symbol, outside

    def _revised_price(self, order: OrderRecord) -> Decimal:
        """The new price of a dearer revision of ``order`` passed on to the gateway and not yet
        recorded on the order (0 when none): until KIS has it, the order may cost that much."""
        revision = self.revisions.get(order.client_order_id)
        if revision is None or order.last_revision == revision[0]:
            return Decimal(0)
        _, passed_at, price = revision
        return price if time.time() - passed_at < REVISION_IN_FLIGHT_S else Decimal(0)

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
        pending, of_symbol, outside = self._pending(currency, market, ticker)
        return BuyExposure(
            cash=cash,
            pending_buys=pending,
            symbol_value=position_value(self.position(market, ticker), price) + of_symbol,
            total_value=positions_value + pending,
            outside_buys=outside,
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
    """Reads an account's view for a signal in one pipeline (``queue``, sent with the signal's
    other reads): the snapshot, the reservations, the trading state and the account's unsettled
    orders (``keys.unsettled_orders``: each order's record, copied there by the order functions
    in the step that changes it, and dropped by the account sync that reflects it; so the view
    is as exact as reading every record, without a round trip for them). An unchanged snapshot,
    and an unchanged order, are not parsed again.
    """

    QUEUED = 5  # commands ``queue`` adds, besides one EXISTS per client order id

    def __init__(self, cache: orders.RecordCache | None = None) -> None:
        self._snapshots: dict[str, tuple[dict[Any, Any], dict[Any, Any], AccountSnapshot | None]] = {}
        self._parsed: dict[str, dict[str, tuple[bytes, OrderRecord]]] = {}  # per account: id -> (raw, record)

    def queue(self, pipe: Pipeline, account: str, client_order_ids: list[str]) -> None:
        pipe.hgetall(keys.account(account))
        pipe.hgetall(keys.positions(account))
        pipe.hgetall(keys.unsettled_orders(account))
        pipe.hgetall(keys.reservations(account))
        pipe.hgetall(keys.TRADING_STATE)
        for coid in client_order_ids:
            pipe.exists(keys.order(coid))

    async def finish(
        self, client: aioredis.Redis, account: str, client_order_ids: list[str], replies: list[Any]
    ) -> AccountRead:
        raw, raw_positions, unsettled_raw, raw_estimates, states = replies[: self.QUEUED]
        exists = replies[self.QUEUED : self.QUEUED + len(client_order_ids)]
        snapshot = self._snapshot(account, raw, raw_positions)
        synced_at = _parse_time(snapshot.synced_at) if snapshot else None
        estimates: dict[str, Decimal] = {}
        revisions: dict[str, tuple[str, float, Decimal]] = {}
        for coid, value in raw_estimates.items():
            data = orjson.loads(value)
            if data.get("revision"):
                revisions[keys.text(coid)] = (data["revision"], float(data["at"]), Decimal(str(data["price"])))
            else:
                estimates[keys.text(coid)] = Decimal(str(data["price"]))
        view = AccountView(
            account=account,
            snapshot=snapshot,
            synced_at=synced_at,
            orders=self._records(account, unsettled_raw),
            estimates=estimates,
            revisions=revisions,
        )
        existing = frozenset(coid for coid, found in zip(client_order_ids, exists, strict=True) if found)
        return AccountRead(view, trading_state.effective_in(states, account), existing)

    def _records(self, account: str, unsettled_raw: dict[Any, Any]) -> list[OrderRecord]:
        known = self._parsed.get(account, {})
        parsed: dict[str, tuple[bytes, OrderRecord]] = {}
        for coid_raw, value in unsettled_raw.items():
            coid, data = keys.text(coid_raw), bytes(value) if not isinstance(value, str) else value.encode()
            cached = known.get(coid)
            parsed[coid] = (
                cached if cached is not None and cached[0] == data else (data, orders.parse_record(orjson.loads(data)))
            )
        self._parsed[account] = parsed
        return [record for _, record in parsed.values() if record.account == account]

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


def queue_reserve(
    pipe: Pipeline, account: str, client_order_id: str, currency: str, price: Decimal, revision: str = ""
) -> None:
    """``reserve`` queued on a pipeline (sent with the order it is for); with ``revision`` (a
    ``ReviseOrder`` id) the new price of a dearer revision while the gateway carries it out."""
    pipe.hset(keys.reservations(account), client_order_id, reservation_value(currency, price, revision))
    pipe.expire(keys.reservations(account), RESERVATION_TTL_S)


def reservation_value(currency: str, price: Decimal, revision: str = "") -> bytes:
    """A reservation's stored value (``keys.reservations``)."""
    data: dict[str, Any] = {"currency": currency, "price": str(price), "at": time.time()}
    if revision:
        data["revision"] = revision
    return orjson.dumps(data)


def settled(view: AccountView) -> list[str]:
    """Estimates (and revision prices) to forget: of orders that are final and reflected in the
    snapshot, or neither open nor recent (settled)."""
    held = {*view.estimates, *view.revisions}
    done = [
        o.client_order_id
        for o in view.orders
        if o.is_final and o.client_order_id in held and not view.after_sync(o.updated_at)
    ]
    known = {o.client_order_id for o in view.orders}
    done += [coid for coid in sorted(held) if coid not in known]
    return done


async def release_settled(client: aioredis.Redis, view: AccountView) -> None:
    """Forget estimates of orders that are final and reflected in the snapshot."""
    done = settled(view)
    if done:
        await client.hdel(keys.reservations(view.account), *done)


async def backfill_unsettled(client: aioredis.Redis) -> int:
    """Copy each open order's record to its account's ``keys.unsettled_orders`` where none is
    there yet (orders recorded before the server functions kept copies); how many were added."""
    ids = sorted(keys.text(i) for i in await client.smembers(keys.ORDERS_OPEN))
    if not ids:
        return 0
    async with client.pipeline(transaction=False) as pipe:
        for coid in ids:
            pipe.hgetall(keys.order(coid))
        rows = await pipe.execute()
    async with client.pipeline(transaction=False) as pipe:
        for coid, row in zip(ids, rows, strict=True):
            record = {keys.text(k): keys.text(v) for k, v in row.items()}
            if record.get("account"):
                pipe.hsetnx(keys.unsettled_orders(record["account"]), coid, orjson.dumps(record))
        added = await pipe.execute()
    return sum(1 for a in added if a)
