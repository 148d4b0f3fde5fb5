"""A first start: a fill appended before the notifier process has read anything still reaches the
phone, because ``yquant up`` creates the notifier's groups before any service starts."""

from __future__ import annotations

import redis.asyncio as aioredis

from tests.integration.notifier.loopback import FakeTelegram
from tests.integration.notifier.test_notifier import Running, fill, settings_for, until
from yquant import keys, valkey
from yquant.bus import publish
from yquant.supervisor import notifier_groups_sync


async def test_a_fill_appended_before_the_notifier_starts_is_delivered(
    valkey_url: str, redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    sync = valkey.connect_sync_url(valkey_url)
    try:
        notifier_groups_sync(sync, ["phone"])
        notifier_groups_sync(sync, ["phone"])  # a second start finds them and changes nothing
    finally:
        sync.close()
    await publish(redis_client, keys.EXECUTIONS, fill(ticker="000660"))  # the webhook was quicker
    async with Running(redis_client, settings_for(telegram)):
        await until(lambda: telegram.received)
    [message] = telegram.received
    assert "000660" in str(message["text"])


async def test_without_the_groups_made_first_that_fill_would_be_skipped(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    """What the supervisor prevents: a group made by the notifier itself starts after that fill."""
    await publish(redis_client, keys.EXECUTIONS, fill(ticker="000660"))
    async with Running(redis_client, settings_for(telegram)):
        await publish(redis_client, keys.EXECUTIONS, fill(ticker="035420"))
        await until(lambda: telegram.received)
    assert ["035420" in str(m["text"]) for m in telegram.received] == [True]
