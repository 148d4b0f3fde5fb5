"""The broker gateway: executes order commands at KIS exactly once and tracks them.

* An order is SUBMITTING before the POST. A POST whose outcome is unknown is never
  re-sent: it is reconciled against KIS's daily order list, then adopted with its
  broker order number or marked FAILED for the user to see.
* Fills are found by polling inquire-daily-ccld (a fallback when notices are late or
  missing); cumulative quantities make applying a fill idempotent.
* After fills the account is re-synced from the broker (debounced).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from brokergateway.kis.client import KisClient
from brokergateway.sync import dec, domestic_cash, domestic_positions, integer, overseas_positions
from yquant import keys, orders, portfolio
from yquant.errors import BrokerError, BrokerRejected, BrokerTransportError, TokenError, YQuantError
from yquant.logs import correlation
from yquant.messages import (
    AccountSynced,
    AnyMessage,
    CancelOrder,
    Market,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderState,
    OrderSubmitted,
    OrderType,
    Side,
    SubmitOrder,
)
from yquant.orders import OrderRecord

logger = logging.getLogger(__name__)

SEOUL = ZoneInfo("Asia/Seoul")
RECONCILE_ATTEMPTS = 3
RECONCILE_DELAY_S = 0.5
RECONCILE_WINDOW = timedelta(seconds=30)
LIVE_STATES = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)


@dataclass
class AccountWorker:
    alias: str
    kis: KisClient
    markets: list[str]
    tracking: set[str] = field(default_factory=set)
    poll_scheduled: bool = False
    sync_scheduled: bool = False
    last_sync: datetime | None = None


class Gateway:
    def __init__(
        self,
        client: aioredis.Redis,
        workers: dict[str, AccountWorker],
        *,
        maxlen: int,
        poll_interval_s: float,
        fill_check_delay_s: float,
        sync_debounce_s: float,
        sync_interval_s: float,
    ) -> None:
        self.client = client
        self.workers = workers
        self.maxlen = maxlen
        self.poll_interval_s = poll_interval_s
        self.fill_check_delay_s = fill_check_delay_s
        self.sync_debounce_s = sync_debounce_s
        self.sync_interval_s = sync_interval_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._account_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # --- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Recover after a restart: reconcile orders left SUBMITTING, resume tracking, sync."""
        for record in await orders.open_orders(self.client):
            worker = self.workers.get(record.account)
            if worker is None:
                continue
            if record.state is OrderState.SUBMITTING:
                self._spawn(self._reconcile(worker, record))
            elif record.state in LIVE_STATES:
                worker.tracking.add(record.client_order_id)
        for worker in self.workers.values():
            self._spawn(self._sync_account(worker))

    async def run_background(self, stop: asyncio.Event) -> None:
        """Periodic fill polling and account sync until ``stop``."""
        last_sync = datetime.now(UTC)
        while not stop.is_set():
            for worker in self.workers.values():
                if worker.tracking and not worker.poll_scheduled:
                    self._schedule_poll(worker, 0)
            if datetime.now(UTC) - last_sync > timedelta(seconds=self.sync_interval_s):
                last_sync = datetime.now(UTC)
                for worker in self.workers.values():
                    self._schedule_sync(worker)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.poll_interval_s)
            except TimeoutError:
                pass
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- commands ---------------------------------------------------------------------
    async def handle(self, message: AnyMessage) -> None:
        if isinstance(message, SubmitOrder):
            await self.submit(message)
        elif isinstance(message, CancelOrder):
            await self.cancel(message)
        else:
            logger.warning("ignoring unexpected message", extra={"type": message.type})

    async def submit(self, command: SubmitOrder) -> None:
        worker = self.workers.get(command.account)
        coid = command.client_order_id
        if worker is None:
            await self._reject(
                coid,
                command.account,
                "UNKNOWN_ACCOUNT",
                f"account {command.account!r} is not configured",
                allowed=(OrderState.NEW,),
            )
            return
        applied, previous = await orders.update_order(
            self.client,
            coid,
            allowed=(OrderState.NEW,),
            new_state=OrderState.SUBMITTING,
            fields={"submitted_at": datetime.now(UTC).isoformat()},
            event=OrderSubmitted(correlation_id=command.correlation_id, client_order_id=coid, account=command.account),
            maxlen=self.maxlen,
        )
        if previous is None:
            logger.error("order command without a record; ignored", extra={"client_order_id": coid})
            return
        if not applied:
            if previous is OrderState.SUBMITTING:
                # An earlier attempt may have reached KIS: never post again, reconcile.
                record = await orders.get_order(self.client, coid)
                if record is not None:
                    await self._reconcile(worker, record)
            else:
                logger.info("order already handled", extra={"client_order_id": coid, "state": previous.value})
            return
        try:
            ack = await worker.kis.place_order(
                command.market, command.ticker, command.side, command.quantity, command.order_type, command.limit_price
            )
        except BrokerRejected as exc:
            await self._reject(coid, command.account, exc.code or "REJECTED", exc.message)
            return
        except TokenError as exc:
            await self._reject(coid, command.account, exc.code or "TOKEN", f"no usable KIS token: {exc.message}")
            return
        except BrokerTransportError as exc:
            logger.warning("order outcome unknown; reconciling", extra={"client_order_id": coid, "error": exc.message})
            record = await orders.get_order(self.client, coid)
            if record is not None:
                await self._reconcile(worker, record)
            return
        except BrokerError as exc:  # rate limited after retries: KIS refused before booking
            await self._reject(coid, command.account, exc.code or "BROKER", exc.message)
            return
        except ValueError as exc:
            await self._reject(coid, command.account, "INVALID", str(exc))
            return
        await self._accept(worker, command.correlation_id, coid, ack.broker_order_id, ack.broker_org_no, False)

    async def cancel(self, command: CancelOrder) -> None:
        worker = self.workers.get(command.account)
        record = await orders.get_order(self.client, command.client_order_id)
        if worker is None or record is None or record.is_final:
            return
        if record.state not in LIVE_STATES or not record.broker_order_id:
            logger.info("cancel skipped: order not live at the broker", extra={"state": record.state.value})
            return
        try:
            await worker.kis.cancel_order(
                record.market, record.ticker, record.broker_order_id, record.broker_org_no, record.remaining_quantity
            )
        except BrokerError as exc:
            logger.warning("cancel refused", extra={"client_order_id": record.client_order_id, "error": exc.message})
            return
        self._schedule_poll(worker, self.fill_check_delay_s)

    # --- outcomes ---------------------------------------------------------------------
    async def _reject(
        self,
        coid: str,
        account: str,
        code: str,
        reason: str,
        *,
        allowed: tuple[OrderState, ...] = (OrderState.SUBMITTING,),
        final_state: OrderState = OrderState.REJECTED,
    ) -> None:
        record = await orders.get_order(self.client, coid)
        correlation_id = record.correlation_id if record else ""
        event = OrderRejected(
            correlation_id=correlation_id or coid,
            client_order_id=coid,
            account=account,
            reason_code=code,
            reason=reason,
            final_state=final_state,
        )
        await orders.update_order(
            self.client,
            coid,
            allowed=allowed,
            new_state=final_state,
            fields={"reason": reason},
            event=event,
            note=reason,
            maxlen=self.maxlen,
        )
        logger.info("order %s", final_state.value.lower(), extra={"client_order_id": coid, "reason": reason})

    async def _accept(
        self, worker: AccountWorker, correlation_id: str, coid: str, broker_order_id: str, org_no: str, reconciled: bool
    ) -> None:
        await self.client.set(keys.broker_order(worker.alias, broker_order_id), coid, ex=7 * 86_400)
        event = OrderAccepted(
            correlation_id=correlation_id or coid,
            client_order_id=coid,
            account=worker.alias,
            broker_order_id=broker_order_id,
            broker_org_no=org_no,
            reconciled=reconciled,
        )
        await orders.update_order(
            self.client,
            coid,
            allowed=(OrderState.SUBMITTING,),
            new_state=OrderState.ACCEPTED,
            fields={"broker_order_id": broker_order_id, "broker_org_no": org_no},
            event=event,
            note="adopted after reconciliation" if reconciled else "",
            maxlen=self.maxlen,
        )
        worker.tracking.add(coid)
        self._schedule_poll(worker, self.fill_check_delay_s)
        logger.info("order accepted", extra={"client_order_id": coid, "broker_order_id": broker_order_id})

    # --- reconciliation ---------------------------------------------------------------
    async def _reconcile(self, worker: AccountWorker, record: OrderRecord) -> None:
        """Find an order whose POST outcome is unknown in KIS's daily list; adopt or fail it."""
        with correlation(record.correlation_id or record.client_order_id):
            if record.market is not Market.KRX:
                await self._reject(
                    record.client_order_id,
                    worker.alias,
                    "UNCONFIRMED",
                    "order outcome unknown and US orders cannot be reconciled yet; check KIS",
                    final_state=OrderState.FAILED,
                )
                return
            since = (record.submitted_at or record.created_at) - RECONCILE_WINDOW
            for attempt in range(RECONCILE_ATTEMPTS):
                await asyncio.sleep(RECONCILE_DELAY_S * (attempt + 1))
                try:
                    rows = await worker.kis.daily_orders(
                        since.astimezone(SEOUL).date(), ticker=record.ticker, side=record.side
                    )
                except BrokerError as exc:
                    logger.warning("reconciliation query failed", extra={"error": exc.message})
                    continue
                for row in rows:
                    if not _matches(record, row, since):
                        continue
                    broker_order_id = str(row.get("odno", "")).strip()
                    claimed = await self.client.set(
                        keys.broker_order(worker.alias, broker_order_id), record.client_order_id, nx=True, ex=7 * 86_400
                    )
                    owner = await self.client.get(keys.broker_order(worker.alias, broker_order_id))
                    if not claimed and owner != record.client_order_id.encode():
                        continue  # that broker order belongs to another of our orders
                    logger.warning(
                        "order adopted after an unknown outcome",
                        extra={"client_order_id": record.client_order_id, "broker_order_id": broker_order_id},
                    )
                    await self._accept(
                        worker,
                        record.correlation_id,
                        record.client_order_id,
                        broker_order_id,
                        str(row.get("ord_gno_brno", "")).strip(),
                        True,
                    )
                    return
            await self._reject(
                record.client_order_id,
                worker.alias,
                "UNCONFIRMED",
                "no answer from KIS and the order is not in KIS's order list; it was not re-sent",
                final_state=OrderState.FAILED,
            )

    # --- fills ------------------------------------------------------------------------
    def _schedule_poll(self, worker: AccountWorker, delay: float) -> None:
        if worker.poll_scheduled:
            return
        worker.poll_scheduled = True

        async def later() -> None:
            try:
                await asyncio.sleep(delay)
                worker.poll_scheduled = False
                await self.poll_fills(worker)
            except BrokerError as exc:
                logger.warning("fill poll failed", extra={"account": worker.alias, "error": exc.message})
            except YQuantError:
                logger.exception("fill poll failed")
            finally:
                worker.poll_scheduled = False

        self._spawn(later())

    async def poll_fills(self, worker: AccountWorker) -> None:
        async with self._account_locks[worker.alias]:
            if not worker.tracking:
                return
            tracked = {r.client_order_id: r for r in await orders.get_orders(self.client, list(worker.tracking))}
            for coid in list(worker.tracking):
                record = tracked.get(coid)
                if record is None or record.is_final:
                    worker.tracking.discard(coid)
            by_broker_id = {r.broker_order_id: r for r in tracked.values() if not r.is_final and r.broker_order_id}
            if not by_broker_id:
                return
            domestic = {k: v for k, v in by_broker_id.items() if v.market is Market.KRX}
            days = {r.created_at.astimezone(SEOUL).date() for r in domestic.values()}
            for day in sorted(days):
                wanted = {k for k, v in domestic.items() if v.created_at.astimezone(SEOUL).date() == day}
                async for rows in worker.kis.daily_order_pages(day):
                    for row in rows:
                        broker_order_id = str(row.get("odno", "")).strip()
                        record = domestic.get(broker_order_id)
                        if record is not None:
                            wanted.discard(broker_order_id)
                            await self.apply_order_status(worker, record, row)
                    if not wanted:
                        break  # newest first: the orders we track are on the first pages
            # US order status polling arrives with the overseas order list (not yet).

    async def apply_order_status(self, worker: AccountWorker, record: OrderRecord, row: dict[str, Any]) -> None:
        """Apply KIS's cumulative view of one order (idempotent)."""
        cumulative = integer(row.get("tot_ccld_qty"))
        total_amount = dec(row.get("tot_ccld_amt"))
        average = dec(row.get("avg_prvs"))
        if cumulative > record.filled_quantity:
            await self.apply_fill(worker, record, cumulative, average, total_amount, source="poll")
            refreshed = await orders.get_order(self.client, record.client_order_id)
            if refreshed is None:
                return
            record = refreshed
        cancelled = str(row.get("cncl_yn", "")).strip() == "Y" or integer(row.get("cncl_cfrm_qty")) > 0
        rejected = integer(row.get("rjct_qty")) > 0
        remaining = integer(row.get("rmn_qty"))
        if not record.is_final and (cancelled or rejected) and remaining == 0 and cumulative < record.quantity:
            event = OrderCancelled(
                correlation_id=record.correlation_id or record.client_order_id,
                client_order_id=record.client_order_id,
                account=worker.alias,
                cancelled_quantity=record.quantity - cumulative,
                reason="rejected by the exchange" if rejected else "cancelled",
            )
            await orders.update_order(
                self.client,
                record.client_order_id,
                allowed=LIVE_STATES,
                new_state=OrderState.CANCELLED,
                event=event,
                maxlen=self.maxlen,
            )
            worker.tracking.discard(record.client_order_id)

    async def apply_fill(
        self,
        worker: AccountWorker,
        record: OrderRecord,
        cumulative: int,
        average: Decimal,
        total_amount: Decimal,
        *,
        source: str,
        fee: Decimal = Decimal(0),
    ) -> bool:
        previous_qty = record.filled_quantity
        if cumulative <= previous_qty:
            return False
        delta = cumulative - previous_qty
        previous_amount = (record.average_price or Decimal(0)) * previous_qty
        amount = total_amount if total_amount > 0 else average * cumulative
        fill_price = (amount - previous_amount) / delta if delta else average
        if average <= 0 and cumulative:
            average = amount / cumulative
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
        applied, _ = await orders.update_order(
            self.client,
            record.client_order_id,
            allowed=LIVE_STATES,
            new_state=OrderState.FILLED if final else OrderState.PARTIALLY_FILLED,
            fields={"filled_quantity": cumulative, "average_price": event.average_price, "fee": record.fee + fee},
            condition=("filled_quantity", str(previous_qty)),
            event=event,
            note=f"{delta} @ {event.fill_price} ({source})",
            maxlen=self.maxlen,
        )
        if not applied:
            return False
        with correlation(record.correlation_id):
            logger.info(
                "order filled" if final else "order partially filled",
                extra={
                    "client_order_id": record.client_order_id,
                    "quantity": delta,
                    "price": str(event.fill_price),
                    "source": source,
                },
            )
        if final:
            worker.tracking.discard(record.client_order_id)
        if record.side is Side.BUY:
            await portfolio.remember_attribution(
                self.client,
                worker.alias,
                record.market.value,
                record.ticker,
                record.strategy if record.origin == "signal" else record.origin,
            )
        self._schedule_sync(worker)
        return True

    # --- account sync -----------------------------------------------------------------
    def _schedule_sync(self, worker: AccountWorker) -> None:
        if worker.sync_scheduled:
            return
        worker.sync_scheduled = True

        async def later() -> None:
            try:
                await asyncio.sleep(self.sync_debounce_s)
                worker.sync_scheduled = False
                await self._sync_account(worker)
            finally:
                worker.sync_scheduled = False

        self._spawn(later())

    async def _sync_account(self, worker: AccountWorker) -> None:
        try:
            await self.sync_account(worker)
        except BrokerError as exc:
            logger.warning("account sync failed", extra={"account": worker.alias, "error": exc.message})

    async def sync_account(self, worker: AccountWorker) -> AccountSynced:
        rows, summary = await worker.kis.domestic_balance()
        positions = domestic_positions(rows)
        cash: dict[str, Decimal] = {"KRW": domestic_cash(summary)}
        us_markets = [Market(m) for m in worker.markets if m in ("NASD", "NYSE", "AMEX")]
        exchanges = us_markets[:1] if worker.kis.account.env == "real" else us_markets
        for market in exchanges:
            us_rows, _ = await worker.kis.overseas_balance(market)
            positions.extend(overseas_positions(us_rows, market))
        event = AccountSynced(account=worker.alias, cash=cash, positions=_unique(positions))
        await portfolio.store_snapshot(self.client, event, self.maxlen)
        worker.last_sync = datetime.now(UTC)
        return event


def _unique(positions: list[Any]) -> list[Any]:
    seen: dict[tuple[str, str], Any] = {}
    for position in positions:
        seen[(position.market.value, position.ticker)] = position
    return list(seen.values())


def _matches(record: OrderRecord, row: dict[str, Any], since: datetime) -> bool:
    if str(row.get("pdno", "")).strip() != record.ticker:
        return False
    side_code = str(row.get("sll_buy_dvsn_cd", "")).strip()
    if side_code != ("02" if record.side is Side.BUY else "01"):
        return False
    if integer(row.get("ord_qty")) != record.quantity:
        return False
    limit_order = record.order_type is OrderType.LIMIT and record.limit_price is not None
    if limit_order and dec(row.get("ord_unpr")) != record.limit_price:
        return False
    stamp = f"{row.get('ord_dt', '')}{row.get('ord_tmd', '')}".strip()
    try:
        placed = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=SEOUL)
    except ValueError:
        return True  # no usable time: quantity, side and ticker matched
    return placed >= since.astimezone(SEOUL).replace(microsecond=0)
