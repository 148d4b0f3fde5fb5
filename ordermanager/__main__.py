"""Composition root of the order manager.

Runs side by side: the signal consumer, the executions consumer (reverse entries, exit
rules, daily-loss baselines), the scheduler and the exit evaluator, plus a heartbeat.
"""

from __future__ import annotations

import asyncio
import logging

import uvloop
from prometheus_client import start_http_server

from ordermanager.clock import SystemClock
from ordermanager.executions import ExecutionHandler
from ordermanager.exit_triggers import ExitWatcher
from ordermanager.schedule_runner import Scheduler
from ordermanager.service import OrderManager
from yquant import hubmetrics, keys, logs, valkey
from yquant.bus import Consumer, ensure_group
from yquant.runtime import heartbeat_loop, install_stop_handlers
from yquant.settings import get_settings

logger = logging.getLogger("ordermanager")


async def main() -> None:
    settings = get_settings()
    logs.configure("ordermanager", settings.log_level, settings.log_json)
    client = valkey.connect(settings.valkey)
    await valkey.ensure_functions(client, settings.valkey)
    stop = asyncio.Event()
    install_stop_handlers(stop)
    if settings.ordermanager.metrics_port:
        start_http_server(settings.ordermanager.metrics_port, addr=settings.ordermanager.metrics_host)
    clock = SystemClock()
    manager = OrderManager(client, settings, clock=clock)
    cfg = settings.ordermanager
    # One consumer per producer's stream: the stream, not the payload, says who sent a signal.
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
    # A new group starts at the end of the stream: history before the first start is not replayed.
    await ensure_group(client, keys.EXECUTIONS, keys.GROUP_ORDERMANAGER_EXECUTIONS, start_id="$")
    executions = Consumer(
        client,
        stream=keys.EXECUTIONS,
        group=keys.GROUP_ORDERMANAGER_EXECUTIONS,
        name=settings.instance,
        handler=ExecutionHandler(manager).handle,
        settings=settings.bus,
        accept_types=ExecutionHandler.HANDLED_TYPES,
    )
    scheduler = Scheduler(
        client, clock=clock, misfire_grace_s=cfg.misfire_grace_s, maxlen=manager.maxlen, always_open=manager.always_open
    )
    watcher = ExitWatcher(
        client,
        accounts=manager.accounts,
        strategies=manager.strategies,
        clock=clock,
        quote_source=manager.quote_source,
        maxlen=manager.maxlen,
        always_open=manager.always_open,
    )
    tasks = [
        *(asyncio.create_task(c.run(stop), name=f"signals:{c.stream}") for c in signal_consumers),
        asyncio.create_task(executions.run(stop), name="executions"),
        asyncio.create_task(scheduler.run(stop, cfg.scheduler_interval_s), name="scheduler"),
        asyncio.create_task(watcher.run(stop, cfg.exit_check_interval_s), name="exits"),
        asyncio.create_task(heartbeat_loop(client, "ordermanager", settings.instance, stop), name="heartbeat"),
        asyncio.create_task(hubmetrics.loop(client, stop), name="valkey-metrics"),
    ]
    logger.info("order manager started", extra={"instance": settings.instance})
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                logger.error("a loop failed; stopping", extra={"task": task.get_name()}, exc_info=task.exception())
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()
    logger.info("order manager stopped")


if __name__ == "__main__":
    uvloop.run(main())
