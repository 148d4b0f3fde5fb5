"""The broker gateway: order commands and quote queries in, KIS calls out, order events back.

Inputs (``Gateway.consumers``): the order manager's commands (``keys.ORDERS``: SubmitOrder,
CancelOrder, ReviseOrder) and quote requests (``keys.QUERIES``); a person's cancels (``keys.CANCELS``:
CancelOrder only); the dashboard's quote requests (``keys.QUERIES_DASHBOARD``, a small budget).

Its parts are wired here and share one task set:

* ``OrderDesk`` (orders.py): submit and cancel, exactly once; reconciliation (reconcile.py);
* ``Fills`` (fills.py): fills applied once, from the WebSocket feeds' execution notices
  (tallies.py) or from ``FillPoller`` (polling.py), the REST safety net (fast while no
  notices flow, slow while they do);
* ``AccountSync`` (accounts.py): cash and positions at start, after fills, periodically;
* ``QuoteDesk`` (quotes.py): answers to quote requests, cached;
* ``CalendarCheck`` (calendar_check.py): KIS's KRX calendar against ours, once a day;
* ``OpenOrderCheck`` (open_at_kis.py): KIS's open orders against our records at start (ours
  followed or settled from the order lists, others left alone and reported);
* ``OpenOrderList`` (open_list.py): KIS's open-orders list, one read per account shared by the
  start-up check, the fill poll and reconciliation; every read refreshes the unowned count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from brokergateway.accounts import AccountSync
from brokergateway.calendar_check import CalendarCheck
from brokergateway.config import GatewayConfig
from brokergateway.fills import LIVE_STATES, Fills
from brokergateway.kis.notices import ExecutionNotice, NoticeFeed
from brokergateway.open_at_kis import OpenOrderCheck
from brokergateway.open_list import OpenOrderList
from brokergateway.orders import OrderDesk
from brokergateway.polling import FillPoller
from brokergateway.quotes import QuoteDesk
from brokergateway.worker import AccountWorker
from yquant import keys, orders
from yquant.errors import BrokerError, MessageRefused
from yquant.messages import AnyMessage, CancelOrder, OrderState, ReviseOrder, SubmitOrder, utcnow

logger = logging.getLogger(__name__)

TICK_S = 0.25
ABANDONED_SWEEP_S = 15.0
ABANDONED_AFTER_S = 10.0
CLOSE_WAIT_S = 5.0


class Gateway:
    def __init__(
        self, client: aioredis.Redis, workers: dict[str, AccountWorker], config: GatewayConfig, instance: str = ""
    ) -> None:
        self.client = client
        self.workers = workers
        self.config = config
        self._tasks: set[asyncio.Task[None]] = set()
        self.sync = AccountSync(client, config, self.spawn)
        self.fills = Fills(client, config, self.sync, self._poll_soon)
        self.listed = OpenOrderList()  # KIS's open orders, one read per account shared by the passes
        self.poller = FillPoller(client, config, self.fills, self.spawn, self.listed)
        self.quotes = QuoteDesk(client, workers, config)
        self.orders = OrderDesk(client, workers, config, self.fills, self.listed, instance)
        self.feeds: list[NoticeFeed] = []
        self.calendar = CalendarCheck(workers)
        self.open_orders = OpenOrderCheck(client, config, self.fills, self.poller, self.listed)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _poll_soon(self, worker: AccountWorker) -> None:
        self.poller.schedule(worker, self.config.fill_check_delay_s)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task failed", exc_info=task.exception())

    # --- lifecycle ----------------------------------------------------------------------
    def add_feed(self, feed: NoticeFeed) -> None:
        self.feeds.append(feed)

    async def start(self) -> None:
        """Recover after a restart: reconcile orders left SUBMITTING, follow live ones, set our records
        against KIS's open orders, sync, listen."""
        followed: dict[str, list[str]] = {alias: [] for alias in self.workers}
        for record in await orders.open_orders(self.client):
            worker = self.workers.get(record.account)
            if worker is None:
                continue
            if record.state is OrderState.SUBMITTING:
                self.spawn(self.orders.settle_abandoned(worker, record.client_order_id))
            elif record.state in LIVE_STATES and record.broker_order_id:
                self.fills.track(worker, record)
                followed[worker.alias].append(record.client_order_id)
        for worker in self.workers.values():
            # The open-order check is the first look at the orders followed now: the periodic poll
            # counts from it instead of asking KIS the same again at the first tick.
            worker.poll.last = time.monotonic()
            self.spawn(self.open_orders.at_start(worker, followed[worker.alias]))
            self.spawn(self.sync.sync_quietly(worker))
        for feed in self.feeds:
            self.spawn(feed.run())

    async def run_background(self, stop: asyncio.Event) -> None:
        """Fill polling (fast without notices, a slow safety net with them) and periodic syncs, each
        with a read of KIS's open orders that recounts those yQuant did not place."""
        last_sync = last_sweep = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if now - last_sweep >= ABANDONED_SWEEP_S:
                last_sweep = now
                await self.sweep_open_orders()
            for worker in self.workers.values():
                try:
                    await self._tick(worker, now)
                except (BrokerError, RedisError, OSError, ValueError) as exc:
                    logger.warning("background work failed", extra={"account": worker.alias, "error": str(exc)})
            if self.calendar.claim(now):
                self.spawn(self._check_calendar())
            if now - last_sync >= self.config.sync_interval_s:
                last_sync = now
                for worker in self.workers.values():
                    self.spawn(self.sync.sync_quietly(worker))
                    self.spawn(self.open_orders.recount(worker))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=TICK_S)
        await self.close()

    async def _check_calendar(self) -> None:
        await self.calendar.check()

    async def sweep_open_orders(self) -> None:
        """Look over the stored open orders: reconcile SUBMITTING ones whose submitter died (its
        lease expired), here or elsewhere, and follow live ones this gateway lost sight of.

        An order is lost from sight when its acceptance reached Valkey but the answer did not reach
        the gateway (a write that timed out while Valkey was frozen or the link was cut): it is
        ACCEPTED in Valkey, nobody polls it, and its fills would go unrecorded until a restart.
        """
        try:
            records = await orders.open_orders(self.client)
        except (RedisError, OSError, ValueError) as exc:
            logger.warning("open orders unavailable", extra={"error": str(exc)})
            return
        horizon = utcnow() - timedelta(seconds=ABANDONED_AFTER_S)
        for record in records:
            worker = self.workers.get(record.account)
            coid = record.client_order_id
            if worker is None or self.orders.busy(coid):
                continue
            if record.state in LIVE_STATES and record.broker_order_id and coid not in worker.tracking:
                logger.warning("following a live order this gateway had lost sight of", extra={"client_order_id": coid})
                self.fills.track(worker, record)
                worker.tracking[coid] = 0.0  # no news since it was lost: the next poll asks for it
                continue
            placed = record.submitted_at or record.created_at
            if record.state is OrderState.SUBMITTING and placed <= horizon:
                self.spawn(self.orders.settle_abandoned(worker, coid))

    async def _tick(self, worker: AccountWorker, now: float) -> None:
        await self.fills.resolve_waiting_notices(worker)
        if not worker.tracking:
            return
        if worker.notices_live:
            if worker.poll.due(now, self.config.safety_poll_interval_s) and worker.stale_orders(
                self.config.notice_grace_s
            ):
                self.poller.schedule(worker, 0, stale_only=True)
        elif worker.poll.due(now, max(self.config.poll_interval_s, worker.poll.floor_s)):
            self.poller.schedule(worker, 0)

    async def close(self) -> None:
        """Cancel the background tasks and give them ``CLOSE_WAIT_S`` to finish: a stop must not
        hang on one that does not end (a WebSocket whose closing handshake never completes)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=CLOSE_WAIT_S)
        for task in pending:
            logger.warning("background task did not stop in time", extra={"task": task.get_name()})

    def health(self) -> dict[str, str]:
        """Heartbeat details: accounts, execution-notice sessions, orders being followed, orders open at
        KIS that are not ours (``alias:market=count``)."""
        return {
            "accounts": ",".join(sorted(self.workers)),
            "notices": ",".join(f"{feed.label}:{'up' if feed.connected else 'down'}" for feed in self.feeds) or "off",
            "following": str(sum(len(worker.tracking) for worker in self.workers.values())),
            "unowned_open_orders": self.open_orders.summary(),
        }

    # --- inputs -------------------------------------------------------------------------
    async def handle(self, message: AnyMessage) -> None:
        """An entry of the order stream."""
        if isinstance(message, SubmitOrder):
            await self.orders.submit(message)
        elif isinstance(message, CancelOrder):
            await self.orders.cancel(message)
        elif isinstance(message, ReviseOrder):
            await self.orders.revise(message)
        else:
            logger.warning("ignoring unexpected message", extra={"type": message.type})

    async def handle_cancel(self, message: AnyMessage) -> None:
        """An entry of the cancel stream (a person's cancels: dashboard, console): a ``CancelOrder``
        and nothing else. Whatever else it carries is refused (dead-lettered), never executed: the
        dashboard's user may append there, so a ``SubmitOrder`` on it is what a compromised VM2
        would send."""
        if not isinstance(message, CancelOrder):
            raise MessageRefused(f"{message.type} on {keys.CANCELS}, which carries CancelOrder only")
        await self.orders.cancel(message)

    async def handle_query(self, message: AnyMessage) -> None:
        """An entry of the order manager's query stream."""
        await self.quotes.handle(message)

    async def handle_dashboard_query(self, message: AnyMessage) -> None:
        """An entry of the dashboard's query stream: quotes within the dashboard's budget."""
        await self.quotes.handle_dashboard(message)

    def consumers(self) -> dict[str, Callable[[AnyMessage], Coroutine[Any, Any, None]]]:
        """Each stream the gateway consumes (group ``brokergateway``) and its handler."""
        return {
            keys.ORDERS: self.handle,
            keys.CANCELS: self.handle_cancel,
            keys.QUERIES: self.handle_query,
            keys.QUERIES_DASHBOARD: self.handle_dashboard_query,
        }

    def notice_handler(self, workers: list[AccountWorker]) -> Any:
        """The handler of a feed shared by ``workers`` (one app key): route by account number."""

        async def handle(notice: ExecutionNotice) -> None:
            for worker in workers:
                number = worker.kis.account.number
                if notice.account_number in (number, worker.kis.account.cano):
                    await self.fills.on_notice(worker, notice)
                    return
            logger.debug("notice for another account", extra={"account_number": notice.account_number[-4:]})

        return handle
