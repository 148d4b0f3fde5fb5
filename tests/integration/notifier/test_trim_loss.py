"""Entries trimmed off a stream before the notifier read them: counted, told once, and shown on the
dashboard's system page.

Real parts: Valkey (its stream length cap trims as the services' MAXLEN does), the notifier, the
loopback Telegram and the dashboard's app.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis

from notifier.service import CONSUMER, Notifier, ensure_destination_groups
from tests.integration.dashboard.conftest import login
from tests.integration.notifier.loopback import FakeTelegram
from tests.integration.notifier.test_health import lines
from tests.integration.notifier.test_notifier import Running, fill, pending, settings_for, until
from tests.replies import xrange
from yquant import keys
from yquant.bus import fields_of, publish

TOLD = "⚠️ 15 entries of yq:stream:executions were trimmed before phone read them: their notifications are lost"


async def delivered(client: aioredis.Redis) -> bool:
    return await pending(client, keys.EXECUTIONS) == 0 and await pending(client, keys.NOTICES) == 0


async def test_entries_trimmed_while_the_notifier_was_down_are_told_once_and_counted_on_the_system_page(
    http: httpx.AsyncClient, redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    await login(http)
    settings = settings_for(telegram)
    async with Running(redis_client, settings):
        await publish(redis_client, keys.EXECUTIONS, fill(quantity=100))
        await until(lambda: len(lines(telegram)) == 1)
        await until(lambda: delivered(redis_client))
    # While it is down, 20 fills; the stream keeps its last 5, so 1 read + 15 never read are trimmed.
    for quantity in range(1, 21):
        entry: Any = fields_of(fill(quantity=quantity))
        await redis_client.xadd(keys.EXECUTIONS, entry, maxlen=5, approximate=False)
    async with Running(redis_client, settings):
        await until(lambda: len(lines(telegram)) == 1 + 5 + 1)  # the five left, and the loss
        await until(lambda: delivered(redis_client))
    # Down again: 10 more fills; 16..20 (read) and the first five new ones (never read) are trimmed.
    for quantity in range(21, 31):
        entry = fields_of(fill(quantity=quantity))
        await redis_client.xadd(keys.EXECUTIONS, entry, maxlen=5, approximate=False)
    async with Running(redis_client, settings):  # only the new loss is told
        await until(lambda: len(lines(telegram)) == 7 + 5 + 1)
        await until(lambda: delivered(redis_client))
    async with Running(redis_client, settings):  # restarted: neither loss is told again
        await publish(redis_client, keys.EXECUTIONS, fill(quantity=99))
        await until(lambda: len(lines(telegram)) == 14)
        await until(lambda: delivered(redis_client))
    told = [line for line in lines(telegram) if "trimmed" in line]
    assert told == [TOLD, TOLD.replace("15 entries", "5 entries")]
    fills = [line for line in lines(telegram) if line.startswith("✅")]
    assert [line.split(" @ ")[0].rsplit(" ", 1)[1] for line in fills] == [
        "100",
        *map(str, range(16, 21)),
        *map(str, range(26, 31)),
        "99",
    ]
    page = await http.get("/system")
    row = page.text.split('data-destination="phone"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num trimmed">20</td>' in row


async def test_a_restart_between_telling_a_loss_and_stepping_over_it_does_not_tell_it_again(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    """A notifier that told the loss and died before its next read checks again on its restart,
    before that read: the loss is there still, and told already."""
    await ensure_destination_groups(redis_client, "phone")
    await publish(redis_client, keys.EXECUTIONS, fill(quantity=100))
    group = keys.notifier_group("phone")
    await redis_client.xreadgroup(group, CONSUMER, {keys.EXECUTIONS: ">"})  # read at the end: counter known
    for quantity in range(1, 21):
        entry: Any = fields_of(fill(quantity=quantity))
        await redis_client.xadd(keys.EXECUTIONS, entry, maxlen=5, approximate=False)
    async with httpx.AsyncClient(trust_env=False) as http:
        for _ in range(2):  # the check before the read, in the life that died and in the next one
            await Notifier(redis_client, settings_for(telegram), http)._count_trimmed("phone")
    notices = await xrange(redis_client, keys.NOTICES)
    assert [orjson.loads(fields[b"data"])["en"] for _, fields in notices] == [TOLD]
    assert await redis_client.hget(keys.notify_status("phone"), "trimmed") == b"15"
