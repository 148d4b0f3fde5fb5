"""Account sync: cash per currency and positions from KIS, cached in Valkey.

* KRW cash and KRX positions come from domestic inquire-balance; USD cash from
  inquire-present-balance; US positions from overseas inquire-balance (real: one call
  for every US exchange; virtual: one per exchange).
* After fills only the touched segment is fetched again (debounced, and at most once per
  ``sync_min_interval_s`` per account under load); a full sync runs at start and
  periodically. A snapshot is stored only when every segment has been fetched at least
  once, so a failed US query never makes US positions disappear.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import redis.asyncio as aioredis

from brokergateway.config import GatewayConfig
from brokergateway.kis import inquiry
from brokergateway.kis.balances import domestic_cash, domestic_positions, overseas_positions, usd_cash
from brokergateway.worker import AccountWorker
from yquant import portfolio
from yquant.errors import BrokerError
from yquant.messages import AccountSynced, Market, Position

logger = logging.getLogger(__name__)

KRX, US = "KRX", "US"
Spawn = Callable[[Coroutine[Any, Any, None]], None]


def segment_of(market: Market) -> str:
    return US if market.is_us else KRX


class AccountSync:
    def __init__(self, client: aioredis.Redis, config: GatewayConfig, spawn: Spawn) -> None:
        self.client = client
        self.config = config
        self.spawn = spawn

    def schedule(self, worker: AccountWorker, segment: str) -> None:
        """Sync ``segment`` soon; fills arriving meanwhile share the same sync."""
        first = not worker.sync.pending_segments
        worker.sync.pending_segments.add(segment)
        if not first:
            return

        wait = max(self.config.sync_debounce_s, worker.sync.last + self.config.sync_min_interval_s - time.monotonic())

        async def later() -> None:
            await asyncio.sleep(wait)
            segments = set(worker.sync.pending_segments)
            worker.sync.pending_segments.clear()
            await self.sync_quietly(worker, segments)

        self.spawn(later())

    async def sync_quietly(self, worker: AccountWorker, segments: set[str] | None = None) -> None:
        try:
            await self.sync(worker, segments)
        except BrokerError as exc:
            logger.warning("account sync failed", extra={"account": worker.alias, "error": exc.message})

    async def sync(self, worker: AccountWorker, segments: set[str] | None = None) -> AccountSynced:
        """Fetch ``segments`` (default: all) and store the account's snapshot."""
        required = {KRX, US} if worker.trades_us else {KRX}
        wanted = (segments or required) | (required - set(worker.sync.positions))
        async with worker.sync.lock:
            worker.sync.last = time.monotonic()
            if KRX in wanted:
                rows, summary = await inquiry.domestic_balance(worker.kis)
                worker.sync.positions[KRX] = domestic_positions(rows)
                worker.sync.cash["KRW"] = domestic_cash(summary)
            if US in wanted and US in required:
                worker.sync.positions[US] = await self._us_positions(worker)
                present = await inquiry.overseas_present_balance(worker.kis)
                cash = usd_cash(present.currencies)
                if cash is not None:
                    worker.sync.cash["USD"] = cash
            positions: list[Position] = []
            for segment in sorted(required):
                positions.extend(worker.sync.positions.get(segment, []))
            balances = dict(worker.sync.cash)
            event = AccountSynced(account=worker.alias, cash=balances, positions=unique_positions(positions))
            await portfolio.store_snapshot(self.client, event, self.config.maxlen)
        return event

    @staticmethod
    async def _us_positions(worker: AccountWorker) -> list[Position]:
        us_markets = [market for market in worker.markets if market.is_us]
        # Real accounts: NASD covers every US exchange; virtual ones need each exchange.
        exchanges = [Market.NASD] if worker.kis.env == "real" else us_markets
        positions: list[Position] = []
        for market in exchanges:
            rows, _ = await inquiry.overseas_balance(worker.kis, market)
            positions.extend(overseas_positions(rows, market))
        return unique_positions(positions)


def unique_positions(positions: Iterable[Position]) -> list[Position]:
    """One position per market and ticker (the last one wins: virtual US balances overlap)."""
    seen: dict[tuple[str, str], Position] = {}
    for position in positions:
        seen[(position.market.value, position.ticker)] = position
    return list(seen.values())
