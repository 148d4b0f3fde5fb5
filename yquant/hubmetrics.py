"""Valkey's own health as Prometheus gauges (memory against its limit), refreshed periodically.

Exported by a VM1 service whose ACL user may run INFO; the alert rules compare
``yquant_valkey_used_memory_bytes`` with ``yquant_valkey_maxmemory_bytes`` (noeviction
refuses writes at the limit).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Gauge
from redis.exceptions import RedisError

from yquant import runtime

logger = logging.getLogger(__name__)

USED_MEMORY = Gauge("yquant_valkey_used_memory_bytes", "Valkey used_memory")
MAX_MEMORY = Gauge("yquant_valkey_maxmemory_bytes", "Valkey maxmemory (0 = no limit)")
UP = Gauge("yquant_valkey_up", "1 when the last INFO succeeded")


async def refresh(client: aioredis.Redis) -> None:
    try:
        info: Any = await client.info("memory")
    except (RedisError, OSError) as exc:
        UP.set(0)
        logger.warning("valkey INFO failed", extra={"error": str(exc)})
        return
    UP.set(1)
    USED_MEMORY.set(int(info.get("used_memory", 0)))
    MAX_MEMORY.set(int(info.get("maxmemory", 0)))


async def loop(client: aioredis.Redis, stop: asyncio.Event, interval_s: float = 15.0) -> None:
    while not stop.is_set():
        await refresh(client)
        await runtime.sleep_or_stop(stop, interval_s)
