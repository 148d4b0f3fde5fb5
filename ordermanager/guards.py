"""Per-account throttles that hold across order manager instances: the one-minute order rate
window and the duplicate-intent guard. Both live in Valkey so two instances count together.

A signal of one account checks them inside ``yq_order_place`` (``yquant/functions.lua``), the
step that also writes its order and decision, so they cost no round trip of their own (ADR 0013);
``claim_intent`` is for orders written one by one (a signal of several accounts).
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


async def claim_intent(
    client: aioredis.Redis,
    *,
    account: str,
    market: Market,
    ticker: str,
    side: Side,
    strategy: str,
    signal_id: str,
    window_s: float,
    limit_per_minute: int,
    member: str,
    now: float,
) -> str:
    """Both throttles in one round trip: "" when the order may go, "duplicate" or "rate" when not.

    The duplicate window is claimed and the rate slot taken in one transaction; a duplicate gives
    its slot back (as a full window does), so the window counts only orders that went ahead.
    """
    duplicate_key = keys.duplicate_guard(account, market.value, ticker, side.value, strategy) if window_s > 0 else ""
    rate_key = keys.rate_window(account) if limit_per_minute > 0 else ""
    if not duplicate_key and not rate_key:
        return ""
    async with client.pipeline(transaction=True) as pipe:
        if duplicate_key:
            pipe.set(duplicate_key, signal_id, nx=True, px=max(int(window_s * 1000), 1))
            pipe.get(duplicate_key)
        if rate_key:
            pipe.zremrangebyscore(rate_key, "-inf", now - RATE_WINDOW_S)
            pipe.zadd(rate_key, {member: now})
            pipe.zcard(rate_key)
            pipe.expire(rate_key, int(RATE_WINDOW_S * 2))
        results = await pipe.execute()
    verdict = ""
    if duplicate_key:
        claimed, holder = results[0], results[1]
        if not claimed and (holder is None or keys.text(holder) != signal_id):  # the same signal, redelivered: go
            verdict = "duplicate"
        results = results[2:]
    if rate_key and not verdict and int(results[2]) > limit_per_minute:
        verdict = "rate"
    if rate_key and verdict:
        await client.zrem(rate_key, member)
    return verdict
