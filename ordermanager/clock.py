"""An injectable clock, so schedule and staleness logic can be tested on any date (the tests'
clock that moves only when told is tests/harness/clock.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
