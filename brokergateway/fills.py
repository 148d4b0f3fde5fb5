"""Fills: WebSocket execution notices first, REST polling as the safety net, each fill applied once.

* Every source is turned into KIS's cumulative view of an order (filled quantity and
  amount); ``fill_change`` + ``_store`` store it only if the stored filled quantity is still the one it
  read (a condition inside ``yq_order_update``), so a notice and a poll that report the
  same fill apply it once, in either order.
* Notices are tallied per broker order number (tallies.py; a notice may arrive before the
  POST's answer); a tally only ever lags the truth, so a missed or duplicated notice can
  delay a fill until the next poll (polling.py), never invent one.
* Followed orders are kept in memory as last stored, so a fill costs one round trip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis

from brokergateway import metrics
from brokergateway.accounts import AccountSync, segment_of
from brokergateway.config import GatewayConfig
from brokergateway.kis.notices import ExecutionNotice
from brokergateway.kis.order_list import BrokerOrderStatus
from brokergateway.kis.values import order_number
from brokergateway.reconcile import BROKER_ORDER_TTL_S
from brokergateway.tallies import (
    TALLY_MAX_AGE_S,
    TALLY_RESOLVE_AFTER_S,
    NoticeTally,
    Snapshot,
    all_plausible,
    notice_amount,
)
from brokergateway.worker import AccountWorker
from yquant import keys, markets, orders
from yquant.logs import correlation
from yquant.messages import Market, OrderCancelled, OrderFilled, OrderRevised, OrderState, Side
from yquant.orders import OrderRecord

logger = logging.getLogger(__name__)

LIVE_STATES = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)


@dataclass(frozen=True)
class FillChange:
    """One cumulative fill, ready to be queued on a pipeline."""

    before: OrderRecord
    after: OrderRecord
    event: OrderFilled
    arguments: list[Any]  # of yq_order_update
    notices: Snapshot | None = None  # the notice tally it came from, if any

    @property
    def final(self) -> bool:
        return self.after.state is OrderState.FILLED


class Fills:
    def __init__(
        self,
        client: aioredis.Redis,
        config: GatewayConfig,
        sync: AccountSync,
        request_poll: Callable[[AccountWorker], None],
    ) -> None:
        self.client = client
        self.config = config
        self.sync = sync
        self.request_poll = request_poll  # a REST look at the worker's orders soon (polling.FillPoller)
        self._tallies: dict[tuple[str, str], NoticeTally] = {}
        self._owners: dict[tuple[str, str], str] = {}  # (alias, order number) -> client order id
        self._numbers: dict[str, tuple[str, str]] = {}  # client order id -> (alias, order number)
        self._records: dict[str, OrderRecord] = {}  # followed orders as last stored

    # --- tracking -----------------------------------------------------------------------
    def track(self, worker: AccountWorker, record: OrderRecord) -> None:
        """Follow an accepted order until it is final (``record`` as stored, kept in memory)."""
        key = (worker.alias, order_number(record.broker_order_id))
        coid = record.client_order_id
        previous = self._numbers.get(coid)
        if previous is not None and previous != key:  # revised: KIS follows it under a new number
            self._owners.pop(previous, None)
            self._tallies.pop(previous, None)
        self._owners[key] = coid
        self._numbers[coid] = key
        self._records[coid] = record
        worker.track(coid)

    def pending_fill(self, worker: AccountWorker, record: OrderRecord) -> FillChange | None:
        """The fill that notices reported before the order's answer came, if any."""
        tally = self._tallies.get((worker.alias, order_number(record.broker_order_id)))
        if tally is None or not tally.pending or not all_plausible(record, tally):
            return None
        return self._notice_change(worker, record, tally)

    def _notice_change(self, worker: AccountWorker, record: OrderRecord, tally: NoticeTally) -> FillChange | None:
        earlier, _ = record.earlier_total  # fills under the numbers a revision left behind
        cumulative = min(earlier + tally.quantity, record.quantity)
        amount = notice_amount(record, tally.snapshot, tally.applied, cumulative)
        change = self.fill_change(worker, record, cumulative, amount, "websocket")
        return replace(change, notices=tally.snapshot) if change is not None else None

    async def after_acceptance(
        self, worker: AccountWorker, accepted: OrderRecord, fill: FillChange | None, applied: bool
    ) -> None:
        """Follow the accepted order; settle the fill stored with it and notices that came meanwhile."""
        self.track(worker, accepted)
        if fill is None:
            self.poll_soon(worker)
        elif self.finish_fill(worker, fill, applied):
            self._mark_applied(worker, fill)
        tally = self._tallies.get((worker.alias, order_number(accepted.broker_order_id)))
        if tally is not None and tally.pending:
            await self._apply_tally(worker, accepted.client_order_id, tally)

    async def apply_pending_notices(self, worker: AccountWorker, record: OrderRecord) -> None:
        """Fill notices of the order's (new) number that came before it was followed under it."""
        tally = self._tallies.get((worker.alias, order_number(record.broker_order_id)))
        if tally is not None and tally.pending:
            await self._apply_tally(worker, record.client_order_id, tally)

    def _mark_applied(self, worker: AccountWorker, change: FillChange) -> None:
        tally = self._tallies.get((worker.alias, order_number(change.before.broker_order_id)))
        if tally is not None and change.notices is not None:
            tally.applied = change.notices

    def poll_soon(self, worker: AccountWorker) -> None:
        """A first look at a new order, unless notices will tell."""
        if not worker.notices_live:
            self.request_poll(worker)

    def remember(self, record: OrderRecord) -> None:
        if record.client_order_id in self._records or record.client_order_id in self._numbers:
            self._records[record.client_order_id] = record

    def forget(self, worker: AccountWorker, client_order_id: str) -> None:
        worker.tracking.pop(client_order_id, None)
        self._records.pop(client_order_id, None)
        key = self._numbers.pop(client_order_id, None)
        if key is not None:
            self._owners.pop(key, None)
            self._tallies.pop(key, None)

    async def _record(self, client_order_id: str) -> OrderRecord | None:
        record = self._records.get(client_order_id)
        if record is None:
            record = await orders.get_order(self.client, client_order_id)
        return record

    async def resolve_waiting_notices(self, worker: AccountWorker) -> None:
        """Notices whose order is not followed here (accepted by another process): look it up."""
        now = time.monotonic()
        for (alias, number), tally in list(self._tallies.items()):
            if alias != worker.alias or (alias, number) in self._owners:
                continue
            if now - tally.updated > TALLY_MAX_AGE_S:
                self._tallies.pop((alias, number), None)
            elif now - tally.updated > TALLY_RESOLVE_AFTER_S and not tally.looked_up:
                tally.looked_up = True
                raw = await self.client.get(keys.broker_order(alias, number))
                record = await orders.get_order(self.client, keys.text(raw)) if raw is not None else None
                if record is None or record.state not in LIVE_STATES:
                    continue  # not ours, or already final: the tally ages out
                if order_number(record.broker_order_id) != number:
                    # A number a revision left behind (a late fill there): KIS's list settles it.
                    self._tallies.pop((alias, number), None)
                    worker.tracking[record.client_order_id] = 0.0
                    self.request_poll(worker)
                    continue
                self.track(worker, record)
                await self._apply_tally(worker, record.client_order_id, tally)

    # --- notices ------------------------------------------------------------------------
    async def on_notice(self, worker: AccountWorker, notice: ExecutionNotice) -> None:
        if not notice.is_fill or notice.refused:
            await self._on_order_notice(worker, notice)
            return
        key = (worker.alias, notice.broker_order_id)
        tally = self._tallies.setdefault(key, NoticeTally())
        if not tally.add(notice):
            return  # counted once: a lagging tally is safe, an inflated one is not
        owner = self._owners.get(key)  # unknown: not answered yet, or accepted elsewhere (see the sweep)
        if owner is not None:
            await self._apply_tally(worker, owner, tally)

    async def _on_order_notice(self, worker: AccountWorker, notice: ExecutionNotice) -> None:
        """A refusal or cancel confirmation: REST has the authoritative view, so look soon."""
        if not (notice.refused or notice.amendment == "2"):
            return
        for number in (notice.broker_order_id, notice.original_order_id):
            owner = self._owners.get((worker.alias, number))
            if owner is not None and owner in worker.tracking:
                worker.tracking[owner] = 0.0
                self.request_poll(worker)

    async def _apply_tally(self, worker: AccountWorker, client_order_id: str, tally: NoticeTally) -> None:
        for attempt in range(2):
            record = await self._record(client_order_id)
            if record is None or record.state not in LIVE_STATES:
                return  # unknown, final, or not accepted yet (the acceptance applies the tally then)
            if not all_plausible(record, tally):
                logger.warning(
                    "execution notices do not fit the order; asking KIS instead",
                    extra={"client_order_id": client_order_id},
                )
                worker.tracking[client_order_id] = 0.0
                self.request_poll(worker)
                return
            change = self._notice_change(worker, record, tally)
            if change is None:
                return  # nothing beyond what is stored
            if await self._store(worker, change):
                self._mark_applied(worker, change)
                return
            if attempt == 0:  # another process changed the order since we read it: read it again, once
                logger.info(
                    "order changed meanwhile; applying notices again", extra={"client_order_id": client_order_id}
                )

    async def apply_status(
        self, worker: AccountWorker, record: OrderRecord, status: BrokerOrderStatus, *, source: str = "poll"
    ) -> None:
        """Apply KIS's cumulative view of one order (idempotent). After a revision KIS reports each of
        the order's numbers on its own: the current one's view is added to the earlier numbers'
        fills; an earlier number only ever adds a late fill (it has nothing left to cancel)."""
        earlier = record.earlier_fills
        number = order_number(status.broker_order_id)
        if number in earlier:
            await self._late_fill(worker, record, status, earlier, source)
            return
        if earlier:
            quantity, amount = record.earlier_total
            own = status.filled_amount if status.filled_amount > 0 else status.average_price * status.filled_quantity
            status = replace(status, filled_quantity=quantity + status.filled_quantity, filled_amount=amount + own)
        if status.filled_quantity > record.filled_quantity:
            cumulative = min(status.filled_quantity, record.quantity)
            amount = status.filled_amount if status.filled_amount > 0 else status.average_price * cumulative
            change = self.fill_change(worker, record, cumulative, amount, source)
            if change is not None and await self._store(worker, change):
                record = change.after  # what was just stored: no read back
            else:
                refreshed = await self._record(record.client_order_id)  # changed elsewhere meanwhile
                if refreshed is None:
                    return
                record = refreshed
        if record.is_final or not status.done:
            return
        if status.filled_quantity >= record.quantity:
            if record.filled_quantity >= record.quantity:
                await self._complete(worker, record)
            return
        if record.filled_quantity != status.filled_quantity:
            return  # our fills lag KIS's; the next poll settles them first
        if status.rejected:
            reason = "rejected by the exchange"
        elif record.cancel_reason:
            reason = record.cancel_reason
        else:
            reason = "cancelled or expired at KIS"
        event = OrderCancelled(
            correlation_id=record.correlation_id or record.client_order_id,
            client_order_id=record.client_order_id,
            account=worker.alias,
            cancelled_quantity=record.quantity - status.filled_quantity,
            reason=reason,
        )
        applied, _ = await orders.update_order(
            self.client,
            record.client_order_id,
            new_state=OrderState.CANCELLED,
            fields={"reason": reason},
            event=event,
            condition=("filled_quantity", str(status.filled_quantity)),
            note=reason,
            maxlen=self.config.maxlen,
        )
        if applied:
            metrics.ORDERS.labels("cancelled").inc()
            self.forget(worker, record.client_order_id)

    async def _complete(self, worker: AccountWorker, record: OrderRecord) -> None:
        """Every share filled, yet not FILLED: its last fill was stored as the quantity was lowered
        (it was reckoned against the quantity before). KIS says nothing is left: it ends FILLED."""
        applied, _ = await orders.update_order(
            self.client,
            record.client_order_id,
            new_state=OrderState.FILLED,
            condition=("filled_quantity", str(record.filled_quantity)),
            note="every share filled (the quantity was revised down as the last fill came)",
            maxlen=self.config.maxlen,
        )
        if applied:
            metrics.ORDERS.labels("filled").inc()
            self.forget(worker, record.client_order_id)

    async def adopt_revision(
        self, worker: AccountWorker, record: OrderRecord, status: BrokerOrderStatus
    ) -> OrderRecord | None:
        """A revise row in KIS's order list whose original is the order's current number: KIS
        booked a revision whose answer never reached us (or one made elsewhere, in KIS's own app).
        The order follows the new number from now on, at the row's price; None if it changed
        meanwhile (the next poll looks again)."""
        old = order_number(record.broker_order_id)
        legs = record.earlier_fills
        counted, counted_amount = record.earlier_total
        stored = (record.average_price or status.price) * record.filled_quantity
        legs[old] = (record.filled_quantity - counted, stored - counted_amount)
        note = (
            f"revision found in KIS's order list: price {markets.format_money(record.market.currency, status.price)}"
            f" (KIS order {record.broker_order_id} -> {status.broker_order_id})"
        )
        event = OrderRevised(
            correlation_id=record.correlation_id or record.client_order_id,
            client_order_id=record.client_order_id,
            account=worker.alias,
            broker_order_id=status.broker_order_id,
            limit_price=status.price,
            quantity=record.quantity,
            by="KIS order list",
        )
        fields = {
            "broker_order_id": status.broker_order_id,
            "limit_price": status.price,
            "prior_fills": orders.prior_fills_value(legs),
            "reason": "",  # an unconfirmed revision's note: it is confirmed now
        }
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(
                keys.broker_order(worker.alias, status.broker_order_id), record.client_order_id, ex=BROKER_ORDER_TTL_S
            )
            pipe.fcall(
                "yq_order_update",
                *orders.update_arguments(
                    record.client_order_id,
                    only_in=LIVE_STATES,
                    fields=fields,
                    condition=("filled_quantity", str(record.filled_quantity)),
                    event=event,
                    note=note,
                    history="REVISED",
                    maxlen=self.config.maxlen,
                ),
            )
            results = await pipe.execute()
        if not orders.update_result(results[1])[0]:
            self._records.pop(record.client_order_id, None)
            return None
        logger.warning(
            "following a revision found in KIS's order list",
            extra={"client_order_id": record.client_order_id, "broker_order_id": status.broker_order_id},
        )
        adopted = await orders.get_order(self.client, record.client_order_id)
        if adopted is not None:
            self.track(worker, adopted)
        return adopted

    async def _late_fill(
        self,
        worker: AccountWorker,
        record: OrderRecord,
        status: BrokerOrderStatus,
        earlier: dict[str, tuple[int, Decimal]],
        source: str,
    ) -> None:
        """A fill KIS reports under a number the order was revised away from, beyond what the
        revision counted there (it landed just before KIS moved the rest): added once."""
        number = order_number(status.broker_order_id)
        counted, counted_amount = earlier[number]
        if status.filled_quantity <= counted or record.is_final:
            return
        own = status.filled_amount if status.filled_amount > 0 else status.average_price * status.filled_quantity
        extra, extra_amount = status.filled_quantity - counted, own - counted_amount
        cumulative = min(record.filled_quantity + extra, record.quantity)
        stored = (record.average_price or Decimal(0)) * record.filled_quantity
        legs = dict(earlier)
        legs[number] = (status.filled_quantity, own)
        change = self.fill_change(
            worker, record, cumulative, stored + extra_amount, source, {"prior_fills": orders.prior_fills_value(legs)}
        )
        if change is not None:
            await self._store(worker, change)

    def fill_change(
        self,
        worker: AccountWorker,
        record: OrderRecord,
        cumulative: int,
        amount: Decimal,
        source: str,
        extra_fields: dict[str, object] | None = None,
    ) -> FillChange | None:
        """The change that takes ``record`` to ``cumulative`` shares for ``amount`` in total."""
        previous_quantity = record.filled_quantity
        if cumulative <= previous_quantity or amount <= 0:
            return None
        delta = cumulative - previous_quantity
        average = amount / cumulative
        previous_amount = (record.average_price or Decimal(0)) * previous_quantity
        fill_price = (amount - previous_amount) / delta
        if fill_price <= 0:
            fill_price = average  # sources disagree on earlier fills' amounts: keep the average honest
        rate = self.config.fee_rate_krx if record.market is Market.KRX else self.config.fee_rate_us
        fee = markets.fee(record.market.currency, fill_price * delta * rate)
        final = cumulative >= record.quantity
        event = OrderFilled(
            correlation_id=record.correlation_id or record.client_order_id,
            client_order_id=record.client_order_id,
            account=worker.alias,
            broker_order_id=record.broker_order_id,
            market=record.market,
            ticker=record.ticker,
            side=record.side,
            fill_quantity=delta,
            fill_price=fill_price.quantize(Decimal("0.0001")),
            cumulative_quantity=cumulative,
            average_price=average.quantize(Decimal("0.0001")),
            remaining_quantity=max(record.quantity - cumulative, 0),
            fee=fee,
            source=source,
        )
        state = OrderState.FILLED if final else OrderState.PARTIALLY_FILLED
        fields: dict[str, object] = {
            "filled_quantity": cumulative,
            "average_price": event.average_price,
            "fee": record.fee + fee,
            "last_fill_at": event.occurred_at.isoformat(),
            **(extra_fields or {}),
        }
        arguments = orders.update_arguments(
            record.client_order_id,
            new_state=state,
            fields=fields,
            condition=("filled_quantity", str(previous_quantity)),
            event=event,
            note=f"{delta} @ {event.fill_price} ({source})",
            maxlen=self.config.maxlen,
        )
        after = record.model_copy(
            update={
                "state": state,
                "filled_quantity": cumulative,
                "average_price": event.average_price,
                "fee": record.fee + fee,
                "last_fill_at": event.occurred_at,
                **(extra_fields or {}),
            }
        )
        return FillChange(record, after, event, arguments)

    def queue_fill(self, pipe: Any, worker: AccountWorker, change: FillChange) -> None:
        """Queue ``change`` on a pipeline: the order update, and who opened the position (buys)."""
        pipe.fcall("yq_order_update", *change.arguments)
        record = change.before
        if record.side is Side.BUY:
            # The first order that opens a position names its owner (HSETNX: first writer wins).
            owner = record.strategy if record.origin == "signal" else record.origin
            symbol = markets.symbol_key(record.market, record.ticker)
            pipe.hsetnx(keys.position_attribution(worker.alias), symbol, owner)

    def finish_fill(self, worker: AccountWorker, change: FillChange, applied: bool) -> bool:
        """After the pipeline ran: remember the new state, count, log, sync the account soon."""
        coid = change.before.client_order_id
        if not applied:
            self._records.pop(coid, None)  # someone else changed it: read it again next time
            return False
        metrics.FILLS.labels(change.event.source).inc()
        with correlation(change.before.correlation_id or coid):
            logger.info(
                "order filled" if change.final else "order partially filled",
                extra={
                    "client_order_id": coid,
                    "quantity": change.event.fill_quantity,
                    "price": str(change.event.fill_price),
                    "source": change.event.source,
                },
            )
        if change.final:
            metrics.ORDERS.labels("filled").inc()
            self.forget(worker, coid)
        else:
            self._records[coid] = change.after
            worker.note_news(coid)
        self.sync.schedule(worker, segment_of(change.before.market))
        return True

    async def _store(self, worker: AccountWorker, change: FillChange) -> bool:
        async with self.client.pipeline(transaction=False) as pipe:
            self.queue_fill(pipe, worker, change)
            results = await pipe.execute()
        applied, _ = orders.update_result(results[0])
        return self.finish_fill(worker, change, applied)
