"""Fixtures of the notifier tests: the Telegram stand-in, and the dashboard's (for its button)."""

from collections.abc import AsyncIterator

import pytest

from tests.integration.dashboard.conftest import app, dashboard_settings, http, users_file  # noqa: F401
from tests.integration.notifier.test_notifier import FakeTelegram, start_telegram


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async for fake in start_telegram():
        yield fake
