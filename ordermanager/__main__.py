"""The order manager's process: the parts from ``bootstrap`` plus metrics, heartbeat and signals.

Runs side by side: the signal consumers, the executions consumer (reverse entries, exit
rules, daily-loss baselines), the scheduler and the exit evaluator, plus a heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from prometheus_client import start_http_server

from ordermanager import bootstrap
from yquant import hubmetrics, logs, valkey
from yquant.runtime import heartbeat_loop, install_stop_handlers, run_service
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
    parts = bootstrap.build(client, settings)
    cfg = settings.ordermanager
    tasks = [
        *(
            asyncio.create_task(c.run(stop), name=f"consume:{c.stream}")
            for c in await bootstrap.consumers(client, settings, parts)
        ),
        asyncio.create_task(parts.scheduler.run(stop, cfg.scheduler_interval_s), name="scheduler"),
        asyncio.create_task(parts.exits.run(stop, cfg.exit_check_interval_s), name="exits"),
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
    sys.exit(run_service("ordermanager", main))
