"""Live updates: one XREAD loop fans out to every browser; Last-Event-ID resumes without a gap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from dashboard.live import Broadcaster, event_stream, parse_cursor
from yquant import keys, valkey
from yquant.embedded import EmbeddedValkey
from yquant.settings import ValkeySettings


async def next_event(stream: AsyncIterator[bytes]) -> dict[str, object]:
    """The next stream entry, past the retry line and any status event."""
    while True:
        chunk = await asyncio.wait_for(anext(stream), timeout=5)
        if b"data: " in chunk and not chunk.startswith(b"event: status"):
            lines = dict(line.split(": ", 1) for line in chunk.decode().strip().splitlines() if ": " in line)
            return {**orjson.loads(lines["data"]), "event_id": lines["id"]}


async def test_two_browsers_share_one_reader_and_both_see_a_decision(redis_client: aioredis.Redis) -> None:
    broadcaster = Broadcaster(redis_client)
    first, second = event_stream(broadcaster, None), event_stream(broadcaster, None)
    try:
        assert (await anext(first)).startswith(b"retry:")
        assert (await anext(second)).startswith(b"retry:")
        await redis_client.xadd(
            keys.DECISIONS, {"type": "SignalDenied", "data": b'{"signal_id": "s1", "ticker": "005930"}'}
        )
        one, two = await next_event(first), await next_event(second)
        assert one["signal_id"] == two["signal_id"] == "s1"
        assert one["stream"] == "decisions"
        assert len(broadcaster.subscribers) == 2
    finally:
        await first.aclose()
        await second.aclose()
        await broadcaster.stop()
    assert not broadcaster.subscribers


async def test_reconnect_with_last_event_id_replays_what_was_missed_once(redis_client: aioredis.Redis) -> None:
    broadcaster = Broadcaster(redis_client)
    stream = event_stream(broadcaster, None)
    await anext(stream)
    await redis_client.xadd(keys.PROGRESS, {"type": "OrderAccepted", "data": b'{"client_order_id": "a"}'})
    seen = await next_event(stream)
    await stream.aclose()  # the browser goes away ...
    for name in ("b", "c"):  # ... and misses two events
        await redis_client.xadd(
            keys.EXECUTIONS, {"type": "OrderFilled", "data": orjson.dumps({"client_order_id": name})}
        )
    await redis_client.xadd(
        keys.SIGNALS_WEBHOOK, {"type": "SignalReceived", "data": b'{"signal": {"signal_id": "s9"}}'}
    )
    resumed = event_stream(broadcaster, str(seen["event_id"]))
    try:
        await anext(resumed)
        replayed = [await next_event(resumed) for _ in range(3)]
        # Each stream replays in its own order; across streams entries of the same millisecond
        # have no order to keep, so only the per-stream order is the contract.
        orders = [e["client_order_id"] for e in replayed if "client_order_id" in e]
        signals = [e["signal_id"] for e in replayed if "signal_id" in e]
        assert (orders, signals) == (["b", "c"], ["s9"])
        await redis_client.xadd(keys.EXECUTIONS, {"type": "OrderFilled", "data": b'{"client_order_id": "d"}'})
        live = await next_event(resumed)
        assert live["client_order_id"] == "d"  # the live loop did not send b or c a second time
        cursor = parse_cursor(str(live["event_id"]))
        assert cursor is not None
        assert cursor["signals"] != "0-0"
    finally:
        await resumed.aclose()
        await broadcaster.stop()


async def test_a_browser_too_far_behind_is_told_to_reload(redis_client: aioredis.Redis) -> None:
    broadcaster = Broadcaster(redis_client)
    start = "0-0,0-0,0-0,0-0"
    async with redis_client.pipeline(transaction=False) as pipe:
        for index in range(600):
            pipe.xadd(keys.EXECUTIONS, {"type": "AccountSynced", "data": orjson.dumps({"account": str(index)})})
        await pipe.execute()
    stream = event_stream(broadcaster, start)
    try:
        await anext(stream)
        assert (await anext(stream)).startswith(b"event: reload")
    finally:
        await stream.aclose()
        await broadcaster.stop()


def test_a_malformed_last_event_id_is_ignored() -> None:
    assert parse_cursor("1-0,2-0,3-4") is None  # a cursor from before the progress stream: none
    assert parse_cursor("1-0,2-0,5-0,x") is None
    assert parse_cursor("1-0,2-0,5-0,3-4") == {
        "executions": "1-0",
        "progress": "2-0",
        "decisions": "5-0",
        "signals": "3-4",
    }


async def next_status(stream: AsyncIterator[bytes]) -> str:
    """The next status event's word on Valkey ("up" or "down"), past any entry or keepalive."""
    while True:
        chunk = await asyncio.wait_for(anext(stream), timeout=15)
        if chunk.startswith(b"event: status"):
            data = chunk.decode().split("data: ", 1)[1]
            return str(orjson.loads(data)["valkey"])


async def test_every_browser_hears_when_valkey_goes_away_and_when_it_is_back(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "valkey", appendonly=False)
    server.start()
    client = valkey.connect(ValkeySettings(url=server.url))
    broadcaster = Broadcaster(client)
    stream = event_stream(broadcaster, None)
    try:
        assert (await anext(stream)).startswith(b"retry:")
        assert await next_status(stream) == "up"
        server.stop()
        assert await next_status(stream) == "down"
        assert not broadcaster.valkey_up
        server.start()  # the same port: the loop's next read reaches it
        assert await next_status(stream) == "up"
        await client.xadd(keys.DECISIONS, {"type": "SignalDenied", "data": b'{"signal_id": "after"}'})
        assert (await next_event(stream))["signal_id"] == "after"
    finally:
        await stream.aclose()
        await broadcaster.stop()
        await client.aclose()
        server.stop()


async def test_a_browser_that_connects_while_valkey_is_down_hears_so(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "valkey", appendonly=False)
    server.start()
    client = valkey.connect(ValkeySettings(url=server.url))
    server.stop()
    broadcaster = Broadcaster(client)
    try:
        chunks = [chunk async for chunk in event_stream(broadcaster, None)]
        assert b'event: status\ndata: {"valkey":"down"}' in b"".join(chunks)
    finally:
        await broadcaster.stop()
        await client.aclose()
