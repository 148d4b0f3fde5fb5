"""Fixtures of the notifier tests: the Telegram and Discord stand-ins, and the dashboard's (for its button)."""

from collections.abc import AsyncIterator

import pytest

from tests.integration.dashboard.conftest import app, dashboard_settings, http, users_file  # noqa: F401
from tests.integration.notifier.loopback import FakeDiscord, FakeTelegram, start_discord, start_telegram


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async for fake in start_telegram():
        yield fake


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    async for fake in start_discord():
        yield fake
