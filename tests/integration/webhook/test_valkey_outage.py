"""Valkey stops, fills up or restarts empty: 503 with nothing written, then accepted again.

Each test runs its own Valkey server; the session's server is never stopped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis import Redis

from tests.integration.webhook.conftest import WebhookClient, appended, strategy_alert
from webhook.app import create_app
from webhook.intake import AlertIntake
from yquant import keys, valkey
from yquant.embedded import EmbeddedValkey
from yquant.settings import Settings, ValkeySettings


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey(tmp_path / "valkey", appendonly=True)
    server.start()
    loader = Redis.from_url(server.url, driver_info=None)
    valkey.load_functions_sync(loader)
    loader.close()
    yield server
    server.stop()


@pytest.fixture
async def own_client(own_valkey: EmbeddedValkey) -> AsyncIterator[aioredis.Redis]:
    client = valkey.connect(ValkeySettings(url=own_valkey.url, socket_timeout_s=1.0))
    yield client
    await client.aclose()


def own_settings(
    settings: Settings, server: EmbeddedValkey, *, durable_ack: bool = True, spool_max_alerts: int = 0
) -> Settings:
    """Settings for a webhook on ``server``; the journal is off unless ``spool_max_alerts``."""
    webhook = {"durable_ack": durable_ack, "spool_max_alerts": spool_max_alerts}
    return settings.model_copy(
        update={
            "valkey": ValkeySettings(url=server.url, socket_timeout_s=1.0),
            "webhook": settings.webhook.model_copy(update=webhook),
        }
    )


async def until_forwarded(client: aioredis.Redis, entries: int, intake: AlertIntake, timeout_s: float = 60) -> None:
    """Until the stream holds ``entries`` and the journal is empty (a deadline, not a duration)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await client.xlen(keys.SIGNALS_WEBHOOK) < entries or len(intake.spool or ()) > 0:
        assert asyncio.get_running_loop().time() < deadline, "the journal was not forwarded"
        await asyncio.sleep(0.05)


async def test_without_a_spool_valkey_stopped_gets_503_with_nothing_written_then_accepted_after_restart(
    webhook_client: WebhookClient, settings: Settings, own_valkey: EmbeddedValkey, own_client: aioredis.Redis
) -> None:
    app = create_app(own_settings(settings, own_valkey), own_client)
    before, headers = strategy_alert(**{"strategy.order.id": "before"})
    during, _ = strategy_alert(**{"strategy.order.id": "during"})
    async with webhook_client(app=app) as http:
        assert (await http.post("/webhook", content=before, headers=headers)).json()["status"] == "accepted"

        await asyncio.to_thread(own_valkey.stop)
        refused = await http.post("/webhook", content=during, headers=headers)
        assert refused.status_code == 503
        assert refused.json() == {
            "status": "rejected",
            "error": "unavailable",
            "code": "valkey",
            "reason": "queue unavailable, retry",
        }
        assert refused.headers["retry-after"] == "5"
        assert (await http.get("/readyz")).status_code == 503

        await asyncio.to_thread(own_valkey.start)  # same port and data: the webhook is not restarted
        # TradingView's resend of the refused alert: nothing of it was written, so it is new.
        resend = await http.post("/webhook", content=during, headers=headers)
        assert resend.json()["status"] == "accepted"
        # The alert accepted before the outage is still known (AOF kept its dedupe key).
        assert (await http.post("/webhook", content=before, headers=headers)).json()["status"] == "duplicate"
        assert (await http.get("/readyz")).status_code == 200
        exposition = (await http.get("/metrics")).text
    assert "yquant_webhook_unavailable_total 1.0" in exposition
    assert [m.signal.order_id for m in await appended(own_client)] == ["before", "during"]


async def test_valkey_out_of_memory_gets_503_and_neither_key_nor_entry(
    webhook_client: WebhookClient, settings: Settings, own_valkey: EmbeddedValkey, own_client: aioredis.Redis
) -> None:
    app = create_app(own_settings(settings, own_valkey), own_client)
    body, headers = strategy_alert()
    await own_client.config_set("maxmemory", "1")  # noeviction: every write is refused
    try:
        async with webhook_client(app=app) as http:
            refused = await http.post("/webhook", content=body, headers=headers)
    finally:
        await own_client.config_set("maxmemory", "256mb")
    assert refused.status_code == 503
    assert await own_client.keys(keys.signal_dedupe("*")) == []
    assert await own_client.xlen(keys.SIGNALS_WEBHOOK) == 0
    async with webhook_client(app=app) as http:
        assert (await http.post("/webhook", content=body, headers=headers)).json()["status"] == "accepted"


async def test_valkey_restarted_empty_gets_its_functions_back(
    webhook_client: WebhookClient, settings: Settings, tmp_path: Path
) -> None:
    server = EmbeddedValkey(tmp_path / "volatile", appendonly=False)  # a restart loses everything
    server.start()
    client = valkey.connect(ValkeySettings(url=server.url, socket_timeout_s=1.0))
    try:
        app = create_app(own_settings(settings, server, durable_ack=False), client)  # no AOF to wait for
        body, headers = strategy_alert()
        async with webhook_client(app=app) as http:
            # Never loaded: the webhook loads the library itself (valkey.load_functions is on).
            assert (await http.post("/webhook", content=body, headers=headers)).json()["status"] == "accepted"
            # Restarted between two alerts, so fast that the pooled connection still looks alive.
            server.stop()
            server.start()
            with Redis.from_url(server.url, driver_info=None) as probe:
                assert probe.function_list() == []
            again = await http.post("/webhook", content=body, headers=headers)
        assert again.json()["status"] == "accepted"  # the dedupe key died with the data, as expected
        assert len(await appended(client)) == 1
    finally:
        await client.aclose()
        server.stop()


async def test_functions_missing_and_not_ours_to_load_is_503(
    webhook_client: WebhookClient, settings: Settings, tmp_path: Path
) -> None:
    server = EmbeddedValkey(tmp_path / "bare", appendonly=False)
    server.start()
    client = valkey.connect(ValkeySettings(url=server.url))
    try:
        restricted = settings.model_copy(update={"valkey": ValkeySettings(url=server.url, load_functions=False)})
        async with webhook_client(app=create_app(restricted, client)) as http:
            body, headers = strategy_alert()
            response = await http.post("/webhook", content=body, headers=headers)
        assert response.status_code == 503
        assert json.loads(response.text)["code"] == "valkey"
        assert await client.exists(keys.SIGNALS_WEBHOOK) == 0
    finally:
        await client.aclose()
        server.stop()


async def test_failed_append_leaves_no_dedupe_key_behind(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    await redis_client.set(keys.SIGNALS_WEBHOOK, "not a stream")  # XADD fails after the SET NX succeeded
    body, headers = strategy_alert()
    async with webhook_client() as http:
        refused = await http.post("/webhook", content=body, headers=headers)
        assert refused.status_code == 503
        await asyncio.sleep(0.01)  # the released key expires after a millisecond
        assert await redis_client.keys(keys.signal_dedupe("*")) == []
        await redis_client.delete(keys.SIGNALS_WEBHOOK)
        resend = await http.post("/webhook", content=body, headers=headers)
    assert resend.json()["status"] == "accepted"  # not mistaken for a duplicate
    assert len(await appended(redis_client)) == 1


async def test_accepted_means_on_disk_the_answer_waits_for_the_aof_fsync(
    webhook_client: WebhookClient, settings: Settings, own_valkey: EmbeddedValkey, own_client: aioredis.Redis
) -> None:
    body, headers = strategy_alert()
    async with webhook_client(app=create_app(own_settings(settings, own_valkey), own_client)) as http:
        answer = await http.post("/webhook", content=body, headers=headers)
    assert answer.json()["status"] == "accepted"
    stats = await own_client.info("commandstats")
    assert stats["cmdstat_waitaof"]["calls"] == 1
    # What was acknowledged is in the AOF on disk, not only in memory.
    aof = b"".join(path.read_bytes() for path in (own_valkey.data_dir / "appendonlydir").glob("*.incr.aof"))
    assert answer.json()["signal_id"].encode() in aof


async def test_durable_ack_against_a_valkey_without_aof_is_503_that_says_so(
    webhook_client: WebhookClient, settings: Settings, tmp_path: Path
) -> None:
    server = EmbeddedValkey(tmp_path / "no-aof", appendonly=False)
    server.start()
    client = valkey.connect(ValkeySettings(url=server.url, socket_timeout_s=1.0))
    try:
        body, headers = strategy_alert()
        async with webhook_client(app=create_app(own_settings(settings, server), client)) as http:
            response = await http.post("/webhook", content=body, headers=headers)
        assert response.status_code == 503
        assert json.loads(response.text)["code"] == "not_durable"
    finally:
        await client.aclose()
        server.stop()


async def test_valkey_stopped_alerts_are_spooled_then_forwarded_in_order_once(
    webhook_client: WebhookClient, settings: Settings, own_valkey: EmbeddedValkey, own_client: aioredis.Redis
) -> None:
    app = create_app(own_settings(settings, own_valkey, spool_max_alerts=100), own_client)
    intake = app.state.intake
    stop = asyncio.Event()
    forwarder = asyncio.create_task(intake.forward_spool(stop, retry_s=0.05))
    before, headers = strategy_alert(**{"strategy.order.id": "before"})
    first, _ = strategy_alert(**{"strategy.order.id": "first"})
    second, _ = strategy_alert(**{"strategy.order.id": "second"})
    try:
        async with webhook_client(app=app) as http:
            assert (await http.post("/webhook", content=before, headers=headers)).json()["status"] == "accepted"
            await asyncio.to_thread(own_valkey.stop)

            spooled = await http.post("/webhook", content=first, headers=headers)
            assert spooled.status_code == 202
            assert spooled.json()["status"] == "spooled"
            resend = await http.post("/webhook", content=first, headers=headers)  # TradingView tries again
            assert resend.json() == {"status": "duplicate", "signal_id": spooled.json()["signal_id"]}
            assert (await http.post("/webhook", content=second, headers=headers)).status_code == 202
            # On disk before the answer: two journal lines, one per alert.
            assert len(intake.spool.journal.read_bytes().splitlines()) == 2

            await asyncio.to_thread(own_valkey.start)
            await until_forwarded(own_client, 3, intake)
            after = await http.post("/webhook", content=first, headers=headers)
            exposition = (await http.get("/metrics")).text
    finally:
        stop.set()
        await forwarder
    assert after.json()["status"] == "duplicate"  # Valkey holds its dedupe key now
    assert [m.signal.order_id for m in await appended(own_client)] == ["before", "first", "second"]
    assert intake.spool.journal.read_bytes() == b""
    assert "yquant_webhook_spooled_total 2.0" in exposition
    assert "yquant_webhook_spool_depth 0" in exposition


async def test_a_full_spool_answers_503(
    webhook_client: WebhookClient, settings: Settings, own_valkey: EmbeddedValkey, own_client: aioredis.Redis
) -> None:
    app = create_app(own_settings(settings, own_valkey, spool_max_alerts=1), own_client)
    one, headers = strategy_alert(**{"strategy.order.id": "one"})
    two, _ = strategy_alert(**{"strategy.order.id": "two"})
    await asyncio.to_thread(own_valkey.stop)
    async with webhook_client(app=app) as http:
        assert (await http.post("/webhook", content=one, headers=headers)).status_code == 202
        full = await http.post("/webhook", content=two, headers=headers)
    assert full.status_code == 503
    assert full.json()["code"] == "spool_full"


async def test_a_restarted_webhook_forwards_what_the_last_run_spooled(
    webhook_client: WebhookClient, settings: Settings, own_valkey: EmbeddedValkey, own_client: aioredis.Redis
) -> None:
    configured = own_settings(settings, own_valkey, spool_max_alerts=100)
    body, headers = strategy_alert(**{"strategy.order.id": "kept"})
    await asyncio.to_thread(own_valkey.stop)
    async with webhook_client(app=create_app(configured, own_client)) as http:
        assert (await http.post("/webhook", content=body, headers=headers)).status_code == 202
    # The process dies; a new one starts on the same folder while Valkey is back.
    await asyncio.to_thread(own_valkey.start)
    again = create_app(configured, own_client)
    stop = asyncio.Event()
    forwarder = asyncio.create_task(again.state.intake.forward_spool(stop, retry_s=0.05))
    try:
        await until_forwarded(own_client, 1, again.state.intake)
    finally:
        stop.set()
        await forwarder
    assert [m.signal.order_id for m in await appended(own_client)] == ["kept"]
