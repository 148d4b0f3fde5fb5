"""One destination that keeps failing delays no other: each has its own consumer group, and each
still gets every event once, in order, across a restart and across an upgrade from the single
group of earlier versions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from tests.integration.notifier.loopback import TOKEN, FakeTelegram, start_telegram
from tests.integration.notifier.test_notifier import Running, fill, pending, until
from yquant import keys
from yquant.bus import publish
from yquant.settings import NotifierSettings, NotifyDestination

DOWN = [(500, b'{"ok": false, "description": "Internal Server Error"}')] * 100_000


@pytest.fixture
async def other() -> AsyncIterator[FakeTelegram]:
    async for fake in start_telegram():
        yield fake


def two(phone: FakeTelegram, backup: FakeTelegram) -> NotifierSettings:
    def destination(fake: FakeTelegram) -> NotifyDestination:
        return NotifyDestination.model_validate(
            {
                "kind": "telegram",
                "bot_token": SecretStr(TOKEN),
                "chat_id": "42",
                "api_base": f"http://127.0.0.1:{fake.port}",
            }
        )

    return NotifierSettings(destinations={"phone": destination(phone), "backup": destination(backup)}, retry_max_s=0.05)


def tickers(fake: FakeTelegram) -> list[str]:
    """The tickers of the fills received, in the order the messages tell them (a burst is one message)."""
    found: list[str] = []
    for message in fake.received:
        text = str(message["text"])
        found += sorted((t for t in ("000660", "005930", "035420") if t in text), key=text.index)
    return found


async def test_a_destination_down_for_good_holds_back_no_other_and_catches_up_once_in_order(
    redis_client: aioredis.Redis, telegram: FakeTelegram, other: FakeTelegram
) -> None:
    other.script = list(DOWN)  # "backup" answers 500 until told otherwise
    settings = two(telegram, other)
    async with Running(redis_client, settings):
        await publish(redis_client, keys.EXECUTIONS, fill(ticker="005930"))
        await until(lambda: tickers(telegram) == ["005930"])
        await publish(redis_client, keys.EXECUTIONS, fill(ticker="000660"))
        await until(lambda: tickers(telegram) == ["005930", "000660"])  # while backup still fails
        assert other.received == []
        await until(lambda: _failing(redis_client, "backup"))
    assert await pending(redis_client, keys.EXECUTIONS, "phone") == 0
    assert await pending(redis_client, keys.EXECUTIONS, "backup") > 0  # kept for when it is back

    other.script = []  # backup recovers; a new process picks up where each destination stood
    async with Running(redis_client, settings):
        await publish(redis_client, keys.EXECUTIONS, fill(ticker="035420"))
        await until(lambda: tickers(other) == ["005930", "000660", "035420"])
        await until(lambda: tickers(telegram) == ["005930", "000660", "035420"])
        await until(lambda: _none_pending(redis_client))
    assert tickers(telegram) == ["005930", "000660", "035420"]  # nothing twice after the restart
    assert tickers(other) == ["005930", "000660", "035420"]


async def test_an_upgrade_from_the_single_group_delivers_what_it_had_pending(
    redis_client: aioredis.Redis, telegram: FakeTelegram, other: FakeTelegram
) -> None:
    for stream in keys.NOTIFIER_STREAMS:
        await redis_client.xgroup_create(stream, keys.GROUP_NOTIFIER, id="$", mkstream=True)
    await publish(redis_client, keys.EXECUTIONS, fill(ticker="005930"))
    await redis_client.xreadgroup(keys.GROUP_NOTIFIER, "notifier", {keys.EXECUTIONS: ">"})  # read, never acked
    await publish(redis_client, keys.EXECUTIONS, fill(ticker="000660"))  # not yet read
    async with Running(redis_client, two(telegram, other)):
        await until(lambda: tickers(telegram) == ["005930", "000660"])
        await until(lambda: tickers(other) == ["005930", "000660"])
        await until(lambda: _none_pending(redis_client))


async def _failing(client: aioredis.Redis, name: str) -> bool:
    return await client.hget(keys.notify_status(name), "ok") == b"0"


async def _none_pending(client: aioredis.Redis) -> bool:
    return all([await pending(client, keys.EXECUTIONS, name) == 0 for name in ("phone", "backup")])
