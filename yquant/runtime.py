"""What every long-running service shares: signal handling, heartbeats, metrics."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import uvloop
from pydantic import ValidationError
from redis.exceptions import RedisError

from yquant import __version__, keys
from yquant.errors import ConfigurationError

logger = logging.getLogger(__name__)

EXIT_CONFIGURATION = 78  # sysexits' EX_CONFIG: restarting will not help, fix the settings
HEARTBEAT_INTERVAL_S = 5.0
HEARTBEAT_TTL_S = 15
# A file touched after each heartbeat Valkey took: the container health check of a process with no
# HTTP port (the notifier) is "touched within the last few intervals".
HEARTBEAT_FILE_ENV = "YQ_HEARTBEAT_FILE"
# This process's life: an instance name (host-pid) comes back after a restart in a container,
# a life never does, so a lease or heartbeat names which life of an instance holds it.
LIFE = secrets.token_hex(6)


def run_service(name: str, main: Callable[[], Coroutine[Any, Any, int | None]]) -> int:
    """Run a service's ``main`` on uvloop; the one exit path for a configuration error.

    Settings that are missing, invalid or contradictory end the process with one line on
    stderr naming the service and the problem, and exit code ``EXIT_CONFIGURATION``, so a
    supervisor can tell "fix the settings" from a crash worth restarting.
    """
    try:
        result = uvloop.run(main())
    except (ConfigurationError, ValidationError) as exc:
        sys.stderr.write(f"{name}: configuration error: {exc}\n")
        return EXIT_CONFIGURATION
    return result or 0


def install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile; True when it was."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def every(
    stop: asyncio.Event, interval_s: float, tick: Callable[[], Awaitable[object]], log: logging.Logger, failure: str
) -> None:
    """Run ``tick`` now and then every ``interval_s`` until ``stop``: a round that raises is logged
    (``failure``, with its traceback) and the next round runs as planned, so one bad round never
    ends a loop a service depends on."""
    while not stop.is_set():
        try:
            await tick()
        except Exception:
            log.exception(failure)
        await sleep_or_stop(stop, interval_s)


def rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB, from /proc."""
    rss = hwm = 0
    try:
        with open(f"/proc/{os.getpid()}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


async def heartbeat_loop(
    client: aioredis.Redis,
    service: str,
    instance: str,
    stop: asyncio.Event,
    details: Callable[[], dict[str, str]] | None = None,
) -> None:
    """Refresh a hash with a TTL so ``yquant status`` and the dashboard see us alive."""
    key = keys.heartbeat(service, instance)
    started = str(time.time())
    touch = os.environ.get(HEARTBEAT_FILE_ENV, "").strip()
    while not stop.is_set():
        rss, _ = rss_kib()
        fields = {
            "service": service,
            "instance": instance,
            "pid": str(os.getpid()),
            "version": __version__,
            "started_at": started,
            "life": LIFE,
            "seen_at": str(time.time()),
            "rss_kib": str(rss),
        }
        if details:
            fields.update(details())
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
                pipe.expire(key, HEARTBEAT_TTL_S)
                await pipe.execute()
            if touch:
                await asyncio.to_thread(Path(touch).touch)
        except (RedisError, OSError) as exc:
            logger.warning("heartbeat failed", extra={"error": str(exc)})
        await sleep_or_stop(stop, HEARTBEAT_INTERVAL_S)
    try:
        await client.delete(key)
    except (RedisError, OSError):
        pass
