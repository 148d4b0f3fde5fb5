"""Find an order whose POST outcome is unknown in KIS's own order list.

The order is never posted again. Domestic orders are looked up in inquire-daily-ccld
(filtered by ticker and side at KIS), US orders in inquire-ccnl (filtered here). A row
matches on ticker, side, quantity, the price we sent and a placement time no earlier
than our POST minus a window; a broker order already claimed by another of our orders
is skipped (the claim is a SET NX on its broker order key).

When the daily list fails, or answers without a row to claim (KIS's lists can lag), the
account's open-orders list (open_list.py, one read shared by the orders reconciled at the
same time) is asked too: an order of ours still open at KIS is recognised there by the same
rule. It only ever proves presence: an order it does not list may have filled already, so
only the daily list's answers count towards proving that KIS does not have the order.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from brokergateway.config import GatewayConfig
from brokergateway.kis import inquiry
from brokergateway.kis.order_list import NEW_YORK, SEOUL, BrokerOrderStatus, domestic_status, overseas_status
from brokergateway.open_list import OpenOrderList, segment_of_record
from brokergateway.order_match import matches
from brokergateway.worker import AccountWorker
from yquant import keys
from yquant.errors import BrokerError
from yquant.messages import Market
from yquant.orders import OrderRecord

logger = logging.getLogger(__name__)

BROKER_ORDER_TTL_S = 7 * 86_400


async def candidates(worker: AccountWorker, record: OrderRecord, since: datetime) -> list[BrokerOrderStatus]:
    """KIS's orders that could be ``record`` (newest first where KIS sorts so)."""
    if record.market is Market.KRX:
        rows = await inquiry.daily_orders(
            worker.kis, since.astimezone(SEOUL).date(), ticker=record.ticker, side=record.side
        )
        statuses = [domestic_status(row) for row in rows]
    else:
        start = since.astimezone(NEW_YORK).date()
        end = max(datetime.now(UTC).astimezone(NEW_YORK).date(), start)
        statuses = []
        async for rows in inquiry.overseas_order_pages(worker.kis, start, end):
            statuses.extend(overseas_status(row) for row in rows)
    return [status for status in statuses if matches(record, status, since)]


async def open_candidates(
    listed: OpenOrderList, worker: AccountWorker, record: OrderRecord, since: datetime
) -> list[BrokerOrderStatus]:
    """KIS's open orders that could be ``record`` (none when the list cannot be read)."""
    segment = segment_of_record(record)
    try:
        at_kis = await listed.read(worker, {segment}, [record.market])
    except BrokerError as exc:
        logger.warning(
            "open orders at KIS unavailable for reconciliation",
            extra={"client_order_id": record.client_order_id, "error": exc.message},
        )
        return []
    return [status for status in at_kis.get(segment, []) if matches(record, status, since)]


async def claim(client: aioredis.Redis, worker: AccountWorker, record: OrderRecord, status: BrokerOrderStatus) -> bool:
    """Bind the broker order to ``record`` unless another of our orders owns it."""
    key = keys.broker_order(worker.alias, status.broker_order_id)
    if await client.set(key, record.client_order_id, nx=True, ex=BROKER_ORDER_TTL_S):
        return True
    owner = await client.get(key)
    return owner is not None and keys.text(owner) == record.client_order_id


async def find_order(
    client: aioredis.Redis,
    worker: AccountWorker,
    record: OrderRecord,
    config: GatewayConfig,
    listed: OpenOrderList | None = None,
) -> BrokerOrderStatus | None:
    """The broker's order for ``record``, claimed for it; None when KIS does not have it.

    KIS's list is asked ``reconcile_attempts`` times and, if the order is still missing, once more
    when ``resubmit_settle_s`` have passed since the POST, so None means "not there over a settle
    period", which is what allows sending the order again.
    """
    placed = record.submitted_at or record.created_at
    # After a resubmission an earlier POST may still turn up: the window starts at the first one.
    first = record.created_at if record.resubmissions else placed
    since = min(first, placed) - timedelta(seconds=config.reconcile_window_s)
    checked = 0
    for attempt in range(config.reconcile_attempts + 1):
        if attempt < config.reconcile_attempts:
            await asyncio.sleep(config.reconcile_delay_s * (attempt + 1))
        else:
            settled = placed + timedelta(seconds=config.resubmit_settle_s)
            await asyncio.sleep(max(0.0, (settled - datetime.now(UTC)).total_seconds()))
        try:
            found = await candidates(worker, record, since)
        except BrokerError as exc:
            logger.warning(
                "reconciliation query failed",
                extra={"client_order_id": record.client_order_id, "attempt": attempt + 1, "error": exc.message},
            )
        else:
            checked += 1
            for status in found:
                if await claim(client, worker, record, status):
                    return status
        if listed is not None:
            for status in await open_candidates(listed, worker, record, since):
                if await claim(client, worker, record, status):
                    logger.info(
                        "order recognised in KIS's open orders",
                        extra={"client_order_id": record.client_order_id, "broker_order_id": status.broker_order_id},
                    )
                    return status
    if checked < 2:
        raise NotSettled(f"KIS's order list answered {checked} of {config.reconcile_attempts + 1} look-ups")
    return None


class NotSettled(Exception):
    """KIS's order list could not be asked often enough to prove an order is not there."""
