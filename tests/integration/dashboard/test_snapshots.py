"""The daily equity snapshot a trader's day P/L is measured from, taken by the dashboard after the
KRX close: a dashboard that starts after the snapshot time but before the gateway's first sync
must still take the day's snapshot once the accounts arrive, and show the accounts at once.
"""

from __future__ import annotations

import html
import re
from datetime import datetime

import httpx
import orjson
import redis.asyncio as aioredis

from dashboard.data import Reader
from dashboard.performance import snapshot_if_due
from tests.integration.dashboard.conftest import login
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

    await seed_accounts(redis_client, synced_at=AFTER_THE_CLOSE)
    taken = await snapshot_if_due(reader, SEOUL, "15:45", AFTER_THE_CLOSE)

    assert taken is not None
    assert taken["date"] == "2026-12-07"
    assert sorted(taken["accounts"]) == ["isa", "main"]
    assert taken["stale_accounts"] == []
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


async def test_a_snapshot_from_accounts_not_synced_since_the_close_is_taken_again_once_they_sync(
    redis_client: aioredis.Redis, dashboard_settings: Settings
) -> None:
    """A gateway down all afternoon: the 15:45 snapshot would be the morning's equity, and
    tomorrow's day P/L measured from it. It is taken, marked, and replaced by the close's."""
    reader = Reader(redis_client, dashboard_settings)
    await seed_accounts(redis_client, synced_at=datetime(2026, 12, 7, 11, 0, tzinfo=SEOUL))

    stale = await snapshot_if_due(reader, SEOUL, "15:45", AFTER_THE_CLOSE)
    assert stale is not None
    assert stale["stale_accounts"] == ["isa", "main"]
    assert await snapshot_if_due(reader, SEOUL, "15:45", AFTER_THE_CLOSE.replace(minute=1)) is None  # still stale

    await seed_accounts(redis_client, synced_at=datetime(2026, 12, 7, 16, 2, tzinfo=SEOUL))
    fresh = await snapshot_if_due(reader, SEOUL, "15:45", AFTER_THE_CLOSE.replace(minute=3))

    assert fresh is not None
    assert fresh["stale_accounts"] == []
    stored = [orjson.loads(as_bytes(raw)) for raw in await redis_client.zrange(keys.EQUITY_SNAPSHOTS, 0, -1)]
    assert [(s["date"], s["stale_accounts"]) for s in stored] == [("2026-12-07", [])]  # replaced, not added
    assert await snapshot_if_due(reader, SEOUL, "15:45", AFTER_THE_CLOSE.replace(minute=4)) is None  # once


async def test_a_snapshot_waits_for_every_account_not_just_one(
    redis_client: aioredis.Redis, dashboard_settings: Settings
) -> None:
    reader = Reader(redis_client, dashboard_settings)
    await seed_accounts(redis_client, synced_at=datetime(2026, 12, 7, 11, 0, tzinfo=SEOUL))
    assert await snapshot_if_due(reader, SEOUL, "15:45", AFTER_THE_CLOSE) is not None
    await redis_client.hset(keys.account("main"), "synced_at", datetime(2026, 12, 7, 16, 2, tzinfo=SEOUL).isoformat())

    assert await snapshot_if_due(reader, SEOUL, "15:45", AFTER_THE_CLOSE.replace(minute=3)) is None  # isa is stale


async def test_the_performance_page_says_which_accounts_a_snapshot_is_stale_for(
    http: httpx.AsyncClient, redis_client: aioredis.Redis, dashboard_settings: Settings
) -> None:
    await seed_accounts(redis_client, synced_at=datetime(2026, 12, 7, 11, 0, tzinfo=SEOUL))
    assert await snapshot_if_due(Reader(redis_client, dashboard_settings), SEOUL, "15:45", AFTER_THE_CLOSE) is not None
    await login(http)

    page = (await http.get("/performance")).text

    assert "not synced since the close: isa, main" in " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
