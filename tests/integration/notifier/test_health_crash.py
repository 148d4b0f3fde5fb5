"""A notifier that dies while recording a service missing, back or restarted, and is started
again, tells it once.

Each report is a record in Valkey (``keys.NOTIFY_DOWN`` for missing and back, ``keys.NOTIFY_LIVES``
for a restart) and a notice on ``keys.NOTICES``, written together in one MULTI under WATCH
(notifier/health.py). The first life dies at each point of that transaction
(tests/integration/notifier/faults.py: nothing leaves it after the point, its connections are
closed before the next life starts); the next life, on the same Valkey and the same loopback
Telegram, must tell it exactly once. "Once" is checked against a later report: another service's,
appended by a poll after the one that would have told a second time, and delivered after it.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from notifier.health import HeartbeatWatch, check_once
from notifier.service import ensure_destination_groups
from tests.integration.notifier.faults import DyingNotifier, Fault, Point, dying_client, end, sends
from tests.integration.notifier.loopback import FakeTelegram
from tests.integration.notifier.test_health import _acknowledged, _is, beat, lines, live
from tests.integration.notifier.test_notifier import Running, settings_for, until
from yquant import keys
from yquant.settings import NotifierSettings

POINTS = pytest.mark.parametrize(
    "point", ["before", "unanswered", "answered"], ids=["before-exec", "exec-unanswered", "after-exec"]
)


def quick(telegram: FakeTelegram) -> NotifierSettings:
    return settings_for(telegram).model_copy(update={"heartbeat_missing_after_s": 3.0, "heartbeat_poll_s": 0.05})


def about(telegram: FakeTelegram, service: str) -> list[str]:
    return [line for line in lines(telegram) if line.split(" ")[1:2] == [service]]


async def seen_by(running: Running, service: str, instance: str) -> bool:
    """The watcher's poll took this heartbeat in: a key written now is only seen by a later poll."""
    return (service, instance) in running.notifier.heartbeats.seen


async def test_the_fault_reaches_its_point_before_anything_is_told(
    valkey_url: str, redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    """The dying life stops where it is told to: at the report, with nothing told yet."""
    await beat(redis_client, "ordermanager", "om-1", 10_000)
    fault = Fault(sends({"HSET", "HSETNX"}, keys.NOTIFY_DOWN), "before")
    async with DyingNotifier(valkey_url, redis_client, quick(telegram), fault):
        pass
    assert fault.tripped.is_set()
    assert lines(telegram) == []
    assert await redis_client.hkeys(keys.NOTIFY_DOWN) == []
    assert await redis_client.xlen(keys.NOTICES) == 0


@POINTS
async def test_a_notifier_dying_as_it_reports_a_service_missing_tells_it_once(
    valkey_url: str, redis_client: aioredis.Redis, telegram: FakeTelegram, point: Point
) -> None:
    settings = quick(telegram)
    await beat(redis_client, "ordermanager", "om-1", 10_000)  # 5 s since its last beat: missing
    fault = Fault(sends({"HSET", "HSETNX"}, keys.NOTIFY_DOWN), point)
    async with DyingNotifier(valkey_url, redis_client, settings, fault):
        pass  # dies in its first poll, recording the order manager missing
    await beat(redis_client, "ordermanager", "om-1", 10_000)  # still 5 s old, as far as its TTL says
    async with Running(redis_client, settings) as running:
        await until(lambda: seen_by(running, "ordermanager", "om-1"))
        await beat(redis_client, "webhook", "wh-1", 10_000)  # missing too, told by a later poll
        await until(lambda: about(telegram, "webhook"))
        await until(lambda: _acknowledged(redis_client))
    [missing] = about(telegram, "ordermanager")
    assert missing.startswith("💔 ordermanager (om-1) is missing its heartbeat: no sign of life for ")


@POINTS
async def test_a_notifier_dying_as_it_reports_a_service_back_tells_it_once(
    valkey_url: str, redis_client: aioredis.Redis, telegram: FakeTelegram, point: Point
) -> None:
    settings = quick(telegram)
    await beat(redis_client, "ordermanager", "om-1", 10_000)
    async with Running(redis_client, settings):
        await until(lambda: about(telegram, "ordermanager"))
        await until(lambda: _acknowledged(redis_client))
    await beat(redis_client, "ordermanager", "om-1", 15_000)  # it beats again
    fault = Fault(sends({"HDEL", "HSET"}, keys.NOTIFY_DOWN), point)
    async with DyingNotifier(valkey_url, redis_client, settings, fault):
        pass  # dies in its first poll, recording the order manager back
    async with Running(redis_client, settings) as running:
        await until(lambda: seen_by(running, "ordermanager", "om-1"))
        await beat(redis_client, "webhook", "wh-1", 10_000)
        await until(lambda: about(telegram, "webhook"))
        await until(lambda: _acknowledged(redis_client))
    missing, back = about(telegram, "ordermanager")
    assert missing.startswith("💔 ordermanager (om-1) is missing its heartbeat")
    assert back.startswith("💚 ordermanager is back (out for about ")
    assert await redis_client.hkeys(keys.NOTIFY_DOWN) == [b"webhook"]


@POINTS
async def test_a_notifier_dying_as_it_records_a_restart_tells_it_once(
    valkey_url: str, redis_client: aioredis.Redis, telegram: FakeTelegram, point: Point
) -> None:
    settings = quick(telegram)
    await live(redis_client, "ordermanager", "om-1", "life-a")
    await live(redis_client, "webhook", "wh-1", "life-w")
    async with Running(redis_client, settings):  # a first sight of each: nothing to tell
        await until(lambda: _is(redis_client, "ordermanager:om-1", "life-a"))
        await until(lambda: _is(redis_client, "webhook:wh-1", "life-w"))
    await live(redis_client, "ordermanager", "om-1", "life-b")  # restarted within the key's TTL
    fault = Fault(sends({"HSET"}, keys.NOTIFY_LIVES), point)
    async with DyingNotifier(valkey_url, redis_client, settings, fault):
        pass  # dies in its first poll, recording the new life
    async with Running(redis_client, settings) as running:
        await until(lambda: seen_by(running, "ordermanager", "om-1"))
        await live(redis_client, "webhook", "wh-1", "life-w2")  # a webhook restart, told by a later poll
        await until(lambda: about(telegram, "webhook"))
        await until(lambda: _acknowledged(redis_client))
    [restarted] = about(telegram, "ordermanager")
    assert restarted.startswith("🔄 ordermanager (om-1) restarted: a new process since 2026-12-07 00:00:00 UTC")
    assert await redis_client.hget(keys.NOTIFY_LIVES, "ordermanager:om-1") == b"life-b"


async def alive(client: aioredis.Redis, service: str, instance: str, life: str, ttl_ms: int) -> None:
    """A heartbeat of one process's life (as yquant.runtime writes it), ``15 s - ttl_ms`` old."""
    key = keys.heartbeat(service, instance)
    await client.hset(key, mapping={"instance": instance, "life": life, "started_at": "1796601600.0"})
    await client.pexpire(key, ttl_ms)


async def gone(client: aioredis.Redis, service: str, instance: str) -> bool:
    return not await client.exists(keys.heartbeat(service, instance))


@POINTS
async def test_a_notifier_dying_as_it_reports_a_crash_tells_it_once_after_the_heartbeat_expired(
    valkey_url: str, redis_client: aioredis.Redis, telegram: FakeTelegram, point: Point
) -> None:
    """A crashed service's heartbeat expires 3 s after it looks missing (15 s against 12 s): a
    notifier that died reporting it finds no heartbeat to see when it starts again."""
    settings = quick(telegram)
    await live(redis_client, "ordermanager", "om-1", "life-a")
    async with Running(redis_client, settings):  # it saw the order manager alive
        await until(lambda: _is(redis_client, "ordermanager:om-1", "life-a"))
    await alive(redis_client, "ordermanager", "om-1", "life-a", 6_000)  # 9 s since its last beat: a crash
    fault = Fault(sends({"HSET"}, keys.NOTIFY_DOWN), point)
    async with DyingNotifier(valkey_url, redis_client, settings, fault):
        pass  # dies reporting the order manager missing
    await until(lambda: gone(redis_client, "ordermanager", "om-1"), timeout_s=60)  # expired: nobody deletes it
    async with Running(redis_client, settings):
        await until(lambda: about(telegram, "ordermanager"))
        await alive(redis_client, "webhook", "wh-1", "life-w", 10_000)  # missing too, told by a later poll
        await until(lambda: about(telegram, "webhook"))
        await live(redis_client, "ordermanager", "om-1", "life-b")  # restarted: back, and no restart to tell
        await until(lambda: any("ordermanager is back" in line for line in lines(telegram)))
        await until(lambda: _acknowledged(redis_client))
    assert len(about(telegram, "ordermanager")) == 2, lines(telegram)
    missing, back = about(telegram, "ordermanager")
    assert missing.startswith("💔 ordermanager (om-1) is missing its heartbeat: ")
    assert back.startswith("💚 ordermanager is back (out for ")


@POINTS
async def test_a_notifier_dying_in_the_poll_that_finds_an_expired_heartbeat_gone_tells_it_once(
    valkey_url: str, redis_client: aioredis.Redis, telegram: FakeTelegram, point: Point
) -> None:
    """A key last seen young and gone once older than any clean stop: only that poll knows of the
    outage. The watcher is driven poll by poll on its own clock (check_once's ``now``), so "100 s
    later" needs no waiting; the key's removal stands in for its expiry, the age alone tells them
    apart."""
    await ensure_destination_groups(redis_client, "phone")  # as a notifier that ran before left them
    fault = Fault(sends({"HSET"}, keys.NOTIFY_DOWN), point)
    client = dying_client(valkey_url, fault, "dying-watch")
    watch = HeartbeatWatch(missing_after_s=3.0)
    await live(redis_client, "ordermanager", "om-1", "life-a")
    await check_once(client, watch, 0.0, time.time())  # seen beating, its life remembered
    await redis_client.delete(keys.heartbeat("ordermanager", "om-1"))
    polling = asyncio.create_task(check_once(client, watch, 100.0, time.time()))  # gone, 100 s old: a crash
    await fault.ended()
    await end(redis_client, client, "dying-watch", polling)
    async with Running(redis_client, quick(telegram)):
        await until(lambda: about(telegram, "ordermanager"))
        await alive(redis_client, "webhook", "wh-1", "life-w", 10_000)  # missing too, told by a later poll
        await until(lambda: about(telegram, "webhook"))
        await until(lambda: _acknowledged(redis_client))
    [missing] = about(telegram, "ordermanager")
    assert missing.startswith("💔 ordermanager (om-1) is missing its heartbeat: ")
