"""Composition root of the dashboard."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import sys
from types import FrameType
from zoneinfo import ZoneInfo

import uvicorn

from dashboard.app import create_app
from dashboard.performance import snapshot_loop
from dashboard.web import Web
from yquant import logs, valkey
from yquant.errors import ConfigurationError
from yquant.runtime import heartbeat_loop, run_service
from yquant.settings import get_settings

logger = logging.getLogger("dashboard")

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def keep_memory_returnable() -> None:
    """Pin glibc's mmap threshold: after freeing a large block glibc raises it, and argon2's 12 MiB
    per login would then stay resident in the heap; pinned, it goes back to the system at once."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    libc.mallopt(M_MMAP_THRESHOLD, 256 * 1024)
    libc.mallopt(M_ARENA_MAX, 2)


class DashboardServer(uvicorn.Server):
    """Open event streams never end on their own: close them as soon as uvicorn is told to stop."""

    def __init__(self, config: uvicorn.Config, web: Web) -> None:
        super().__init__(config)
        self.web = web
        self.loop = asyncio.get_running_loop()
        self.closing: list[asyncio.Future[None]] = []

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.loop.call_soon_threadsafe(lambda: self.closing.append(asyncio.ensure_future(self.web.broadcaster.stop())))


async def main() -> int:
    keep_memory_returnable()
    settings = get_settings()
    logs.configure("dashboard", settings.log_level, settings.log_json)
    client = valkey.connect(settings.valkey)
    try:
        app = create_app(settings, client)
    except ConfigurationError:
        await client.aclose()
        raise  # run_service: one line on stderr, exit 78
    web: Web = app.state.web
    config = uvicorn.Config(
        app,
        host=settings.dashboard.host,
        port=settings.dashboard.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,  # client addresses come from dashboard.trusted_proxies only
        timeout_graceful_shutdown=3,
    )
    server = DashboardServer(config, web)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(heartbeat_loop(client, "dashboard", settings.instance, stop)),
        asyncio.create_task(
            snapshot_loop(web.reader, ZoneInfo(settings.dashboard.timezone), settings.dashboard.snapshot_time, stop)
        ),
    ]
    logger.info("dashboard listening", extra={"port": settings.dashboard.port})
    try:
        await server.serve()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await web.broadcaster.stop()
        await client.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(run_service("dashboard", main))
