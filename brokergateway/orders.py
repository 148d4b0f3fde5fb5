"""Order commands at KIS, exactly once.

* ``SubmitOrder``: NEW -> SUBMITTING (only from NEW) before the POST; a definite answer
  gives ACCEPTED (with KIS's order number) or REJECTED (with KIS's message for the user).
  No connection at all gives FAILED ("not sent"). A timeout, reset or unreadable answer
  leaves the outcome unknown: the order is reconciled against KIS's order list and
  adopted, or, when KIS's list proves over a settle period that it does not have it, sent
  again (at most ``resubmit_max`` times, while its signal is younger than the stale-alert
  limit) or marked FAILED with the reason. Fields always come from the stored order record:
  the command only names it.
* A US "market" order arrives priced: the order manager set its marketable limit (ADR 0007).
  One without a limit is not sent (FAILED, NO_PRICE); the gateway never prices an order.
* ``CancelOrder``: cancels what is left of a live order; the poll confirms it.
* ``ReviseOrder`` (from the order manager, which checked it against the risk limits): a lower
  quantity is a partial cancel (the order keeps its KIS number); a new price moves what is left to
  a new KIS order number, which the order follows from then on (``OrderRecord.prior_fills`` keeps
  what the old number filled). A refusal leaves the order as it was, with KIS's message.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from decimal import Decimal

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from brokergateway import metrics
from brokergateway.config import GatewayConfig
from brokergateway.fills import LIVE_STATES, Fills
from brokergateway.kis import trading
from brokergateway.kis.values import order_number
from brokergateway.open_list import OpenOrderList
from brokergateway.reconcile import BROKER_ORDER_TTL_S, NotSettled, find_order
from brokergateway.worker import AccountWorker
from yquant import keys
from yquant import orders as order_store
from yquant.errors import (
    BrokerError,
    BrokerProtocolError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerTransportError,
    BrokerUnreachable,
    OrderInvalid,
    TokenError,
)
from yquant.logs import correlation
from yquant.markets import format_money
from yquant.messages import (
    CancelOrder,
    OrderAccepted,
    OrderCancelled,
    OrderFailed,
    OrderRejected,
    OrderRevised,
    OrderState,
    OrderSubmitted,
    ReviseOrder,
    SubmitOrder,
    utcnow,
)
from yquant.orders import OrderRecord, prior_fills_value, revision_problem
from yquant.risk_limits import overridden_limits
from yquant.runtime import HEARTBEAT_INTERVAL_S, HEARTBEAT_TTL_S, LIFE

logger = logging.getLogger(__name__)

# Held while an order is submitted or reconciled; it outlives any POST (pacing wait + timeout),
# so a lease that expired means its holder died, and the order may be reconciled.
LEASE_TTL_MS = 120_000
# A lease whose holder's heartbeat is gone (or names another life) is taken over once it is
# this old: longer than a heartbeat's TTL plus one refresh, so a live holder is never mistaken
# for a dead one while its first heartbeat, or the first after a Valkey restart, is on its way.
DEAD_HOLDER_AFTER_MS = (HEARTBEAT_TTL_S + 2 * int(HEARTBEAT_INTERVAL_S)) * 1000


class OrderDesk:
    def __init__(
        self,
        client: aioredis.Redis,
        workers: dict[str, AccountWorker],
        config: GatewayConfig,
        fills: Fills,
        listed: OpenOrderList,
        instance: str = "",
    ) -> None:
        self.client = client
        self.workers = workers
        self.config = config
        self.fills = fills
        self.listed = listed
        self.instance = instance or uuid.uuid4().hex
        self.holder = f"{self.instance}|{LIFE}"  # what this process writes into the leases it takes
        self._busy: set[str] = set()  # client order ids being submitted or settled in this process

    # --- submit -------------------------------------------------------------------------
    async def submit(self, command: SubmitOrder) -> None:
        """Send the stored order the command names. The command's account and market pick the
        worker before the record is in hand (the step that marks the order SUBMITTING returns it,
        and one that does not match is failed unsent); a command for an account or market this
        gateway does not trade has its record read first, which says what to refuse."""
        coid = command.client_order_id
        worker = self.workers.get(command.account)
        correlation_id = command.correlation_id or coid
        if worker is None or not worker.serves(command.market):
            record = await order_store.get_order(self.client, coid)
            if record is None:
                logger.error("order command without a record; ignored", extra={"client_order_id": coid})
                return
            alias = record.account
            worker = self.workers.get(alias)
            if worker is None:
                reason = f"account {alias!r} is not configured"
                await self.reject(coid, alias, "UNKNOWN_ACCOUNT", reason, final_state=OrderState.FAILED)
                return
            if not worker.serves(record.market):
                reason = f"account {alias!r} does not trade {record.market.value}"
                await self.reject(coid, alias, "MARKET_NOT_TRADED", reason, final_state=OrderState.FAILED)
                return
            correlation_id = record.correlation_id or coid
        with self._working_on(coid) as free:
            if not free:
                logger.info("order already being handled here", extra={"client_order_id": coid})
                return
            await self._submit(worker, coid, correlation_id)

    async def _submit(self, worker: AccountWorker, coid: str, correlation_id: str) -> None:
        alias = worker.alias
        # The pacing slot is taken before the order is marked SUBMITTING, so a gateway that dies
        # with a backlog leaves those orders NEW (sent by whoever handles the command next), not
        # SUBMITTING with an outcome to reconcile. The client stamps the slot again as it sends.
        slot = await worker.kis.limiter.acquire()
        submitted_at = utcnow()
        # The lease says "being submitted": a redelivered command must not reconcile it meanwhile.
        # It is taken in the step that marks the order SUBMITTING, whether or not that applies.
        result = await self.client.fcall(
            "yq_order_update",
            *order_store.update_arguments(
                coid,
                new_state=OrderState.SUBMITTING,
                fields={"submitted_at": submitted_at.isoformat()},
                event=OrderSubmitted(correlation_id=correlation_id, client_order_id=coid, account=alias),
                maxlen=self.config.maxlen,
                take_lease=(self.holder, LEASE_TTL_MS),
                with_record=True,
            ),
        )
        applied, previous = order_store.update_result(result)
        own_lease = order_store.lease_result(result)
        record = order_store.record_result(result)
        if not applied or record is None:
            await self._not_submitted(worker, coid, previous, own_lease)
            return
        if record.account != alias or not worker.serves(record.market):
            # The command and its record disagree (nothing the order manager writes does this):
            # the record is what counts, and nothing was sent.
            named, actual = f"account {alias!r}", f"account {record.account!r} ({record.market.value})"
            reason = f"the command named {named}; the order is in {actual}"
            await self.reject(coid, record.account, "MISMATCH", reason, final_state=OrderState.FAILED, record=record)
            return
        metrics.ORDERS.labels("submitted").inc()
        await self._post(worker, record, slot=slot)

    async def _post(self, worker: AccountWorker, record: OrderRecord, *, slot: str | None = None) -> None:
        """POST a SUBMITTING order (the caller holds its lease) and settle the answer. ``slot``:
        the request's pacing slot, when the caller took it."""
        coid, alias = record.client_order_id, worker.alias
        price = record.limit_price
        if record.market.is_us and price is None:
            reason = "a US order needs a limit price (the order manager prices US market orders); it was not sent"
            await self.reject(coid, alias, "NO_PRICE", reason, final_state=OrderState.FAILED, record=record)
            return
        try:
            ack = await trading.place_order(
                worker.kis,
                record.market,
                record.ticker,
                record.side,
                record.quantity,
                record.order_type,
                price,
                slot=slot,
            )
        except (BrokerRejected, BrokerRateLimited) as exc:
            # KIS refused before booking: its message is what the user sees.
            await self.reject(coid, alias, exc.code or "REJECTED", exc.message, record=record)
        except TokenError as exc:
            await self.reject(
                coid, alias, exc.code or "TOKEN", f"no usable KIS access token: {exc.message}", record=record
            )
        except BrokerUnreachable as exc:
            await self.reject(
                coid, alias, "UNREACHABLE", f"KIS could not be reached; the order was not sent ({exc.message})",
                final_state=OrderState.FAILED, record=record,
            )  # fmt: skip
        except (BrokerTransportError, BrokerProtocolError) as exc:
            logger.warning("order outcome unknown; reconciling", extra={"client_order_id": coid, "error": exc.message})
            stored = await order_store.get_order(self.client, coid)
            if stored is not None:
                await self.settle_unknown(worker, stored)
        except OrderInvalid as exc:  # refused before sending: nothing reached KIS
            await self.reject(coid, alias, "INVALID", str(exc), record=record)
        else:
            await self.accept(worker, record, ack.broker_order_id, ack.broker_org_no)

    async def _not_submitted(
        self, worker: AccountWorker, coid: str, previous: OrderState | None, own_lease: bool
    ) -> None:
        """The command came again (or has no record): never post; reconcile an abandoned submission."""
        record = await order_store.get_order(self.client, coid) if own_lease else None
        if record is not None and record.state is OrderState.SUBMITTING:
            # An earlier attempt may have reached KIS and nobody holds the order: reconcile it.
            await self.settle_unknown(worker, record)
            return
        if own_lease:
            await self.client.delete(keys.order_lease(coid))
        if previous is None:
            logger.error("order command without a record; ignored", extra={"client_order_id": coid})
        elif previous is OrderState.SUBMITTING:
            logger.info("order is being submitted or reconciled elsewhere", extra={"client_order_id": coid})
        else:
            logger.info("order already handled", extra={"client_order_id": coid, "state": previous.value})

    # --- outcomes -----------------------------------------------------------------------
    async def reject(
        self,
        coid: str,
        account: str,
        code: str,
        reason: str,
        *,
        final_state: OrderState = OrderState.REJECTED,
        record: OrderRecord | None = None,
    ) -> None:
        """End an order REJECTED (the broker refused it: ``OrderRejected``) or FAILED (it never
        reached the broker, or the broker does not have it: ``OrderFailed``), and release its lease
        in the same step. ``record``: the order as the caller has it (read here when None); only
        its correlation id is used, which never changes."""
        if record is None:
            record = await order_store.get_order(self.client, coid)
        correlation_id = (record.correlation_id if record else "") or coid
        event_type = OrderFailed if final_state is OrderState.FAILED else OrderRejected
        event = event_type(
            correlation_id=correlation_id,
            client_order_id=coid,
            account=account,
            reason_code=code,
            reason=reason,
        )
        applied, _ = await order_store.update_order(
            self.client,
            coid,
            new_state=final_state,
            fields={"reason": reason},
            event=event,
            note=reason,
            maxlen=self.config.maxlen,
            drop_lease=True,
        )
        if applied:
            metrics.ORDERS.labels(final_state.value.lower()).inc()
        with correlation(correlation_id):
            logger.info("order %s", final_state.value.lower(), extra={"client_order_id": coid, "reason": reason})

    async def accept(
        self,
        worker: AccountWorker,
        record: OrderRecord,
        broker_order_id: str,
        org_no: str,
        *,
        reconciled: bool = False,
    ) -> bool:
        """SUBMITTING -> ACCEPTED with KIS's order number, in one round trip with the broker-order
        key and any fill that notices reported before KIS's answer came; the change's reply says
        whether a cancel was asked for meanwhile."""
        coid = record.client_order_id
        event = OrderAccepted(
            correlation_id=record.correlation_id or coid,
            client_order_id=coid,
            account=worker.alias,
            broker_order_id=broker_order_id,
            broker_org_no=org_no,
            reconciled=reconciled,
        )
        accepted = record.model_copy(
            update={"state": OrderState.ACCEPTED, "broker_order_id": broker_order_id, "broker_org_no": org_no}
        )
        fill = self.fills.pending_fill(worker, accepted)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(keys.broker_order(worker.alias, order_number(broker_order_id)), coid, ex=BROKER_ORDER_TTL_S)
            pipe.fcall(
                "yq_order_update",
                *order_store.update_arguments(
                    coid,
                    new_state=OrderState.ACCEPTED,
                    fields={"broker_order_id": broker_order_id, "broker_org_no": org_no},
                    event=event,
                    note="adopted after reconciliation" if reconciled else "",
                    maxlen=self.config.maxlen,
                    drop_lease=True,
                ),
            )
            if fill is not None:
                self.fills.queue_fill(pipe, worker, fill)
            results = await pipe.execute()
        applied, previous = order_store.update_result(results[1])
        if not applied:
            logger.error(
                "KIS booked an order whose record is no longer SUBMITTING; check it at KIS",
                extra={"client_order_id": coid, "broker_order_id": broker_order_id, "state": str(previous)},
            )
            return False
        metrics.ORDERS.labels("adopted" if reconciled else "accepted").inc()
        logger.info("order accepted", extra={"client_order_id": coid, "broker_order_id": broker_order_id})
        fill_applied = fill is not None and order_store.update_result(results[2])[0]
        await self.fills.after_acceptance(worker, accepted, fill, fill_applied)
        if order_store.cancel_reason_of(results[1]):  # a cancel asked for while it was SUBMITTING
            logger.info("a cancel came while the order was being sent; cancelling", extra={"client_order_id": coid})
            current = await order_store.get_order(self.client, coid)
            if current is not None and current.state in LIVE_STATES:
                await self._cancel_at_kis(current)
        return True

    async def settle_abandoned(self, worker: AccountWorker, coid: str) -> None:
        """Reconcile a SUBMITTING order nobody is working on (its lease expired, e.g. after a crash)."""
        with self._working_on(coid) as free:
            if free:
                await self._settle_if_free(worker, coid)

    async def _settle_if_free(self, worker: AccountWorker, coid: str) -> None:
        free = await self.client.set(keys.order_lease(coid), self.holder, nx=True, px=LEASE_TTL_MS)
        if not free and not await self._take_over_dead_lease(coid):
            logger.info("order is being submitted or reconciled elsewhere", extra={"client_order_id": coid})
            return
        record = await order_store.get_order(self.client, coid)
        if record is not None and record.state is OrderState.SUBMITTING:
            await self.settle_unknown(worker, record)
        else:
            await self.client.delete(keys.order_lease(coid))

    async def _take_over_dead_lease(self, coid: str) -> bool:
        """Take an order's lease from a holder that died with it; True when this process now holds it.

        The holder is dead when it is this process (the caller marked the order busy, so nothing
        here works on it: a lease left behind by an error), an earlier life of this instance (a
        restarted container keeps its host name and pid), or a gateway whose heartbeat is gone or
        names another life, once the lease is older than ``DEAD_HOLDER_AFTER_MS``.
        """
        key = keys.order_lease(coid)
        async with self.client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                raw, left_ms = await pipe.get(key), await pipe.pttl(key)
                if raw is None:
                    return False  # released meanwhile: the next sweep takes it the ordinary way
                holder = keys.text(raw)
                instance, _, life = holder.partition("|")
                if not (holder == self.holder or (instance == self.instance and life != LIFE)):
                    age_ms = LEASE_TTL_MS - int(left_ms)
                    seen = await pipe.hget(keys.heartbeat("brokergateway", instance), "life")
                    alive = seen is not None and keys.text(seen) == life
                    if alive or age_ms < DEAD_HOLDER_AFTER_MS:
                        return False
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.set(key, self.holder, px=LEASE_TTL_MS)
                await pipe.execute()
            except WatchError:
                return False
        logger.warning("took over an order whose submitter died", extra={"client_order_id": coid, "from": holder})
        return True

    @contextlib.contextmanager
    def _working_on(self, coid: str) -> Iterator[bool]:
        """Claim ``coid`` for a submission or a settlement in this process while inside: False when
        another task here already holds it (it is left to that one)."""
        if coid in self._busy:
            yield False
            return
        self._busy.add(coid)
        try:
            yield True
        finally:
            self._busy.discard(coid)

    def busy(self, coid: str) -> bool:
        return coid in self._busy

    async def settle_unknown(self, worker: AccountWorker, record: OrderRecord) -> None:
        """An order whose POST outcome is unknown: adopt KIS's order, or, when KIS's list proves over
        a settle period that it does not have it, send it again (bounded, while its signal is fresh)
        or mark it FAILED. The caller holds the order's lease; the outcome releases it."""
        metrics.ORDERS.labels("unknown").inc()
        coid = record.client_order_id
        with correlation(record.correlation_id or coid):
            try:
                status = await find_order(self.client, worker, record, self.config, self.listed)
            except NotSettled as exc:
                reason = f"no answer from KIS and its order list could not be checked ({exc}); it was not sent again"
                await self.reject(coid, worker.alias, "UNCONFIRMED", reason, final_state=OrderState.FAILED)
                return
            if status is None:
                await self._resubmit_or_fail(worker, record)
                return
            logger.warning(
                "order adopted after an unknown outcome",
                extra={"client_order_id": coid, "broker_order_id": status.broker_order_id},
            )
            if await self.accept(worker, record, status.broker_order_id, status.branch, reconciled=True):
                accepted = await order_store.get_order(self.client, coid)
                if accepted is not None:
                    await self.fills.apply_status(worker, accepted, status)

    async def _resubmit_or_fail(self, worker: AccountWorker, record: OrderRecord) -> None:
        """KIS does not have the order: send it again if allowed, else end it FAILED with the reason."""
        coid, done = record.client_order_id, record.resubmissions
        missing = "no answer from KIS and the order is not in KIS's order list"
        if done >= self.config.resubmit_max:
            reason = f"{missing} after {done + 1} attempts; it was not sent again"
            await self.reject(coid, worker.alias, "UNCONFIRMED", reason, final_state=OrderState.FAILED)
            return
        limit_s = await self._signal_age_limit_s()
        age_s = (utcnow() - (record.signal_at or record.created_at)).total_seconds()
        if age_s > limit_s:
            reason = f"{missing}; its signal is {age_s:.0f}s old (limit {limit_s:.0f}s), so it was not sent again"
            await self.reject(coid, worker.alias, "UNCONFIRMED", reason, final_state=OrderState.FAILED)
            return
        now = utcnow()
        applied, _ = await order_store.update_order(
            self.client,
            coid,
            only_in=(OrderState.SUBMITTING,),
            fields={"resubmissions": done + 1, "submitted_at": now.isoformat()},
            condition=("resubmissions", str(done)),
            maxlen=self.config.maxlen,
        )
        if not applied:
            logger.info("order changed while being reconciled; not sent again", extra={"client_order_id": coid})
            return
        await self.client.set(keys.order_lease(coid), self.holder, px=LEASE_TTL_MS)
        metrics.ORDERS.labels("resubmitted").inc()
        metrics.RESUBMISSIONS.inc()
        logger.warning(
            "KIS does not have the order; sending it again",
            extra={"client_order_id": coid, "resubmission": done + 1},
        )
        again = record.model_copy(update={"resubmissions": done + 1, "submitted_at": now, "updated_at": now})
        await self._post(worker, again)

    async def _signal_age_limit_s(self) -> float:
        """The stale-alert limit, as the order manager applies it (a runtime override wins)."""
        try:
            override = (await overridden_limits(self.client)).get("max_signal_age_s")
            return float(override) if override is not None else self.config.signal_max_age_s
        except (TypeError, ValueError):
            return self.config.signal_max_age_s

    # --- cancel -------------------------------------------------------------------------
    async def cancel(self, command: CancelOrder) -> None:
        """Cancel what is left of an order, and keep why: the cancellation shows that reason.

        A NEW order (not yet sent, e.g. queued behind the account's pacing) is cancelled here and
        never sent. A SUBMITTING one keeps the request; ``accept`` sends the cancel once KIS has
        answered with an order number. A live one is cancelled at KIS and the poll confirms it.
        """
        coid = command.client_order_id
        record = await order_store.get_order(self.client, coid)
        if record is None or record.is_final:
            return
        why = command.reason or "cancel requested"
        if record.state is OrderState.NEW:
            event = OrderCancelled(
                correlation_id=record.correlation_id or coid,
                client_order_id=coid,
                account=record.account,
                cancelled_quantity=record.quantity,
                reason=f"{why}, before it was sent to KIS",
            )
            applied, _ = await order_store.update_order(
                self.client,
                coid,
                new_state=OrderState.CANCELLED,
                fields={"cancel_reason": why, "reason": event.reason},
                event=event,
                note=event.reason,
                maxlen=self.config.maxlen,
            )
            if applied:
                metrics.ORDERS.labels("cancelled").inc()
                return
        await order_store.update_order(
            self.client, coid, only_in=(*LIVE_STATES, OrderState.SUBMITTING), fields={"cancel_reason": why},
            maxlen=self.config.maxlen,
        )  # fmt: skip
        record = await order_store.get_order(self.client, coid)  # it may have moved on meanwhile
        if record is None or record.is_final:
            return
        if record.state not in LIVE_STATES or not record.broker_order_id:
            logger.info("cancel waits for KIS's answer to the order", extra={"client_order_id": coid})
            return
        await self._cancel_at_kis(record)

    async def _cancel_at_kis(self, record: OrderRecord) -> None:
        worker = self.workers.get(record.account)
        if worker is None:
            return
        try:
            await trading.cancel_order(
                worker.kis,
                record.market,
                record.ticker,
                record.broker_order_id,
                record.broker_org_no,
                record.remaining_quantity,
            )
        except BrokerError as exc:
            logger.warning("cancel refused", extra={"client_order_id": record.client_order_id, "error": exc.message})
            await order_store.update_order(
                self.client,
                record.client_order_id,
                only_in=LIVE_STATES,
                fields={"reason": f"KIS refused the cancel: {exc.message}"},
                maxlen=self.config.maxlen,
            )
            return
        worker.tracking[record.client_order_id] = 0.0  # the poll confirms the cancellation
        self.fills.request_poll(worker)

    # --- revise -------------------------------------------------------------------------
    async def revise(self, command: ReviseOrder) -> None:
        """Revise an open limit order at KIS: lower its quantity, change its price, or both.

        The account's poll waits meanwhile (``PollState.lock``): KIS's list shows the old number with
        nothing left the moment KIS books the revision, which must not read as a cancellation
        before the record names the new number."""
        coid = command.client_order_id
        record = await order_store.get_order(self.client, coid)
        if record is None:
            logger.error("revision of an order without a record; ignored", extra={"client_order_id": coid})
            return
        worker = self.workers.get(record.account)
        problem = revision_problem(record, command.limit_price, command.quantity)
        if problem is None and worker is None:
            problem = f"account {record.account!r} is not configured"
        if problem is not None or worker is None:
            await self._revision_refused(record, command, problem or "")
            return
        async with worker.poll.lock:
            record = await order_store.get_order(self.client, coid) or record
            if record.last_revision == command.id:
                logger.info("revision already carried out", extra={"client_order_id": coid})
                return
            problem = revision_problem(record, command.limit_price, command.quantity)
            if problem is not None:
                await self._revision_refused(record, command, problem)
                return
            quantity = record.quantity if command.quantity is None else command.quantity
            price = record.limit_price if command.limit_price is None else command.limit_price
            repriced = price is not None and price != record.limit_price
            if quantity < record.quantity and not await self._lower_quantity(
                worker, record, command, quantity, last=not repriced
            ):
                return
            if price is not None and repriced:
                current = await order_store.get_order(self.client, coid)
                if current is not None and current.state in LIVE_STATES:
                    await self._reprice(worker, current, command, price)
        worker.tracking[coid] = 0.0  # the poll confirms what KIS did
        self.fills.request_poll(worker)

    async def _lower_quantity(
        self, worker: AccountWorker, record: OrderRecord, command: ReviseOrder, quantity: int, *, last: bool
    ) -> bool:
        """Cancel the shares above ``quantity`` at KIS (the order keeps its number); True when done.
        ``last``: nothing of the revision follows (no new price), so it counts as carried out."""
        drop = record.quantity - quantity
        try:
            await trading.cancel_order(
                worker.kis,
                record.market,
                record.ticker,
                record.broker_order_id,
                record.broker_org_no,
                drop,
                everything=False,
            )
        except (BrokerTransportError, BrokerProtocolError) as exc:
            why = f"no answer from KIS ({exc.message}); KIS's order list will show whether it was booked"
            await self._revision_refused(record, command, why, unconfirmed=True)
            return False
        except BrokerError as exc:
            await self._revision_refused(record, command, f"KIS refused it: {exc.message}")
            return False
        note = f"quantity {record.quantity} -> {quantity}, revised by {command.by}"
        fields = {"quantity": quantity, "reason": "", **({"last_revision": command.id} if last else {})}
        event = self._revised(record, command, record.broker_order_id, record.limit_price, quantity)
        for _attempt in range(5):  # a fill may land meanwhile: read it again
            current = await order_store.get_order(self.client, record.client_order_id)
            if current is None or current.state not in LIVE_STATES:
                return False
            condition = ("filled_quantity", str(current.filled_quantity))
            if current.filled_quantity >= quantity:
                # What is left was filled while KIS took the shares above it off: nothing remains.
                applied, _ = await order_store.update_order(
                    self.client, record.client_order_id, new_state=OrderState.FILLED, fields=fields, event=event,
                    note=f"{note}; every share left is filled", condition=condition, maxlen=self.config.maxlen,
                )  # fmt: skip
                if applied:
                    metrics.ORDERS.labels("filled").inc()
                    self.fills.forget(worker, record.client_order_id)
                    return False  # nothing left to reprice
                continue
            applied, _ = await order_store.update_order(
                self.client, record.client_order_id, only_in=LIVE_STATES, fields=fields, event=event, note=note,
                history="REVISED", condition=condition, maxlen=self.config.maxlen,
            )  # fmt: skip
            if applied:
                break
        else:
            logger.error("could not record a revision KIS booked", extra={"client_order_id": record.client_order_id})
            return False
        logger.info("order quantity revised", extra={"client_order_id": record.client_order_id, "quantity": quantity})
        stored = await order_store.get_order(self.client, record.client_order_id)
        if stored is not None:
            self.fills.remember(stored)
        return True

    async def _reprice(self, worker: AccountWorker, record: OrderRecord, command: ReviseOrder, price: Decimal) -> None:
        """Move what is left of the order to ``price``: KIS books it under a new order number."""
        before = record.limit_price or price
        try:
            ack = await trading.revise_order(
                worker.kis,
                record.market,
                record.ticker,
                record.broker_order_id,
                record.broker_org_no,
                record.remaining_quantity,
                price,
            )
        except (BrokerTransportError, BrokerProtocolError) as exc:
            # KIS may have booked it: its order list shows a revise row naming this order, which the
            # poll adopts (FillPoller, Fills.adopt_revision); until then the order is as it was.
            logger.warning("revision outcome unknown", extra={"client_order_id": record.client_order_id})
            why = f"no answer from KIS ({exc.message}); KIS's order list will show whether it was booked"
            await self._revision_refused(record, command, why, unconfirmed=True)
            return
        except BrokerError as exc:
            await self._revision_refused(record, command, f"KIS refused it: {exc.message}")
            return
        except OrderInvalid as exc:
            await self._revision_refused(record, command, str(exc))
            return
        old = order_number(record.broker_order_id)
        new = order_number(ack.broker_order_id)
        currency = record.market.currency
        note = (
            f"price {format_money(currency, before)} -> {format_money(currency, price)}, "
            f"revised by {command.by} (KIS order {record.broker_order_id} -> {ack.broker_order_id})"
        )
        for _attempt in range(5):  # a fill of the old number may land meanwhile: read it again
            legs = record.earlier_fills
            counted, counted_amount = record.earlier_total
            filled_amount = (record.average_price or before) * record.filled_quantity
            legs[old] = (record.filled_quantity - counted, filled_amount - counted_amount)
            fields = {
                "broker_order_id": ack.broker_order_id,
                "broker_org_no": ack.broker_org_no or record.broker_org_no,
                "limit_price": price,
                "prior_fills": prior_fills_value(legs),
                "reason": "",
                "last_revision": command.id,
            }
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.set(keys.broker_order(worker.alias, new), record.client_order_id, ex=BROKER_ORDER_TTL_S)
                pipe.fcall(
                    "yq_order_update",
                    *order_store.update_arguments(
                        record.client_order_id,
                        only_in=LIVE_STATES,
                        fields=fields,
                        condition=("filled_quantity", str(record.filled_quantity)),
                        event=self._revised(record, command, ack.broker_order_id, price, record.quantity),
                        note=note,
                        history="REVISED",
                        maxlen=self.config.maxlen,
                    ),
                )
                results = await pipe.execute()
            applied, previous = order_store.update_result(results[1])
            if applied:
                break
            current = await order_store.get_order(self.client, record.client_order_id)
            if current is None or current.is_final:
                logger.error(
                    "KIS revised an order whose record is no longer open; check it at KIS",
                    extra={"client_order_id": record.client_order_id, "broker_order_id": new, "state": str(previous)},
                )
                return
            record = current
        else:
            logger.error("could not record a revision KIS booked", extra={"client_order_id": record.client_order_id})
            return
        logger.info(
            "order revised",
            extra={"client_order_id": record.client_order_id, "broker_order_id": new, "price": str(price)},
        )
        revised = await order_store.get_order(self.client, record.client_order_id)
        if revised is not None:
            self.fills.track(worker, revised)
            await self.fills.apply_pending_notices(worker, revised)

    @staticmethod
    def _revised(
        record: OrderRecord, command: ReviseOrder, number: str, price: Decimal | None, quantity: int
    ) -> OrderRevised:
        return OrderRevised(
            correlation_id=record.correlation_id or record.client_order_id,
            client_order_id=record.client_order_id,
            account=record.account,
            broker_order_id=number,
            limit_price=price,
            quantity=quantity,
            by=command.by,
        )

    async def _revision_refused(
        self, record: OrderRecord, command: ReviseOrder, why: str, *, unconfirmed: bool = False
    ) -> None:
        """The order stays as it was; its reason and history say which revision was refused and why."""
        reason = await order_store.refuse_revision(
            self.client, record, command, why, self.config.maxlen, unconfirmed=unconfirmed
        )
        logger.info("revision refused", extra={"client_order_id": record.client_order_id, "reason": reason})
