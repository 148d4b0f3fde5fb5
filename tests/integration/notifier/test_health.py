"""Faults that place no order reach the phone: KIS token issuance failing and working again, and a
service missing its heartbeat and back.

Real parts: Valkey, the KIS simulator over HTTP (its tokenP refuses a second call within a minute
with EGW00133, as KIS does), the gateway's TokenManager, the notifier, and the loopback Telegram.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as aioredis

from brokergateway.kis.tokens import TokenManager
from tests.integration.kissim.helpers import SimServer, base_config
from tests.integration.notifier.loopback import FakeTelegram
from tests.integration.notifier.test_notifier import Running, settings_for, until
from yquant import keys
from yquant.errors import BrokerError

APP_KEY = "health-app-key"


@pytest.fixture(scope="module")
def strict_sim() -> Iterator[SimServer]:
    server = SimServer(base_config(mode="real", token_throttle_seconds=60.0)).start()
    yield server
    server.stop()


def lines(telegram: FakeTelegram) -> list[str]:
    """Every event line the phone got (a burst arrives as one message of several lines)."""
    found: list[str] = []
    for message in list(telegram.received):
        found.extend(line for line in str(message["text"]).splitlines() if not line.startswith("yQuant: "))
    return found


def manager(client: aioredis.Redis, http: httpx.AsyncClient, sim: SimServer) -> TokenManager:
    # No local guard: every issuance goes to the simulator, which refuses as KIS does.
    return TokenManager(client, http, sim.url, APP_KEY, "secret", min_issue_interval_s=0, label="main")


async def test_token_issuance_failing_then_working_again_is_one_message_each_way(
    redis_client: aioredis.Redis, telegram: FakeTelegram, strict_sim: SimServer
) -> None:
    async with Running(redis_client, settings_for(telegram)), httpx.AsyncClient(trust_env=False) as http:
        tokens = manager(redis_client, http, strict_sim)
        first = await tokens.get()
        for _ in range(3):  # KIS says the token expired, three times; each renewal is refused
            with pytest.raises(BrokerError) as refused:
                await tokens.refresh_after_expiry(first)
            assert refused.value.code == "EGW00133"
        await until(lambda: lines(telegram))
        strict_sim.admin("/admin/expire-token", {})  # a day later, as far as KIS's throttle goes
        # The gateway restarted meanwhile: its new life still says that issuance works again.
        again = await manager(redis_client, http, strict_sim).refresh_after_expiry(first)
        assert again != first
        await until(lambda: len(lines(telegram)) >= 2)
        await until(lambda: _acknowledged(redis_client))
    failing, working = lines(telegram)
    assert failing.startswith("🔑 KIS token issuance failing for main: ")
    assert "EGW00133" in failing
    assert working == "🔑 KIS token issued again for main: orders can reach KIS"
    assert await redis_client.xlen(keys.HEALTH) == 2  # one entry per change, not one per refusal


async def test_a_first_success_says_nothing(redis_client: aioredis.Redis, strict_sim: SimServer) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        await TokenManager(redis_client, http, strict_sim.url, "quiet-app-key", "s", min_issue_interval_s=0).get()
    assert await redis_client.xlen(keys.HEALTH) == 0


async def beat(client: aioredis.Redis, service: str, instance: str, ttl_ms: int) -> None:
    """A heartbeat as yquant.runtime writes it, its TTL set to make it that old (TTL 15 s minus age)."""
    key = keys.heartbeat(service, instance)
    await client.hset(key, mapping={"instance": instance})
    await client.pexpire(key, ttl_ms)


async def test_a_service_missing_its_heartbeat_is_reported_once_and_back_once_across_a_notifier_restart(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    settings = settings_for(telegram).model_copy(update={"heartbeat_missing_after_s": 3.0, "heartbeat_poll_s": 0.05})
    await beat(redis_client, "ordermanager", "om-1", 15_000)  # beating
    async with Running(redis_client, settings):
        await beat(redis_client, "ordermanager", "om-1", 10_000)  # 5 s since its last beat
        await until(lambda: lines(telegram))
        await until(lambda: _gone(redis_client, keys.heartbeat("ordermanager", "om-1")))  # expired, as after a crash
        await beat(redis_client, "webhook", "wh-1", 11_000)  # a later poll sees this one, after the expiry
        await until(lambda: any("webhook" in line for line in lines(telegram)))
    async with Running(redis_client, settings):  # the notifier restarted
        await beat(redis_client, "dashboard", "d-1", 10_000)  # its first polls are behind it once this is told
        await until(lambda: any("dashboard" in line for line in lines(telegram)))
        await beat(redis_client, "ordermanager", "om-1", 15_000)  # the order manager is back
        await until(lambda: any("ordermanager is back" in line for line in lines(telegram)))
        await until(lambda: _acknowledged(redis_client))
    about_om = [line for line in lines(telegram) if "ordermanager" in line]
    assert len(about_om) == 2, lines(telegram)
    assert about_om[0].startswith("💔 ordermanager (om-1) is missing its heartbeat: no sign of life for ")
    assert about_om[1].startswith("💚 ordermanager is back (out for about ")
    assert len([line for line in lines(telegram) if "webhook" in line]) == 1
    assert await redis_client.hkeys(keys.NOTIFY_DOWN) in ([b"webhook", b"dashboard"], [b"dashboard", b"webhook"])


async def test_a_clean_stop_is_no_outage(redis_client: aioredis.Redis, telegram: FakeTelegram) -> None:
    settings = settings_for(telegram).model_copy(update={"heartbeat_missing_after_s": 3.0, "heartbeat_poll_s": 0.05})
    await beat(redis_client, "ordermanager", "om-1", 15_000)
    async with Running(redis_client, settings) as running:
        await until(lambda: ("ordermanager", "om-1") in running.notifier.heartbeats.seen)  # seen beating
        await redis_client.delete(keys.heartbeat("ordermanager", "om-1"))  # yquant.runtime on a clean stop
        await beat(redis_client, "webhook", "wh-1", 10_000)  # a crash, for a poll to tell after the stop
        await until(lambda: lines(telegram))
    assert [line for line in lines(telegram) if "ordermanager" in line] == []


async def _gone(client: aioredis.Redis, key: str) -> bool:
    return not await client.exists(key)


async def _acknowledged(client: aioredis.Redis) -> bool:
    for stream in (keys.HEALTH, keys.NOTICES):
        try:
            summary = await client.xpending(stream, keys.notifier_group("phone"))
        except aioredis.ResponseError:
            continue
        if int(summary["pending"]):
            return False
    return True


async def live(client: aioredis.Redis, service: str, instance: str, life: str) -> None:
    """A fresh heartbeat of one process's life, as yquant.runtime writes it (same key across restarts)."""
    key = keys.heartbeat(service, instance)
    await client.hset(key, mapping={"instance": instance, "life": life, "started_at": "1796601600.0"})
    await client.pexpire(key, 15_000)


async def remembered(client: aioredis.Redis, name: str) -> str | None:
    value = await client.hget(keys.NOTIFY_LIVES, name)
    return None if value is None else keys.text(value)


async def test_a_restart_no_poll_saw_end_is_told_once_even_across_a_notifier_restart(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    settings = settings_for(telegram).model_copy(update={"heartbeat_poll_s": 0.05})
    restarted = "ordermanager (om-1) restarted: a new process since 2026-12-07 00:00:00 UTC"
    await live(redis_client, "ordermanager", "om-1", "life-a")
    async with Running(redis_client, settings):
        await until(lambda: _is(redis_client, "ordermanager:om-1", "life-a"))  # a first sight says nothing
        # A crash and a container restart within the key's TTL: the same key, a new life, no gap.
        await live(redis_client, "ordermanager", "om-1", "life-b")
        await until(lambda: any(restarted in line for line in lines(telegram)))
        await live(redis_client, "webhook", "wh-1", "life-w")  # a later poll, after the one that told
        await until(lambda: _is(redis_client, "webhook:wh-1", "life-w"))
    await live(redis_client, "ordermanager", "om-1", "life-c")  # stopped and started while nobody watched
    async with Running(redis_client, settings):
        await until(lambda: len([line for line in lines(telegram) if restarted in line]) == 2)
        await until(lambda: _acknowledged(redis_client))
        # A stop the watcher sees (the key deleted) is forgotten: the next start is no restart to tell.
        await redis_client.delete(keys.heartbeat("ordermanager", "om-1"))
        await until(lambda: _is(redis_client, "ordermanager:om-1", None))
        await live(redis_client, "ordermanager", "om-1", "life-d")
        await until(lambda: _is(redis_client, "ordermanager:om-1", "life-d"))
        await live(redis_client, "webhook", "wh-1", "life-w2")  # a webhook restart, told after the last poll above
        await until(lambda: any("webhook (wh-1) restarted" in line for line in lines(telegram)))
    assert len([line for line in lines(telegram) if restarted in line]) == 2, lines(telegram)
    assert [line for line in lines(telegram) if "missing its heartbeat" in line] == []


async def _is(client: aioredis.Redis, name: str, life: str | None) -> bool:
    return await remembered(client, name) == life
