"""A token bucket per source address, in memory and bounded in the sources it remembers."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class SourceRateLimiter:
    """Allows ``per_minute`` requests a minute per source, in bursts of up to ``per_minute``.

    ``per_minute <= 0`` turns the limit off. Past ``max_sources`` the least recently seen
    source is forgotten (it starts again with a full bucket), so memory stays bounded.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        max_sources: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(max(per_minute, 1))
        self.max_sources = max_sources
        self.clock = clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, source: str) -> bool:
        """Take one token for ``source``; False when its bucket is empty."""
        if self.rate <= 0:
            return True
        now = self.clock()
        tokens, last = self.buckets.pop(source, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self.buckets[source] = (tokens - 1.0 if allowed else tokens, now)
        if len(self.buckets) > self.max_sources:
            self.buckets.popitem(last=False)
        return allowed

    def retry_after_s(self, source: str) -> int:
        """Whole seconds until ``source`` has a token again (at least 1)."""
        tokens, _ = self.buckets.get(source, (self.capacity, 0.0))
        if self.rate <= 0 or tokens >= 1.0:
            return 1
        return max(1, int((1.0 - tokens) / self.rate + 0.999))
