"""Composition root of the dashboard."""

from __future__ import annotations

import asyncio
import logging

import uvicorn
import uvloop

from dashboard.app import create_app
from yquant import logs, valkey
from yquant.runtime import heartbeat_loop
from yquant.settings import get_settings

logger = logging.getLogger("dashboard")


async def main() -> None:
    settings = get_settings()
    logs.configure("dashboard", settings.log_level, settings.log_json)
    client = valkey.connect(settings.valkey)
    app = create_app(settings, client)
    config = uvicorn.Config(
        app,
        host=settings.dashboard.host,
        port=settings.dashboard.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
    )
    server = uvicorn.Server(config)
    stop = asyncio.Event()
    beat = asyncio.create_task(heartbeat_loop(client, "dashboard", settings.instance, stop))
    logger.info("dashboard listening", extra={"port": settings.dashboard.port})
    try:
        await server.serve()
    finally:
        stop.set()
        await beat
        await client.aclose()


if __name__ == "__main__":
    uvloop.run(main())
