"""Waiting for what a user would see, with a deadline.

Deadlines are generous (a minute unless a test says otherwise): a passing test returns as soon as
its condition holds, so a long bound costs only a failing run, while a short one turns a slow,
shared machine into a red run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout_s: float = 60.0, interval_s: float = 0.05) -> T:
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last: {last!r})")
