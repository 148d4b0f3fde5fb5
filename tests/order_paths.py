"""Test data: move an order record to any state along the transitions production allows."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import redis.asyncio as aioredis

from yquant import orders
from yquant.messages import Message, OrderState


def path(start: OrderState, target: OrderState) -> list[OrderState]:
    """The shortest chain of allowed transitions from ``start`` to ``target`` (without ``start``)."""
    previous: dict[OrderState, OrderState] = {}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state is target and state is not start:
            break
        for nxt in orders.ALLOWED_TRANSITIONS[state]:
            if nxt not in previous and nxt is not start:
                previous[nxt] = state
                queue.append(nxt)
    if target not in previous:
        raise ValueError(f"no allowed path from {start} to {target}")
    chain = [target]
    while chain[-1] in previous and previous[chain[-1]] is not start:
        chain.append(previous[chain[-1]])
    return list(reversed(chain))


async def walk_to(
    client: aioredis.Redis,
    client_order_id: str,
    target: OrderState,
    *,
    fields: Mapping[str, object] | None = None,
    event: Message | None = None,
    maxlen: int = 100_000,
) -> None:
    """Walk a record from its current state to ``target``; ``fields`` and ``event`` go with the last step."""
    record = await orders.get_order(client, client_order_id)
    assert record is not None, client_order_id
    steps = path(record.state, target)
    for state in steps[:-1]:
        applied, _ = await orders.update_order(client, client_order_id, new_state=state, maxlen=maxlen)
        assert applied, (client_order_id, state)
    applied, _ = await orders.update_order(
        client, client_order_id, new_state=target, fields=fields, event=event, maxlen=maxlen
    )
    assert applied, (client_order_id, target)
