"""The notifier against a real Valkey and a real HTTP server standing in for Telegram.

The stand-in (loopback.FakeTelegram) speaks HTTP/1.1 on loopback and answers from a script (a 429
with retry_after, then 200s); the notifier reaches it through the destination's ``api_base``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import redis.asyncio as aioredis
from pydantic import SecretStr

from notifier.service import Notifier
from tests.integration.notifier.loopback import TOKEN, FakeTelegram
from tests.replies import as_bytes
from yquant import keys
from yquant.bus import publish
from yquant.messages import Market, OrderFilled, OrderRejected, Side, SignalDenied, SubmitOrder
from yquant.orders import create_order
from yquant.settings import NotifierSettings, NotifyDestination


def settings_for(telegram: FakeTelegram, **destination: object) -> NotifierSettings:
    values: dict[str, object] = {
        "kind": "telegram",
        "bot_token": SecretStr(TOKEN),
        "chat_id": "42",
        "api_base": f"http://127.0.0.1:{telegram.port}",
        **destination,
    }
    return NotifierSettings(destinations={"phone": NotifyDestination.model_validate(values)}, retry_max_s=0.05)


# The notifier's wall clock in these tests: a Saturday, so no market's close falls due while a test
# runs and no daily summary joins the messages a test counts (tests/integration/notifier/test_summary.py
# drives the clock through closes).
QUIET = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class Running:
    def __init__(
        self, client: aioredis.Redis, settings: NotifierSettings, clock: Callable[[], datetime] = lambda: QUIET
    ) -> None:
        self.client, self.settings = client, settings
        self.stop = asyncio.Event()
        self.http = httpx.AsyncClient(timeout=5, trust_env=False)
        self.notifier = Notifier(client, settings, self.http, clock=clock)
        self.notifier.block_ms = 50
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.notifier.run(self.stop))
        # Its groups start at the end of each stream: wait until they exist before appending.
        await until(lambda: groups_exist(self.client))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await self.task
        await self.http.aclose()


async def groups_exist(client: aioredis.Redis) -> bool:
    try:
        groups = await client.xinfo_groups(keys.NOTIFIER_STREAMS[-1])  # the last stream it sets up
    except aioredis.ResponseError:
        return False
    return any(keys.text(g["name"]).startswith(keys.GROUP_NOTIFIER + ":") for g in groups)


async def until(condition: object, timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = condition()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def fill(ticker: str = "005930", quantity: int = 3) -> OrderFilled:
    return OrderFilled(
        client_order_id="yq-n-1",
        account="main",
        broker_order_id="0000001",
        market=Market.KRX,
        ticker=ticker,
        side=Side.BUY,
        fill_quantity=quantity,
        fill_price=Decimal(70_000),
        cumulative_quantity=quantity,
        average_price=Decimal(70_000),
        remaining_quantity=0,
    )


async def pending(client: aioredis.Redis, stream: str, destination: str = "phone") -> int:
    summary = await client.xpending(stream, keys.notifier_group(destination))
    return int(summary["pending"])


async def test_a_fill_becomes_one_telegram_message_and_the_status_says_delivered(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    async with Running(redis_client, settings_for(telegram)):
        await publish(redis_client, keys.EXECUTIONS, fill())
        await until(lambda: telegram.received)
        await until(lambda: _no_pending(redis_client))
    [message] = telegram.received
    assert message["chat_id"] == "42"
    text = str(message["text"])
    assert "005930" in text
    assert "₩70,000" in text
    assert telegram.paths == [f"/bot{TOKEN}/sendMessage"]
    status = await redis_client.hgetall(keys.notify_status("phone"))
    assert status[b"ok"] == b"1"
    assert TOKEN.encode() not in b"".join(as_bytes(value) for value in status.values())
    assert await pending(redis_client, keys.EXECUTIONS) == 0


async def test_a_429_with_retry_after_is_honoured_and_the_message_still_arrives_once(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    telegram.script = [(429, b'{"ok": false, "error_code": 429, "parameters": {"retry_after": 0}}')]
    async with Running(redis_client, settings_for(telegram)):
        await publish(redis_client, keys.EXECUTIONS, fill())
        await until(lambda: telegram.received)
        await until(lambda: _no_pending(redis_client))
    assert len(telegram.received) == 1
    assert len(telegram.paths) == 2  # the refused attempt, then the delivered one
    status = await redis_client.hgetall(keys.notify_status("phone"))
    assert status[b"failures"] == b"1"
    assert status[b"delivered"] == b"1"


async def test_after_a_crash_before_the_ack_nothing_is_sent_twice(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    settings = settings_for(telegram)
    async with Running(redis_client, settings):
        pass  # creates the groups
    entry = await publish(redis_client, keys.EXECUTIONS, fill())
    # The earlier process read it and delivered it (its progress says so), then died before XACK.
    await redis_client.xreadgroup(keys.notifier_group("phone"), "notifier", {keys.EXECUTIONS: ">"})
    await redis_client.hset(keys.notify_progress("phone"), keys.EXECUTIONS, entry)
    assert await pending(redis_client, keys.EXECUTIONS) == 1
    async with Running(redis_client, settings):
        await until(lambda: _no_pending(redis_client))
    assert telegram.received == []


async def test_only_the_denial_reasons_asked_for_are_sent(redis_client: aioredis.Redis, telegram: FakeTelegram) -> None:
    async with Running(redis_client, settings_for(telegram, deny_reasons=["HALTED"])):
        for code in ("STALE", "HALTED"):
            denied = SignalDenied(
                signal_id=f"s-{code}", strategy="swing", ticker="005930", reason_code=code, reason=f"{code} reason"
            )
            await publish(redis_client, keys.DECISIONS, denied)
        await until(lambda: telegram.received)
        await until(lambda: _no_pending(redis_client))
    [message] = telegram.received
    assert "HALTED" in str(message["text"])
    assert "STALE" not in str(message["text"])


async def test_a_rejection_names_the_ticker_side_and_quantity_of_the_order_it_refused(
    redis_client: aioredis.Redis, telegram: FakeTelegram
) -> None:
    order = SubmitOrder(
        client_order_id="yq-n-r",
        account="main",
        market=Market.KRX,
        ticker="035420",
        side=Side.BUY,
        quantity=20,
        strategy="demo",
    )
    await create_order(redis_client, order, maxlen=1000)
    async with Running(redis_client, settings_for(telegram)):
        refused = OrderRejected(client_order_id="yq-n-r", account="main", reason_code="APBK0952", reason="no cash")
        await publish(redis_client, keys.EXECUTIONS, refused)
        await until(lambda: telegram.received)
    [message] = telegram.received
    assert str(message["text"]).startswith("❌ Rejected by the broker: BUY KRX:035420 20 · yq-n-r · main [demo]")


async def _no_pending(client: aioredis.Redis) -> bool:
    counts = [await pending(client, stream) for stream in (keys.EXECUTIONS, keys.DECISIONS)]
    return sum(counts) == 0
