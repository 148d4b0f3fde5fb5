"""Composition root of the webhook: settings, Valkey client, app, server."""

from __future__ import annotations

import asyncio
import logging

import uvicorn
import uvloop

from webhook.app import create_app
from yquant import logs, valkey
from yquant.runtime import heartbeat_loop
from yquant.settings import get_settings

logger = logging.getLogger("webhook")


async def main() -> None:
    settings = get_settings()
    logs.configure("webhook", settings.log_level, settings.log_json)
    if settings.webhook.secret is None and not any(s.secret for s in settings.strategies.values()):
        raise SystemExit("no webhook secret: set YQ_WEBHOOK__SECRET (or a secret per strategy)")
    client = valkey.connect(settings.valkey)
    app = create_app(settings, client)
    config = uvicorn.Config(
        app,
        host=settings.webhook.host,
        port=settings.webhook.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,  # X-Forwarded-For is judged by the app against trusted proxies
    )
    server = uvicorn.Server(config)
    stop = asyncio.Event()
    beat = asyncio.create_task(heartbeat_loop(client, "webhook", settings.instance, stop))
    logger.info("webhook listening", extra={"port": settings.webhook.port})
    try:
        await server.serve()
    finally:
        stop.set()
        await beat
        await client.aclose()


if __name__ == "__main__":
    uvloop.run(main())
