"""The notifier against a real Valkey and a loopback HTTP server standing in for a Discord webhook.

Discord answers a delivered message with 204 and no body, and a 429 with how long to wait: in
the JSON body (``retry_after``) and in a ``Retry-After`` header.
"""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis
from pydantic import SecretStr

from tests.integration.notifier.loopback import WEBHOOK_TOKEN, Answer, FakeDiscord, RateLimited
from tests.integration.notifier.test_notifier import Running, fill, pending, until
from yquant import keys
from yquant.bus import publish
from yquant.settings import NotifierSettings, NotifyDestination


def settings_for(url: str, retry_max_s: float = 60.0) -> NotifierSettings:
    destination = NotifyDestination(kind="discord", url=SecretStr(url))
    return NotifierSettings(destinations={"channel": destination}, retry_max_s=retry_max_s)


async def _delivered(client: aioredis.Redis) -> bool:
    return await pending(client, keys.EXECUTIONS, "channel") == 0 and await client.hget(
        keys.notify_status("channel"), "ok"
    ) in (
        b"1",
        b"0",
    )


async def test_a_fill_becomes_one_discord_message_on_a_204_without_a_body(
    redis_client: aioredis.Redis, discord: FakeDiscord
) -> None:
    async with Running(redis_client, settings_for(discord.url())):
        await publish(redis_client, keys.EXECUTIONS, fill())
        await until(lambda: discord.received)
        await until(lambda: _delivered(redis_client))
    [message] = discord.received
    assert message["allowed_mentions"] == {"parse": []}  # a ticker or reason never pings @everyone
    assert "005930" in message["content"]
    assert "₩70,000" in message["content"]
    assert len(discord.requests) == 1
    status = await redis_client.hgetall(keys.notify_status("channel"))
    assert (status[b"ok"], status[b"delivered"]) == (b"1", b"1")
    assert WEBHOOK_TOKEN not in str(status)


async def test_a_429_is_honoured_for_the_seconds_discord_asks_then_the_message_arrives_once(
    redis_client: aioredis.Redis, discord: FakeDiscord
) -> None:
    discord.script = [RateLimited(retry_after_s=0.4)]  # body 0.4, header "1" (rounded up)
    async with Running(redis_client, settings_for(discord.url(version=10))):
        await publish(redis_client, keys.EXECUTIONS, fill())
        await until(lambda: discord.received)
        await until(lambda: _delivered(redis_client))
    assert len(discord.received) == 1
    refused, delivered = discord.requests
    assert delivered.at - refused.at >= 0.4
    status = await redis_client.hgetall(keys.notify_status("channel"))
    assert (status[b"failures"], status[b"delivered"], status[b"ok"]) == (b"1", b"1", b"1")


async def test_a_429_on_the_url_as_copied_from_discord_costs_its_wait_not_the_longest_backoff(
    redis_client: aioredis.Redis, discord: FakeDiscord
) -> None:
    """Discord's channel settings hand out /api/webhooks/... without a version; read as seconds,
    the wait that API version answers (milliseconds) would hold every message for retry_max_s."""
    discord.script = [RateLimited(retry_after_s=0.3)]
    async with Running(redis_client, settings_for(discord.url(), retry_max_s=600)):
        await publish(redis_client, keys.EXECUTIONS, fill())
        await until(lambda: discord.received, timeout_s=30)
        await until(lambda: _delivered(redis_client))
    refused, delivered = discord.requests
    assert delivered.at - refused.at >= 0.3
    assert len(discord.received) == 1


async def test_a_429_with_only_a_retry_after_header_is_honoured(
    redis_client: aioredis.Redis, discord: FakeDiscord
) -> None:
    """Cloudflare in front of Discord answers 429 with a header and no JSON body."""
    discord.script = [Answer(429, b"<html>rate limited</html>", {"retry-after": "1", "content-type": "text/html"})]
    async with Running(redis_client, settings_for(discord.url(version=10))):
        await publish(redis_client, keys.EXECUTIONS, fill())
        await until(lambda: discord.received)
        await until(lambda: _delivered(redis_client))
    refused, delivered = discord.requests
    assert delivered.at - refused.at >= 1.0
    assert len(discord.received) == 1


async def test_a_5xx_is_retried_and_the_message_arrives_once(
    redis_client: aioredis.Redis, discord: FakeDiscord
) -> None:
    discord.script = [Answer(502, b'{"message": "Bad Gateway"}'), Answer(503, b"")]
    async with Running(redis_client, settings_for(discord.url(), retry_max_s=0.05)):
        await publish(redis_client, keys.EXECUTIONS, fill())
        await until(lambda: discord.received)
        await until(lambda: _delivered(redis_client))
    assert len(discord.requests) == 3
    assert len(discord.received) == 1


async def test_a_deleted_webhook_is_given_up_with_an_error_that_hides_the_url(
    redis_client: aioredis.Redis, discord: FakeDiscord
) -> None:
    wrong = discord.url().replace(WEBHOOK_TOKEN, "deleted-" + WEBHOOK_TOKEN)
    async with Running(redis_client, settings_for(wrong)):
        await publish(redis_client, keys.EXECUTIONS, fill())
        await until(lambda: _delivered(redis_client))
    assert discord.received == []
    assert len(discord.requests) == 1  # a 404 is not retried
    status = await redis_client.hgetall(keys.notify_status("channel"))
    assert status[b"ok"] == b"0"
    assert b"404" in status[b"error"]
    assert WEBHOOK_TOKEN not in str(status)


async def test_one_event_longer_than_discord_takes_arrives_cut_instead_of_refused(
    redis_client: aioredis.Redis, discord: FakeDiscord
) -> None:
    """A dead letter's reason can be a long validation error; Discord refuses over 2000 characters."""
    payload = {"stream": keys.EXECUTIONS, "group": "ordermanager-exec", "entry_id": "1-0", "reason": "x" * 3000}
    async with Running(redis_client, settings_for(discord.url())):
        await redis_client.xadd(keys.DEAD_LETTERS, {"type": "DeadLetter", "data": orjson.dumps(payload)})
        await until(lambda: discord.requests)
        await until(lambda: _acked(redis_client, keys.DEAD_LETTERS))
    [content] = discord.contents
    assert content.startswith("☠️ Dead letter from yq:stream:executions (ordermanager-exec): xxx")
    assert len(content) <= 2000
    assert content.endswith("…")


async def _acked(client: aioredis.Redis, stream: str) -> bool:
    return await pending(client, stream, "channel") == 0
