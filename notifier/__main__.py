"""The notifier's process: the stream loop and a heartbeat; deliberately slim (no web framework)."""

from __future__ import annotations

import asyncio
import logging
import sys

import httpx

from notifier.service import Notifier
from yquant import logs, valkey
from yquant.runtime import heartbeat_loop, install_stop_handlers, run_service
from yquant.settings import get_settings

logger = logging.getLogger("notifier")


async def main() -> None:
    settings = get_settings()
    logs.configure("notifier", settings.log_level, settings.log_json)
    client = valkey.connect(settings.valkey)
    stop = asyncio.Event()
    install_stop_handlers(stop)
    cfg = settings.notifier
    async with httpx.AsyncClient(timeout=cfg.timeout_s) as http:
        notifier = Notifier(client, cfg, http, batch=settings.bus.batch)
        tasks = [
            asyncio.create_task(notifier.run(stop), name="notify"),
            asyncio.create_task(heartbeat_loop(client, "notifier", settings.instance, stop), name="heartbeat"),
        ]
        logger.info("notifier started", extra={"destinations": sorted(cfg.destinations), "language": cfg.language})
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    logger.error("a loop failed; stopping", extra={"task": task.get_name()}, exc_info=task.exception())
                    raise SystemExit(1)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()
    logger.info("notifier stopped")


if __name__ == "__main__":
    sys.exit(run_service("notifier", main))
