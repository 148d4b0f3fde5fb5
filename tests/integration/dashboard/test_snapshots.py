"""The daily equity snapshot a trader's day P/L is measured from, taken by the dashboard after the
KRX close: a dashboard that starts after the snapshot time but before the gateway's first sync
must still take the day's snapshot once the accounts arrive, and show the accounts at once.
"""

from __future__ import annotations

from datetime import datetime

import orjson
import redis.asyncio as aioredis

from dashboard.data import Reader
from dashboard.performance import snapshot_if_due
from tests.integration.dashboard.seed import SEOUL, seed_accounts
from tests.replies import as_bytes
from yquant import keys
from yquant.settings import Settings

AFTER_THE_CLOSE = datetime(2026, 12, 7, 16, 0, tzinfo=SEOUL)  # a Monday, KRX open that day


async def test_a_snapshot_due_before_the_first_sync_is_taken_once_the_accounts_arrive(
    redis_client: aioredis.Redis, dashboard_settings: Settings
) -> None:
    reader = Reader(redis_client, dashboard_settings)
    assert await snapshot_if_due(reader, SEOUL, "15:45", AFTER_THE_CLOSE) is None  # nothing synced yet

    await seed_accounts(redis_client)
    taken = await snapshot_if_due(reader, SEOUL, "15:45", AFTER_THE_CLOSE)

    assert taken is not None
    assert taken["date"] == "2026-12-07"
    assert sorted(taken["accounts"]) == ["isa", "main"]
    assert await snapshot_if_due(reader, SEOUL, "15:45", AFTER_THE_CLOSE) is None  # once a day
    stored = [orjson.loads(as_bytes(raw)) for raw in await redis_client.zrange(keys.EQUITY_SNAPSHOTS, 0, -1)]
    assert [s["date"] for s in stored] == ["2026-12-07"]


async def test_no_snapshot_before_the_snapshot_time(redis_client: aioredis.Redis, dashboard_settings: Settings) -> None:
    await seed_accounts(redis_client)
    reader = Reader(redis_client, dashboard_settings)
    assert await snapshot_if_due(reader, SEOUL, "15:45", AFTER_THE_CLOSE.replace(hour=15, minute=44)) is None
    assert await redis_client.zcard(keys.EQUITY_SNAPSHOTS) == 0


async def test_the_first_synced_account_shows_at_once_on_a_dashboard_that_started_before_it(
    redis_client: aioredis.Redis, dashboard_settings: Settings
) -> None:
    reader = Reader(redis_client, dashboard_settings)
    before, _ = await reader.portfolio(SEOUL)
    assert before.accounts == []

    await seed_accounts(redis_client)
    after, _ = await reader.portfolio(SEOUL)

    assert sorted(a.alias for a in after.accounts) == ["isa", "main"]
