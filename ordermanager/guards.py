"""Per-account throttles that hold across order manager instances: the one-minute order rate
window and the duplicate-intent guard. Both live in Valkey so two instances count together.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from yquant import keys
from yquant.messages import Market, Side

RATE_WINDOW_S = 60.0


async def take_rate_slot(client: aioredis.Redis, account: str, limit_per_minute: int, member: str, now: float) -> bool:
    """Count an order in the account's one-minute window; False when the window is full."""
    if limit_per_minute <= 0:
        return True
    key = keys.rate_window(account)
    async with client.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, "-inf", now - RATE_WINDOW_S)
        pipe.zadd(key, {member: now})
        pipe.zcard(key)
        pipe.expire(key, int(RATE_WINDOW_S * 2))
        results = await pipe.execute()
    if int(results[2]) > limit_per_minute:
        await client.zrem(key, member)
        return False
    return True


async def claim_duplicate_window(
    client: aioredis.Redis,
    *,
    account: str,
    market: Market,
    ticker: str,
    side: Side,
    strategy: str,
    signal_id: str,
    window_s: float,
) -> bool:
    """False when the same intent (account, ticker, side, strategy) came from another signal within the window."""
    if window_s <= 0:
        return True
    key = keys.duplicate_guard(account, market.value, ticker, side.value, strategy)
    if await client.set(key, signal_id, nx=True, px=max(int(window_s * 1000), 1)):
        return True
    holder = await client.get(key)
    return holder is not None and keys.text(holder) == signal_id  # the same signal, redelivered
