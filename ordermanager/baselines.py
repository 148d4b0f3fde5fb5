"""The daily-loss baseline: each account's first equity of the market's day, kept in Valkey."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from yquant import keys
from yquant.markets import NEW_YORK, SEOUL

BASELINE_TTL_S = 3 * 86_400


def market_day(currency: str, now: datetime) -> str:
    zone = SEOUL if currency == "KRW" else NEW_YORK
    return now.astimezone(zone).date().isoformat()


async def daily_baseline(
    client: aioredis.Redis, account: str, currency: str, equity: Decimal, now: datetime
) -> Decimal:
    """The day's first equity seen for the account (recorded now if it is the first)."""
    async with client.pipeline(transaction=True) as pipe:
        queue_daily_baseline(pipe, account, currency, equity, now)
        return baseline_of(await pipe.execute())


QUEUED = 3  # the replies ``queue_daily_baseline`` adds


def queue_daily_baseline(pipe: Pipeline, account: str, currency: str, equity: Decimal, now: datetime) -> None:
    """``daily_baseline`` queued on a transaction (``QUEUED`` replies, read by ``baseline_of``)."""
    key = keys.daily_equity(account, market_day(currency, now))
    pipe.hsetnx(key, currency, str(equity))
    pipe.hget(key, currency)
    pipe.expire(key, BASELINE_TTL_S)


def baseline_of(replies: list[Any]) -> Decimal:
    """The baseline from ``queue_daily_baseline``'s replies."""
    return Decimal(keys.text(replies[1]))
