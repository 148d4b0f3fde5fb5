"""``YQ_HEARTBEAT_FILE``: touched after each heartbeat Valkey took, never when it did not (the
notifier's container health check reads its age)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from yquant import keys
from yquant.runtime import HEARTBEAT_FILE_ENV, heartbeat_loop


async def until(probe: object, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout_s:.0f} s")
        await asyncio.sleep(0.02)


async def test_the_file_is_touched_once_valkey_holds_the_heartbeat(
    redis_client: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    beat = tmp_path / "heartbeat"
    monkeypatch.setenv(HEARTBEAT_FILE_ENV, str(beat))
    stop = asyncio.Event()
    task = asyncio.create_task(heartbeat_loop(redis_client, "notifier", "hb-test", stop))
    try:
        await until(beat.exists, "the heartbeat file")
        assert await redis_client.exists(keys.heartbeat("notifier", "hb-test"))
    finally:
        stop.set()
        await task


async def test_the_file_is_not_touched_while_valkey_refuses_the_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    beat = tmp_path / "heartbeat"
    monkeypatch.setenv(HEARTBEAT_FILE_ENV, str(beat))
    client = aioredis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING)
    task = asyncio.create_task(heartbeat_loop(client, "notifier", "hb-test", stop))
    try:
        await until(lambda: "heartbeat failed" in caplog.text, "a failed heartbeat")
        assert not beat.exists()
    finally:
        stop.set()
        await task
        await client.aclose()
