"""Outages that happen while no notifier runs: what the trader hears when one starts again.

The services' heartbeats are written as yquant.runtime writes them (a life per process, its start
time); a heartbeat that stops while nobody watches is removed here, which is all a crash leaves
once the key's 15 s TTL ran out (the notifier cannot tell that from a clean stop, and says so).
Real Valkey, the notifier in-process, the loopback Telegram. "Once" is checked against a later
report: another service's, appended by a poll after the one that would have told a second time,
and delivered after it.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from tests.integration.notifier.loopback import FakeTelegram
from tests.integration.notifier.test_health import _acknowledged, _is, lines, live, remembered
from tests.integration.notifier.test_health_crash import about, quick, seen_by
from tests.integration.notifier.test_notifier import Running, until
from yquant import keys


async def watched(client: aioredis.Redis, telegram: FakeTelegram) -> None:
    """A notifier that saw the order manager and the webhook alive, then stopped."""
    await live(client, "ordermanager", "om-1", "life-a")
    await live(client, "webhook", "wh-1", "life-w")
    async with Running(client, quick(telegram)):
        await until(lambda: _is(client, "ordermanager:om-1", "life-a"))
        await until(lambda: _is(client, "webhook:wh-1", "life-w"))


async def test_a_crash_and_restart_while_no_notifier_ran_is_told_as_a_restart_at_its_start_time(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    await watched(redis_client, telegram)
    await redis_client.delete(keys.heartbeat("ordermanager", "om-1"))  # it crashed; its key expired
    await live(redis_client, "ordermanager", "om-1", "life-b")  # and its container started it again
    async with Running(redis_client, quick(telegram)) as running:
        await until(lambda: seen_by(running, "ordermanager", "om-1"))
        await live(redis_client, "webhook", "wh-1", "life-w2")  # a webhook restart, told by a later poll
        await until(lambda: about(telegram, "webhook"))
        await until(lambda: _acknowledged(redis_client))
    assert about(telegram, "ordermanager") == [
        "🔄 ordermanager (om-1) restarted: a new process since 2026-12-07 00:00:00 UTC; its previous one ended "
        "unseen (a crash, or a stop while notifications were down)"
    ]


async def test_a_service_that_ended_while_no_notifier_ran_and_is_still_down_is_reported_missing_then_back(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    await watched(redis_client, telegram)
    await redis_client.delete(keys.heartbeat("ordermanager", "om-1"))  # it crashed; its key expired
    async with Running(redis_client, quick(telegram)) as running:
        await until(lambda: about(telegram, "ordermanager"))  # once its heartbeat is missing 3 s into this life
        await live(redis_client, "ordermanager", "om-1", "life-b")  # started again
        await until(lambda: len(about(telegram, "ordermanager")) >= 2)
        await until(lambda: seen_by(running, "ordermanager", "om-1"))
        await live(redis_client, "webhook", "wh-1", "life-w2")  # a webhook restart, told by a later poll
        await until(lambda: about(telegram, "webhook"))
        await until(lambda: _acknowledged(redis_client))
    assert len(about(telegram, "ordermanager")) == 2, lines(telegram)
    missing, back = about(telegram, "ordermanager")
    assert missing == (
        "💔 ordermanager (om-1) is missing its heartbeat: its process ended while no notifier watched "
        "(a crash, or a stop) and has not started again"
    )
    assert back.startswith("💚 ordermanager is back (out for at least ")


async def test_the_same_process_losing_its_heartbeat_while_no_notifier_ran_leaves_nothing_to_tell(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    """Valkey out of the order manager's reach for a minute: its key expired and came back with
    the same life. Nothing in Valkey says so once it beats again, so nothing is said (and no
    restart is made up)."""
    await watched(redis_client, telegram)
    await redis_client.delete(keys.heartbeat("ordermanager", "om-1"))
    await live(redis_client, "ordermanager", "om-1", "life-a")
    async with Running(redis_client, quick(telegram)) as running:
        await until(lambda: seen_by(running, "ordermanager", "om-1"))
        await live(redis_client, "webhook", "wh-1", "life-w2")  # a webhook restart, told by a later poll
        await until(lambda: about(telegram, "webhook"))
        await until(lambda: _acknowledged(redis_client))
    assert about(telegram, "ordermanager") == []


async def test_services_stopped_cleanly_just_before_the_notifier_are_not_told_as_restarts_next_time(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    """`yquant up` stops the services, then the notifier (yquant/supervisor.py STOP_ORDER): a clean
    stop deletes the service's heartbeat, and the notifier's last look, as it stops, sees it go, so
    the next start of the whole system says nothing about it. The poll interval here is an hour:
    only the look at the stop can have seen the key go."""
    await live(redis_client, "ordermanager", "om-1", "life-a")
    await live(redis_client, "webhook", "wh-1", "life-w")
    slow = quick(telegram).model_copy(update={"heartbeat_poll_s": 3600.0})
    async with Running(redis_client, slow):
        await until(lambda: _is(redis_client, "ordermanager:om-1", "life-a"))
        await until(lambda: _is(redis_client, "webhook:wh-1", "life-w"))
        await redis_client.delete(keys.heartbeat("ordermanager", "om-1"))  # its clean stop
    assert await remembered(redis_client, "ordermanager:om-1") is None

    await live(redis_client, "ordermanager", "om-1", "life-b")  # the next `yquant up`
    async with Running(redis_client, quick(telegram)) as running:
        await until(lambda: seen_by(running, "ordermanager", "om-1"))
        await until(lambda: _is(redis_client, "ordermanager:om-1", "life-b"))
        await live(redis_client, "webhook", "wh-1", "life-w2")  # a webhook restart, told by a later poll
        await until(lambda: about(telegram, "webhook"))
        await until(lambda: _acknowledged(redis_client))
    assert about(telegram, "ordermanager") == [], lines(telegram)
