"""Writing the decision log (``yquant.decisions``) from the order manager.

Accepted and denied decisions go through ``decisions.record_decision``; a signal's one
guarded order goes with its decision through ``decisions.record_placement`` (``place``: the
acceptance and both refusals are built here, the server function records the one that applies).
A reverse whose entry is decided later adds the entry's order (or why there is none) to the
same record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from ordermanager.denials import Denial
from ordermanager.metrics import DECISIONS
from yquant import decisions, keys
from yquant.bus import publish
from yquant.messages import Signal, SignalAccepted, SignalDenied

logger = logging.getLogger(__name__)


def _accepted(signal: Signal, correlation_id: str, order_ids: list[str], note: str) -> SignalAccepted:
    return SignalAccepted(
        correlation_id=correlation_id,
        signal_id=signal.signal_id,
        strategy=signal.strategy,
        ticker=signal.ticker,
        client_order_ids=order_ids,
        note=note,
    )


async def accept(
    client: aioredis.Redis,
    signal: Signal,
    correlation_id: str,
    order_ids: list[str],
    note: str,
    maxlen: int,
    prelude: Callable[[Pipeline], object] | None = None,
) -> list[Any]:
    """Record the acceptance (``prelude``: writes queued first in its transaction); its replies."""
    accepted = _accepted(signal, correlation_id, order_ids, note)
    replies = await decisions.record_decision(client, signal, accepted, maxlen, prelude)
    DECISIONS.labels("accepted", "").inc()
    logger.info("signal accepted", extra={"signal_id": signal.signal_id, "orders": order_ids, "note": note})
    return replies


async def place(
    client: aioredis.Redis,
    signal: Signal,
    correlation_id: str,
    account: str,
    order_ids: list[str],
    note: str,
    refusals: tuple[Denial, Denial] | None,
    arguments: Callable[[list[Any]], list[Any]],
) -> tuple[Denial | None, Any]:
    """Record a signal's one order with its acceptance, or the throttle's refusal, in one step
    (``yq_order_place``); ``arguments`` builds its layout from the three decisions. ``refusals``:
    the duplicate's and the rate's denials, None for an order with neither throttle. Returns
    (the refusal that applied or None, ``yq_order_create``'s reply)."""
    accepted = _accepted(signal, correlation_id, order_ids, note)
    layout = decisions.decision_arguments(signal, accepted)
    if refusals is None:
        layout += decisions.UNUSED_REFUSAL * 2
    else:
        for denial in refusals:
            layout += decisions.decision_arguments(signal, denied_event(signal, correlation_id, account, denial))
    verdict, created = await decisions.record_placement(client, arguments(layout))
    refusal = None if refusals is None else {"duplicate": refusals[0], "rate": refusals[1]}.get(keys.text(verdict))
    if refusal is None:
        DECISIONS.labels("accepted", "").inc()
        logger.info("signal accepted", extra={"signal_id": signal.signal_id, "orders": order_ids, "note": note})
        return None, created
    DECISIONS.labels("denied", refusal.code).inc()
    logger.info(
        "signal denied",
        extra={"signal_id": signal.signal_id, "account": account, "code": refusal.code, "reason": refusal.reason},
    )
    return refusal, created


def denied_event(signal: Signal, correlation_id: str, account: str | None, denial: Denial) -> SignalDenied:
    return SignalDenied(
        correlation_id=correlation_id,
        signal_id=signal.signal_id,
        strategy=signal.strategy,
        ticker=signal.ticker,
        account=account,
        reason_code=denial.code,
        reason=denial.reason,
    )


async def deny(
    client: aioredis.Redis, signal: Signal, correlation_id: str, account: str | None, denial: Denial, maxlen: int
) -> None:
    await decisions.record_decision(client, signal, denied_event(signal, correlation_id, account, denial), maxlen)
    DECISIONS.labels("denied", denial.code).inc()
    logger.info(
        "signal denied",
        extra={"signal_id": signal.signal_id, "account": account, "code": denial.code, "reason": denial.reason},
    )


async def annotate(
    client: aioredis.Redis,
    signal: Signal,
    correlation_id: str,
    *,
    account: str,
    order_id: str | None,
    note: str,
    denial: Denial | None = None,
    maxlen: int,
) -> None:
    """Add a later outcome (a reverse's entry) to the signal's record; a denial also goes to the stream."""
    record = keys.signal_record(signal.signal_id)
    raw = await client.hmget(record, ["orders", "note"])
    order_ids: list[str] = orjson.loads(raw[0]) if raw[0] else []
    if order_id is not None and order_id not in order_ids:
        order_ids.append(order_id)
    previous = keys.text(raw[1]) if raw[1] else ""
    line = f"{account}: {note}"
    combined = previous if line in previous else "; ".join(x for x in (previous, line) if x)
    await client.hset(record, mapping={"orders": orjson.dumps(order_ids), "note": combined})
    if denial is not None:
        event = denied_event(signal, correlation_id, account, denial)
        await publish(client, keys.DECISIONS, event, maxlen)
        DECISIONS.labels("denied", denial.code).inc()
