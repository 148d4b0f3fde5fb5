"""A notifier that dies inside the daily summary's claim and is started again sends it once.

The summary is claimed under WATCH on its claim key, then MULTI: SET the claim + XADD the notice,
EXEC (notifier/summary.py). The first life dies at each point of that (tests/integration/notifier/
faults.py: nothing leaves it after the point, its connections are closed before the next life
starts); the next life, on the same Valkey and the same loopback Telegram, must deliver the
summary exactly once. "Once" is checked after the next life ran a whole check past the close and
its group acknowledged every notice, so a second summary or a second delivery would have shown.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tests.integration.notifier.faults import DyingNotifier, Fault, Point, sends
from tests.integration.notifier.loopback import FakeTelegram
from tests.integration.notifier.test_notifier import Running, until
from tests.integration.notifier.test_summary import Clock, passed_over, seoul, settings_for, texts
from yquant import keys

CLAIM = keys.notify_summary("KRX", "2026-12-07")
SUMMARY = "📊 KRX daily summary 2026-12-07\nno orders, no account synced"


@pytest.mark.parametrize(
    ("command", "point"),
    [
        ("WATCH", "answered"),  # the claim watched and found free; MULTI not sent yet
        ("SET", "before"),  # MULTI, SET, XADD, EXEC never sent
        ("SET", "unanswered"),  # EXEC sent: Valkey ran it, the notifier never read that it did
        ("SET", "answered"),  # right after EXEC, before any delivery
    ],
    ids=["after-watch", "before-exec", "exec-unanswered", "after-exec"],
)
async def test_a_notifier_dying_in_the_summary_claim_sends_the_summary_once(
    valkey_url: str, redis_client: aioredis.Redis, telegram: FakeTelegram, command: str, point: Point
) -> None:
    clock = Clock(seoul(7, 9))  # Monday morning: the notifier watches for the KRX close from here
    settings = settings_for(telegram)
    fault = Fault(sends({command}, CLAIM), point)
    async with DyingNotifier(valkey_url, redis_client, settings, fault, clock.now):
        await clock.move(seoul(7, 12))
        clock.set(seoul(7, 15, 45))  # the summary fell due at 15:40: this life dies claiming it
    assert texts(telegram) == []
    async with Running(redis_client, settings, clock=clock.now):  # started again the same minute
        await until(lambda: texts(telegram))
        await clock.move(seoul(7, 15, 50))  # a whole check ran after the one that found it due or claimed
        await until(lambda: passed_over(redis_client, "phone"))
    assert texts(telegram) == [SUMMARY]
    assert await redis_client.xlen(keys.NOTICES) == 1
    assert await redis_client.exists(CLAIM)
