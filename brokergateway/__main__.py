"""Composition root of the broker gateway: settings, Valkey, HTTP pool, gateway, consumers, metrics."""

from __future__ import annotations

import asyncio
import logging
import sys

from prometheus_client import start_http_server

from brokergateway.bootstrap import build_gateway
from brokergateway.kis.client import http_pool
from yquant import keys, logs, valkey
from yquant.bus import Consumer
from yquant.runtime import heartbeat_loop, install_stop_handlers, run_service
from yquant.settings import get_settings

logger = logging.getLogger("brokergateway")


async def main() -> None:
    settings = get_settings()
    logs.configure("brokergateway", settings.log_level, settings.log_json)
    client = valkey.connect(settings.valkey)
    await valkey.ensure_functions(client, settings.valkey)
    stop = asyncio.Event()
    install_stop_handlers(stop)
    if settings.gateway.metrics_port:
        start_http_server(settings.gateway.metrics_port, addr=settings.gateway.metrics_host)
    async with http_pool(settings.kis.timeout_s) as http:
        gateway = build_gateway(settings, client, http)
        await gateway.start()
        consumers = [
            Consumer(
                client,
                stream=stream,
                group=keys.GROUP_BROKERGATEWAY,
                name=settings.instance,
                handler=handler,
                settings=settings.bus,
            )
            for stream, handler in gateway.consumers().items()
        ]
        beat = asyncio.create_task(
            heartbeat_loop(client, "brokergateway", settings.instance, stop, details=gateway.health)
        )
        background = asyncio.create_task(gateway.run_background(stop))
        logger.info("broker gateway started", extra={"accounts": sorted(gateway.workers), "feeds": len(gateway.feeds)})
        await asyncio.gather(*(consumer.run(stop) for consumer in consumers))
        await background
        await beat
    await client.aclose()
    logger.info("broker gateway stopped")


if __name__ == "__main__":
    sys.exit(run_service("brokergateway", main))
