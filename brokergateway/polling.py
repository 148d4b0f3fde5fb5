"""REST fill polling: KIS's order lists read for the orders the gateway follows.

A pass first reads the account's open-orders list once (open_list.py; for the segments of
the wanted orders): an order KIS still lists is settled from it (its fills so far, applied
once), whatever the daily lists answer; a revised order is not (its earlier numbers are in the
daily lists only). Only the wanted orders it does not list (filled,
cancelled or expired since, or not listed yet) are looked up in the daily lists: domestic
ones in inquire-daily-ccld (per Korean trading day, newest first, stopping once every one
was seen), US ones in inquire-ccnl (UNCERTAIN: not in the protocol notes). When the open
list fails, every wanted order is looked up there, as before. Without notices every followed
order is wanted; with notices, only those without news for a while (the safety net).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from brokergateway.config import GatewayConfig
from brokergateway.fills import Fills
from brokergateway.kis import inquiry
from brokergateway.kis.order_list import NEW_YORK, SEOUL, BrokerOrderStatus, domestic_status, overseas_status
from brokergateway.kis.values import order_number
from brokergateway.open_list import OpenOrderList, OpenOrders, segment_of_record
from brokergateway.worker import AccountWorker
from yquant import orders
from yquant.errors import BrokerError
from yquant.messages import Market
from yquant.orders import OrderRecord

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class FillPoller:
    def __init__(
        self, client: aioredis.Redis, config: GatewayConfig, fills: Fills, spawn: Spawn, listed: OpenOrderList
    ) -> None:
        self.client = client
        self.config = config
        self.fills = fills
        self.spawn = spawn
        self.listed = listed

    def schedule(self, worker: AccountWorker, delay: float, *, stale_only: bool = False) -> None:
        if worker.poll.scheduled:
            return
        worker.poll.scheduled = True

        async def later() -> None:
            try:
                await asyncio.sleep(delay)
                worker.poll.scheduled = False
                await self.poll(worker, stale_only=stale_only)
            except BrokerError as exc:
                logger.warning("fill poll failed", extra={"account": worker.alias, "error": exc.message})
            finally:
                worker.poll.scheduled = False

        self.spawn(later())

    async def poll(self, worker: AccountWorker, *, stale_only: bool = False, at_kis: OpenOrders | None = None) -> None:
        """Ask KIS for the tracked orders (only those without recent news if ``stale_only``).

        ``at_kis``: KIS's open orders as the caller has just read them (not read again)."""
        async with worker.poll.lock:
            worker.poll.last = time.monotonic()
            if not worker.tracking:
                return
            records = await orders.get_orders(self.client, list(worker.tracking))
            known = {record.client_order_id for record in records}
            for coid in list(worker.tracking):
                if coid not in known:
                    self.fills.forget(worker, coid)
            for record in records:
                if record.is_final:
                    self.fills.forget(worker, record.client_order_id)
                else:
                    self.fills.remember(record)  # Valkey's copy is the truth
            live = [r for r in records if not r.is_final and r.broker_order_id]
            wanted = set(worker.stale_orders(self.config.notice_grace_s)) if stale_only else set(worker.tracking)
            asked = {segment_of_record(r) for r in live if r.client_order_id in wanted}
            if not asked:
                return
            if at_kis is None:
                us_markets = {r.market for r in live if r.client_order_id in wanted and r.market.is_us}
                at_kis = await self._open_at_kis(worker, asked, us_markets)
            wanted -= await self._apply_open(worker, live, wanted, at_kis)
            domestic = [r for r in live if r.market is Market.KRX]
            overseas = [r for r in live if r.market.is_us]
            if any(r.client_order_id in wanted for r in domestic):
                await self._poll_domestic(worker, domestic, wanted)
            if any(r.client_order_id in wanted for r in overseas):
                await self._poll_overseas(worker, overseas, wanted)

    async def _open_at_kis(self, worker: AccountWorker, segments: set[str], us_markets: set[Market]) -> OpenOrders:
        try:
            return await self.listed.read(worker, segments, us_markets)
        except BrokerError as exc:
            logger.warning(
                "open orders at KIS unavailable; reading the daily order lists only",
                extra={"account": worker.alias, "error": exc.message},
            )
            return {}

    async def _apply_open(
        self, worker: AccountWorker, records: list[OrderRecord], wanted: set[str], at_kis: OpenOrders
    ) -> set[str]:
        """Settle the wanted orders KIS lists as open; their client order ids.

        A revised order is not settled here: the open list shows only its current number, and a
        fill of a number the revision replaced (KIS's last fills before it moved the rest) is seen
        in the daily order lists only."""
        by_number = {
            order_number(r.broker_order_id): r for r in records if r.client_order_id in wanted and not r.earlier_fills
        }
        settled: set[str] = set()
        for statuses in at_kis.values():
            for status in statuses:
                record = by_number.get(status.broker_order_id)
                if record is None or status.amendment:
                    continue
                settled.add(record.client_order_id)
                await self.fills.apply_status(worker, record, status)
        return settled

    async def _poll_domestic(self, worker: AccountWorker, records: list[OrderRecord], wanted: set[str]) -> None:
        by_number = numbers_of(records)
        for day in sorted({_placed(r).astimezone(SEOUL).date() for r in records if r.client_order_id in wanted}):
            missing = {
                order_number(r.broker_order_id)
                for r in records
                if r.client_order_id in wanted and _placed(r).astimezone(SEOUL).date() == day
            }
            async for rows in inquiry.daily_order_pages(worker.kis, day):
                await self._apply_rows(worker, by_number, missing, [domestic_status(row) for row in rows])
                if not missing:
                    break  # newest first: the orders we follow are on the first pages

    async def _poll_overseas(self, worker: AccountWorker, records: list[OrderRecord], wanted: set[str]) -> None:
        by_number = numbers_of(records)
        missing = {order_number(r.broker_order_id) for r in records if r.client_order_id in wanted}
        start = min(_placed(r).astimezone(NEW_YORK).date() for r in records if r.client_order_id in wanted)
        end = max(datetime.now(UTC).astimezone(NEW_YORK).date(), start)
        async for rows in inquiry.overseas_order_pages(worker.kis, start, end):
            await self._apply_rows(worker, by_number, missing, [overseas_status(row) for row in rows])
            if not missing:
                break

    async def _apply_rows(
        self,
        worker: AccountWorker,
        by_number: dict[str, OrderRecord],
        missing: set[str],
        statuses: list[BrokerOrderStatus],
    ) -> None:
        current = {order_number(r.broker_order_id): r for r in by_number.values()}
        for status in statuses:  # revisions first: the row of the number they replaced says "nothing left"
            original = current.get(status.original_order_id)
            if not status.revision or status.broker_order_id in by_number or original is None:
                continue
            adopted = await self.fills.adopt_revision(worker, original, status)
            if adopted is not None:
                for number in (status.broker_order_id, *adopted.earlier_fills):
                    by_number[number] = adopted
        for status in statuses:
            record = by_number.get(status.broker_order_id)
            if record is None:
                continue
            if status.amendment and not status.revision:
                continue  # a cancel's own row
            missing.discard(status.broker_order_id)
            await self.fills.apply_status(worker, record, status)


def numbers_of(records: list[OrderRecord]) -> dict[str, OrderRecord]:
    """Each KIS order number of ``records``: the current one and those revisions left behind
    (whose late fills still count, ``Fills.apply_status``)."""
    found: dict[str, OrderRecord] = {}
    for record in records:
        for number in record.earlier_fills:
            found[number] = record
        found[order_number(record.broker_order_id)] = record
    return found


def _placed(record: OrderRecord) -> datetime:
    return record.submitted_at or record.created_at
