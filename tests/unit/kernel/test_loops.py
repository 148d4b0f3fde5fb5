"""The periodic loop every service's background work runs in: a failing round never ends it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from yquant import runtime


async def test_a_round_that_raises_is_logged_and_the_next_round_runs(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    rounds: list[int] = []

    async def tick() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("the first round fails")
        if len(rounds) == 3:
            stop.set()

    with caplog.at_level(logging.ERROR):
        await asyncio.wait_for(runtime.every(stop, 0.0, tick, logging.getLogger("loop-test"), "round failed"), 30)

    assert rounds == [0, 1, 2]
    failures = [r for r in caplog.records if r.name == "loop-test"]
    assert [r.getMessage() for r in failures] == ["round failed"]
    assert failures[0].exc_info is not None
    assert "the first round fails" in str(failures[0].exc_info[1])


async def test_a_stop_ends_the_wait_at_once_and_says_so() -> None:
    stop = asyncio.Event()
    waiting = asyncio.create_task(runtime.sleep_or_stop(stop, 3600))
    await asyncio.sleep(0)
    stop.set()
    assert await asyncio.wait_for(waiting, 30) is True
    assert await runtime.sleep_or_stop(asyncio.Event(), 0.0) is False


async def test_a_loop_asked_to_stop_before_it_starts_runs_no_round() -> None:
    stop = asyncio.Event()
    stop.set()
    rounds: list[int] = []

    async def tick() -> None:
        rounds.append(1)

    await runtime.every(stop, 3600, tick, logging.getLogger("loop-test"), "round failed")
    assert rounds == []
