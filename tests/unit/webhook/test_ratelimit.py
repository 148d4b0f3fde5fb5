"""The per-source token bucket."""

from __future__ import annotations

from webhook.ratelimit import SourceRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_up_to_the_limit_then_refused() -> None:
    limiter = SourceRateLimiter(3, clock=Clock())
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]


def test_tokens_come_back_at_the_rate() -> None:
    clock = Clock()
    limiter = SourceRateLimiter(60, clock=clock)
    for _ in range(60):
        assert limiter.allow("a")
    assert not limiter.allow("a")
    assert limiter.retry_after_s("a") == 1
    clock.now += 1.0
    assert limiter.allow("a")
    assert not limiter.allow("a")


def test_sources_have_their_own_buckets() -> None:
    limiter = SourceRateLimiter(1, clock=Clock())
    assert limiter.allow("a")
    assert not limiter.allow("a")
    assert limiter.allow("b")


def test_zero_turns_the_limit_off() -> None:
    limiter = SourceRateLimiter(0, clock=Clock())
    assert all(limiter.allow("a") for _ in range(1000))
    assert not limiter.enabled


def test_memory_is_bounded_by_forgetting_the_least_recent_source() -> None:
    limiter = SourceRateLimiter(1, max_sources=2, clock=Clock())
    limiter.allow("a")
    limiter.allow("b")
    limiter.allow("c")
    assert list(limiter.buckets) == ["b", "c"]


def test_retry_after_counts_whole_seconds() -> None:
    limiter = SourceRateLimiter(2, clock=Clock())
    limiter.allow("a")
    limiter.allow("a")
    assert not limiter.allow("a")
    assert limiter.retry_after_s("a") == 30
