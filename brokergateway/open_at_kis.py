"""The account's open orders at KIS set against our records at start, and the orders there that are not ours.

At start (once per account, retried until KIS answers: the first call also proves the token)
the gateway reads KIS's open orders for each market the account trades (open_list.py,
kis/open_orders.py, every page) and sets them against our order records:

* an order of ours that KIS still holds open is followed, with the fills KIS reports for it
  applied (its remaining quantity is KIS's);
* an order of ours we think live that KIS no longer lists is final at KIS: its end (filled,
  cancelled, expired) comes from the daily order lists, as the fill poll reads them, so no fill
  is invented and none is applied twice.

An order open at KIS that is not ours (placed in KIS's own app, say) is never touched. Every read
of the list (this start-up pass, each fill poll, a reconciliation, and ``recount`` with each
periodic account sync: open_list.py) counts them
again for the segments it read (``count_unowned``): each is logged once, counted in
``yquant_gateway_unowned_open_orders{account,market}`` (alert ``YQuantUnownedOpenOrders``) and
written to the account's state (``portfolio.store_open_order_check``: the dashboard's account
view, ``yquant positions``, the heartbeat), because it holds cash or shares the order manager does
not know are spoken for.

An open order that could be one of our SUBMITTING orders (its POST answer was lost) is left to
that order's reconciliation (reconcile.py), which reads the same list.

Only the orders the gateway followed when it started are set against KIS's list here; an order
placed since is the notices' and the polls' (the poll reads the same list, polling.py). The orders
of before the start can still meet a notice here; every path stores a fill only if the stored
filled quantity is the one it read (fills.py), so whichever comes first applies it and the other
finds nothing new.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta

import redis.asyncio as aioredis

from brokergateway import metrics
from brokergateway.config import GatewayConfig
from brokergateway.fills import LIVE_STATES, Fills
from brokergateway.kis.order_list import BrokerOrderStatus
from brokergateway.kis.values import order_number
from brokergateway.open_list import OpenOrderList, OpenOrders, segment_of_record
from brokergateway.order_match import matches
from brokergateway.polling import FillPoller
from brokergateway.worker import AccountWorker
from yquant import keys, orders, portfolio
from yquant.errors import BrokerError
from yquant.messages import OrderState
from yquant.orders import OrderRecord
from yquant.portfolio import UnownedOrder

logger = logging.getLogger(__name__)

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0


class OpenOrderCheck:
    def __init__(
        self, client: aioredis.Redis, config: GatewayConfig, fills: Fills, poller: FillPoller, listed: OpenOrderList
    ) -> None:
        self.client = client
        self.config = config
        self.fills = fills
        self.poller = poller
        self.listed = listed
        listed.listeners.append(self.count_unowned)  # every read of the list, whoever asked for it
        self._reported: set[tuple[str, str]] = set()  # (alias, order number) already logged as unowned
        self.unowned: dict[str, dict[str, int]] = {}  # alias -> segment -> count, as last found
        self._unowned_orders: dict[str, dict[str, list[UnownedOrder]]] = {}  # alias -> segment -> orders
        self.followed_at_start: dict[str, frozenset[str]] = {}  # alias -> client order ids

    async def at_start(self, worker: AccountWorker, followed: Iterable[str]) -> None:
        """Reconcile with KIS's open orders, retrying (with backoff) until KIS answers.

        ``followed``: the client order ids of ``worker``'s orders the gateway followed as it
        started; those are the only records of ours set against the list."""
        self.followed_at_start[worker.alias] = frozenset(followed)
        wait = RETRY_FIRST_S
        while True:
            try:
                await self.reconcile(worker)
                return
            except BrokerError as exc:
                logger.warning(
                    "open orders at KIS unavailable; trying again",
                    extra={"account": worker.alias, "error": exc.message, "retry_s": wait},
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, RETRY_MAX_S)

    async def reconcile(self, worker: AccountWorker) -> None:
        """One pass: KIS's open orders against our records of ``worker``'s account (the unowned
        count is refreshed by the read itself, ``count_unowned``)."""
        at_kis = await self.listed.read(worker)
        records = [r for r in await orders.open_orders(self.client) if r.account == worker.alias]
        before = self.followed_at_start.get(worker.alias, frozenset())
        ours = {
            order_number(r.broker_order_id): r
            for r in records
            if r.client_order_id in before and r.state in LIVE_STATES and r.broker_order_id
        }
        listed: set[str] = set()
        for statuses in at_kis.values():
            for status in statuses:
                record = ours.get(status.broker_order_id)
                if record is None and status.revision and status.original_order_id in ours:
                    # A revision of ours KIS booked while its answer was lost: follow the new number.
                    listed.add(status.original_order_id)
                    record = await self.fills.adopt_revision(worker, ours[status.original_order_id], status)
                record = record or ours.get(status.original_order_id)
                if record is not None:
                    listed.add(order_number(record.broker_order_id))
                    await self._still_open(worker, record, status)
        # Still followed (start() did): one that ended since it was read is left alone.
        gone = [
            r
            for number, r in ours.items()
            if number not in listed and segment_of_record(r) in at_kis and r.client_order_id in worker.tracking
        ]
        if gone:
            logger.info(
                "orders no longer open at KIS; reading their end from the order lists",
                extra={"account": worker.alias, "orders": len(gone)},
            )
            await self.poller.poll(worker, at_kis=at_kis)

    async def recount(self, worker: AccountWorker) -> None:
        """Read KIS's list for the unowned count alone (with the periodic account sync): an account
        that follows no order of ours has no poll to read it. Not before the start-up pass ended."""
        if worker.alias not in self.unowned:
            return
        try:
            await self.listed.read(worker)
        except BrokerError as exc:
            logger.warning("open orders at KIS unavailable", extra={"account": worker.alias, "error": exc.message})

    async def count_unowned(self, worker: AccountWorker, at_kis: OpenOrders) -> None:
        """The orders in a fresh read of KIS's list that are not ours: counted, logged once, stored.

        Our records are read after the list, so an order of ours it shows is by then ACCEPTED
        (its broker order key is set) or still SUBMITTING (matched by ticker, side, quantity, price
        and time); either way it is not counted."""
        records = [r for r in await orders.open_orders(self.client) if r.account == worker.alias]
        submitting = [r for r in records if r.state is OrderState.SUBMITTING]
        unowned: list[tuple[str, BrokerOrderStatus]] = []
        for segment, statuses in at_kis.items():
            for status in statuses:
                if not await self._known(worker, status) and not self._maybe_submitting(submitting, status):
                    unowned.append((segment, status))
        await self._report_unowned(worker, list(at_kis), unowned)

    async def _still_open(self, worker: AccountWorker, record: OrderRecord, status: BrokerOrderStatus) -> None:
        """Ours and open at KIS: apply what KIS filled meanwhile (it stays followed, as start() left it;
        following it again here could bring back a record a notice has just moved on from)."""
        await self.fills.apply_status(worker, record, status, source="open-orders")

    async def _known(self, worker: AccountWorker, status: BrokerOrderStatus) -> bool:
        """One of our orders' broker numbers (a record already final here, or not read above)."""
        for number in (status.broker_order_id, status.original_order_id):
            if number and number != "0" and await self.client.exists(keys.broker_order(worker.alias, number)):
                return True
        return False

    def _maybe_submitting(self, submitting: list[OrderRecord], status: BrokerOrderStatus) -> bool:
        window = timedelta(seconds=self.config.reconcile_window_s)
        return any(matches(r, status, r.created_at - window) for r in submitting)

    async def _report_unowned(
        self, worker: AccountWorker, segments: list[str], unowned: list[tuple[str, BrokerOrderStatus]]
    ) -> None:
        counts = {segment: 0 for segment in segments}
        for segment, status in unowned:
            counts[segment] += 1
            if (worker.alias, status.broker_order_id) not in self._reported:
                self._reported.add((worker.alias, status.broker_order_id))
                logger.warning(
                    "an order open at KIS was not placed by yQuant; it is left alone",
                    extra={
                        "account": worker.alias,
                        "market": segment,
                        "ticker": status.ticker,
                        "side": status.side.value if status.side else "",
                        "remaining": status.remaining_quantity,
                        "price": str(status.price),
                        "broker_order_id": status.broker_order_id,
                    },
                )
        for segment, count in counts.items():
            metrics.UNOWNED_OPEN_ORDERS.labels(worker.alias, segment).set(count)
        self.unowned.setdefault(worker.alias, {}).update(counts)
        # A pass may read one segment only (the poll reads those of the orders it follows): the
        # others keep what their last read found.
        found = self._unowned_orders.setdefault(worker.alias, {})
        found.update({segment: [] for segment in segments})
        for segment, status in unowned:
            found[segment].append(
                UnownedOrder(
                    market=segment,
                    ticker=status.ticker,
                    side=status.side.value if status.side else "",
                    remaining_quantity=status.remaining_quantity,
                    price=status.price,
                    broker_order_id=status.broker_order_id,
                )
            )
        await portfolio.store_open_order_check(
            self.client, worker.alias, [order for segment in sorted(found) for order in found[segment]]
        )

    def summary(self) -> str:
        """For the heartbeat: ``alias:KRX=1`` for each market with unowned open orders."""
        parts = [
            f"{alias}:{segment}={count}"
            for alias, counts in sorted(self.unowned.items())
            for segment, count in sorted(counts.items())
            if count
        ]
        return ",".join(parts) or "none"
