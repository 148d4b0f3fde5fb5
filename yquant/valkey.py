"""Connections to Valkey and the server functions yQuant relies on.

Nothing connects at import time: services build a client in their composition root.
"""

from __future__ import annotations

import logging
from importlib import resources

import redis.asyncio as aioredis
from redis import Redis
from redis.exceptions import ResponseError

from yquant import keys
from yquant.settings import ValkeySettings

logger = logging.getLogger(__name__)


def functions_source() -> str:
    return resources.files("yquant").joinpath("functions.lua").read_text()


def connect(settings: ValkeySettings) -> aioredis.Redis:
    """An asyncio client on a blocking pool: waits for a free connection instead of failing."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=settings.socket_timeout_s,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.socket_timeout_s,
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        health_check_interval=30,
        driver_info=None,  # a least-privilege ACL user may not run CLIENT SETINFO
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


async def load_functions(client: aioredis.Redis) -> None:
    """Load (or replace) the ``yquant`` function library; needs FUNCTION rights."""
    await client.function_load(functions_source(), replace=True)
    logger.info("server functions loaded", extra={"library": keys.FUNCTIONS_LIBRARY})


def connect_sync_url(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, driver_info=None)


def load_functions_sync(client: Redis) -> None:
    client.function_load(functions_source(), replace=True)


async def ensure_functions(client: aioredis.Redis, settings: ValkeySettings) -> None:
    if settings.load_functions:
        await load_functions(client)
        return
    try:
        libraries = await client.function_list(library=keys.FUNCTIONS_LIBRARY)
    except ResponseError:  # not allowed to list: assume the operator loaded them
        return
    if not libraries:
        logger.error("the yquant server functions are not loaded in Valkey")
