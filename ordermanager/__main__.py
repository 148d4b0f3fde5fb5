"""Composition root of the order manager."""

from __future__ import annotations

import asyncio
import logging

import uvloop
from prometheus_client import start_http_server

from ordermanager.service import OrderManager
from yquant import keys, logs, valkey
from yquant.bus import Consumer
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
        start_http_server(settings.ordermanager.metrics_port, addr="127.0.0.1")
    manager = OrderManager(client, settings)
    consumer = Consumer(
        client,
        stream=keys.SIGNALS,
        group=keys.GROUP_ORDERMANAGER,
        name=settings.instance,
        handler=manager.handle,
        settings=settings.bus,
        partition_key=manager.partition_key,
    )
    beat = asyncio.create_task(heartbeat_loop(client, "ordermanager", settings.instance, stop))
    logger.info("order manager started", extra={"instance": settings.instance})
    await consumer.run(stop)
    await beat
    await client.aclose()
    logger.info("order manager stopped")


if __name__ == "__main__":
    uvloop.run(main())
