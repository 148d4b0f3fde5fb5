"""Per-account request pacing, shared through Valkey when several processes use an account.

A sliding window kept in a sorted set; a caller waits for a free slot instead of being
refused, so a burst is spread out at or under the limit. The window is one second plus a
margin: KIS counts requests when they arrive, and network jitter must not squeeze 19 of
our 18 slots into one of its seconds.

A slot taken early (an order waits for its slot before it is marked SUBMITTING) is stamped
again when its request goes out (`confirm`, after the client's in-flight bound), so the window
counts sends, not waits.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import redis.asyncio as aioredis

from yquant import keys

_ACQUIRE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return math.ceil(tonumber(oldest[2]) + window - now) + 1
"""

# A slot only while at most LIMIT - RESERVE are taken (ARGV[5] = reserve), never a wait: for
# requests that must leave the window's slots to orders (the dashboard's quotes).
_TRY_SPARE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local reserve = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit - reserve then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window) + 1000)
  return 1
end
return 0
"""

# The same admission at a later time for a slot already held: its old stamp is dropped first,
# so re-admitting it never costs a second slot.
_RESTAMP = "redis.call('ZREM', KEYS[1], ARGV[4])\n" + _ACQUIRE


class RateLimiter:
    def __init__(self, client: aioredis.Redis, account: str, per_second: float, *, margin_s: float = 0.1) -> None:
        self.client = client
        self.key = keys.rate_limit(account)
        self.per_second = per_second
        # Whole requests per window; a fractional limit (e.g. 0.5/s) widens the window.
        self.limit = max(int(per_second), 1)
        base_ms = 1000.0 * self.limit / per_second if per_second > 0 else 1000.0
        self.window_ms = base_ms + max(margin_s, 0.0) * 1000
        self._script = client.register_script(_ACQUIRE)
        self._restamp = client.register_script(_RESTAMP)
        self._try_spare = client.register_script(_TRY_SPARE)
        self._prefix = uuid.uuid4().hex[:12]
        self._counter = 0

    async def acquire(self) -> str:
        """Wait for a slot; the slot's name is what `restamp` takes."""
        self._counter += 1
        member = f"{self._prefix}{self._counter}"
        if self.per_second <= 0:
            return member
        while True:
            now_ms = time.time() * 1000
            wait_ms = int(await self._script(keys=[self.key], args=[now_ms, self.window_ms, self.limit, member]))
            if wait_ms <= 0:
                return member
            await asyncio.sleep(wait_ms / 1000)

    async def try_spare(self) -> str | None:
        """A slot now only if the window is at most half full (an idle window when the limit is one
        request), else None at once: what is left stays for the requests that wait for theirs."""
        self._counter += 1
        member = f"{self._prefix}{self._counter}"
        if self.per_second <= 0:
            return member
        now_ms = time.time() * 1000
        reserve = self.limit // 2
        args: list[float | int | str] = [now_ms, self.window_ms, self.limit, member, reserve]
        admitted = int(await self._try_spare(keys=[self.key], args=args))
        return member if admitted else None

    async def confirm(self, member: str) -> None:
        """Stamp a slot taken earlier (``acquire``) again now, just before its request goes out;
        wait first if the window has filled since."""
        if self.per_second <= 0:
            return
        while True:
            now_ms = time.time() * 1000
            wait_ms = int(await self._restamp(keys=[self.key], args=[now_ms, self.window_ms, self.limit, member]))
            if wait_ms <= 0:
                return
            await asyncio.sleep(wait_ms / 1000)
