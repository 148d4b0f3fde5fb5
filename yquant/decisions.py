"""The decision log: every signal ends accepted (with its orders) or denied (with a reason)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from yquant import keys
from yquant.bus import fields_of
from yquant.messages import Signal, SignalAccepted, SignalDenied

DECISION_TTL_S = 90 * 86_400


async def record_received(client: aioredis.Redis, signal: Signal) -> None:
    async with client.pipeline(transaction=False) as pipe:
        queue_received(pipe, signal)
        await pipe.execute()


RECEIVED_COMMANDS = 4


def queue_received(pipe: Pipeline, signal: Signal) -> None:
    """Queue the ``received`` record of a signal (``RECEIVED_COMMANDS`` replies) on a pipeline, so
    it travels with the reads the signal needs; a record that exists already is left as it is."""
    pipe.hsetnx(keys.signal_record(signal.signal_id), "signal", signal.model_dump_json())
    pipe.hsetnx(keys.signal_record(signal.signal_id), "status", "received")
    pipe.expire(keys.signal_record(signal.signal_id), DECISION_TTL_S)
    pipe.zadd(keys.SIGNALS_INDEX, {signal.signal_id: time.time()}, nx=True)


def decision_fields(signal: Signal, decision: SignalAccepted | SignalDenied) -> dict[FieldT, EncodableT]:
    """What a decision writes on the signal's record (one HSET)."""
    fields: dict[FieldT, EncodableT] = {"signal": signal.model_dump_json()}
    if isinstance(decision, SignalAccepted):
        fields["status"] = "accepted"
        fields["orders"] = orjson.dumps(decision.client_order_ids)
        if decision.note:
            fields["note"] = decision.note
    else:
        fields["status"] = "denied"
        fields["reason_code"] = decision.reason_code
        fields["reason"] = f"{decision.account or '*'}: {decision.reason}"
    fields["decided_at"] = decision.occurred_at.isoformat()
    return fields


async def record_decision(
    client: aioredis.Redis,
    signal: Signal,
    decision: SignalAccepted | SignalDenied,
    maxlen: int,
    prelude: Callable[[Pipeline], object] | None = None,
) -> list[Any]:
    """Store the outcome on the signal's record and append it to the decision stream, in one
    transaction; ``prelude`` queues writes that belong with it (the orders it decided) first.
    Returns the transaction's replies."""
    record = keys.signal_record(signal.signal_id)
    fields = decision_fields(signal, decision)
    async with client.pipeline(transaction=True) as pipe:
        if prelude is not None:
            prelude(pipe)
        pipe.hset(record, mapping=fields)  # one command for the whole record
        pipe.expire(record, DECISION_TTL_S)
        pipe.zadd(keys.SIGNALS_INDEX, {signal.signal_id: time.time()}, nx=True)
        pipe.xadd(
            keys.DECISIONS,
            fields_of(decision),
            maxlen=maxlen,
            approximate=True,
        )
        return list(await pipe.execute())


def decision_arguments(signal: Signal, decision: SignalAccepted | SignalDenied) -> list[Any]:
    """One decision in ``yq_order_place``'s layout: n_fields, field, value, ..., event type, event data."""
    flat: list[Any] = []
    for name, value in decision_fields(signal, decision).items():
        flat += [name, value]
    return [len(flat), *flat, decision.type, decision.model_dump_json()]


# A refusal ``yq_order_place`` cannot choose (its throttle is off): no fields, no event.
UNUSED_REFUSAL: list[Any] = [0, "", ""]


async def record_placement(client: aioredis.Redis, arguments: list[Any]) -> list[Any]:
    """Run ``yq_order_place`` (the throttles, then the order with its decision, or the refusal's
    decision) in one step; its reply: [verdict, yq_order_create's reply]."""
    return list(await client.fcall("yq_order_place", *arguments))


async def recent_signals(client: aioredis.Redis, limit: int = 100) -> list[dict[str, object]]:
    ids = await client.zrevrange(keys.SIGNALS_INDEX, 0, limit - 1)
    async with client.pipeline(transaction=False) as pipe:
        for signal_id in ids:
            pipe.hgetall(keys.signal_record(keys.text(signal_id)))
        rows = await pipe.execute()
    result: list[dict[str, object]] = []
    for signal_id, row in zip(ids, rows, strict=True):
        if not row:
            continue
        data = {keys.text(k): keys.text(v) for k, v in row.items()}
        entry: dict[str, object] = {"signal_id": keys.text(signal_id), **data}
        entry["signal"] = orjson.loads(data["signal"]) if "signal" in data else None
        entry["orders"] = orjson.loads(data["orders"]) if "orders" in data else []
        result.append(entry)
    return result
