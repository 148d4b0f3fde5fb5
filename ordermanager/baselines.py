"""The daily-loss baseline: each account's first equity of the market's day, kept in Valkey."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import redis.asyncio as aioredis

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
    key = keys.daily_equity(account, market_day(currency, now))
    async with client.pipeline(transaction=True) as pipe:
        pipe.hsetnx(key, currency, str(equity))
        pipe.hget(key, currency)
        pipe.expire(key, BASELINE_TTL_S)
        results = await pipe.execute()
    return Decimal(keys.text(results[1]))
