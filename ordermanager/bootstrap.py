"""Wiring shared by ``__main__`` and the tests: settings -> the order manager and its loops.

One place builds the parts (the signal decider, the executions handler, the scheduler, the
exit watcher) from one client, one settings object and one clock, and says which consumer
reads which stream. ``__main__`` adds only the process concerns: metrics, heartbeat, signals.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from ordermanager import exposure
from ordermanager.clock import Clock, SystemClock
from ordermanager.executions import ExecutionHandler
from ordermanager.exit_triggers import ExitWatcher
from ordermanager.revisions import Revisions
from ordermanager.schedule_runner import Scheduler
from ordermanager.service import OrderManager
from yquant import keys
from yquant.bus import Consumer, ensure_group
from yquant.settings import Settings


@dataclass(frozen=True)
class Parts:
    manager: OrderManager
    executions: ExecutionHandler
    scheduler: Scheduler
    exits: ExitWatcher
    revisions: Revisions


def build(client: aioredis.Redis, settings: Settings, clock: Clock | None = None) -> Parts:
    chosen = clock or SystemClock()
    manager = OrderManager(client, settings, clock=chosen)
    cfg = settings.ordermanager
    return Parts(
        manager=manager,
        executions=ExecutionHandler(manager),
        scheduler=Scheduler(
            client,
            clock=chosen,
            misfire_grace_s=cfg.misfire_grace_s,
            maxlen=manager.maxlen,
            always_open=manager.always_open,
        ),
        exits=ExitWatcher(
            client,
            accounts=manager.accounts,
            strategies=manager.strategies,
            clock=chosen,
            quote_source=manager.quote_source,
            maxlen=manager.maxlen,
            always_open=manager.always_open,
        ),
        revisions=Revisions(manager),
    )


async def consumers(client: aioredis.Redis, settings: Settings, parts: Parts) -> list[Consumer]:
    """One consumer per producer's signal stream (the stream, not the payload, says who sent a
    signal), one for the executions the order manager follows up on, and one for a person's
    revisions of open orders."""
    manager = parts.manager
    signal_consumers = [
        Consumer(
            client,
            stream=stream,
            group=keys.GROUP_ORDERMANAGER,
            name=settings.instance,
            handler=manager.handler_for(stream),
            settings=settings.bus,
            partition_key=manager.partition_key,
        )
        for stream in keys.SIGNAL_STREAMS
    ]
    await exposure.backfill_unsettled(client)  # open orders recorded before their copies were kept
    # A new group starts at the end of the stream: history before the first start is not replayed.
    await ensure_group(client, keys.EXECUTIONS, keys.GROUP_ORDERMANAGER_EXECUTIONS, start_id="$")
    executions = Consumer(
        client,
        stream=keys.EXECUTIONS,
        group=keys.GROUP_ORDERMANAGER_EXECUTIONS,
        name=settings.instance,
        handler=parts.executions.handle,
        settings=settings.bus,
        accept_types=ExecutionHandler.HANDLED_TYPES,
    )
    # A person's revisions: checked against the limits here, then passed to the gateway (ADR 0014).
    revisions = Consumer(
        client,
        stream=keys.REVISIONS,
        group=keys.GROUP_ORDERMANAGER,
        name=settings.instance,
        handler=parts.revisions.handle,
        settings=settings.bus,
    )
    return [*signal_consumers, executions, revisions]
