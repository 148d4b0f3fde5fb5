"""Requests no HTTP client library would send, straight into the ASGI app: still never a 5xx.

Servers and proxies normally clean these up; the webhook must not depend on it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from tests.integration.webhook.conftest import SECRET, configure, strategy_alert
from webhook.app import create_app
from yquant import keys, valkey
from yquant.settings import Settings


async def call(
    app: Starlette,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    client: tuple[str, int] | None = ("52.89.214.238", 443),
    path: str = "/webhook",
    disconnect: bool = False,
) -> tuple[int, bytes]:
    """One request through the ASGI interface; the status and the body of the answer."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": client,
        "server": ("127.0.0.1", 8080),
    }
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks or [b""])
    ]
    if disconnect:
        messages[-1]["more_body"] = True
        messages.append({"type": "http.disconnect"})
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return int(start["status"]), body


async def appended_count(client: aioredis.Redis) -> int:
    """How many signals the webhook has appended (a coroutine, as ``asyncio.Runner.run`` takes)."""
    return await client.xlen(keys.SIGNALS_WEBHOOK)


@pytest.fixture
def app(settings: Settings, redis_client: aioredis.Redis) -> Starlette:
    return create_app(configure(settings, rate_limit_per_min=0, rejections_per_min=0), redis_client)


@pytest.mark.parametrize(
    ("length", "status"),
    [
        (b"\xb2", 400),  # "²" is a digit to str.isdigit() but not to int()
        (b"9" * 5000, 413),  # past Python's int-from-string digit limit
        (b"-1", 400),
        (b"", 400),
        (b"4097", 413),
    ],
)
async def test_odd_content_length(app: Starlette, redis_client: aioredis.Redis, length: bytes, status: int) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", length)]
    assert (await call(app, headers, [b"{}"]))[0] == status
    assert await redis_client.xlen(keys.SIGNALS_WEBHOOK) == 0


async def test_alert_in_many_small_chunks_is_accepted(app: Starlette, redis_client: aioredis.Redis) -> None:
    body, _ = strategy_alert()
    chunks = [body.encode()[index : index + 7] for index in range(0, len(body.encode()), 7)]
    status, answer = await call(app, [(b"content-type", b"text/plain")], chunks)
    assert (status, json.loads(answer)["status"]) == (200, "accepted")
    assert await redis_client.xlen(keys.SIGNALS_WEBHOOK) == 1


async def test_client_gone_mid_body(app: Starlette, redis_client: aioredis.Redis) -> None:
    body, _ = strategy_alert()
    status, _ = await call(app, [(b"content-type", b"application/json")], [body.encode()[:40]], disconnect=True)
    assert status == 400
    assert await redis_client.xlen(keys.SIGNALS_WEBHOOK) == 0


async def test_no_client_address_and_deep_nesting(app: Starlette, redis_client: aioredis.Redis) -> None:
    deep = {"secret": SECRET, "strategy": "demo", "ticker": "005930", "action": "buy", "meta": {"x": [[[[[[[[1]]]]]]]]}}
    status, _ = await call(app, [(b"content-type", b"application/json")], [json.dumps(deep).encode()], client=None)
    assert status == 200
    too_deep = b'{"secret": "test-secret", "meta": ' + b"[" * 1500 + b"]" * 1500 + b"}"
    assert (await call(app, [], [too_deep]))[0] in {413, 422}


header_names = st.sampled_from(
    [b"content-type", b"content-length", b"content-encoding", b"x-forwarded-for", b"x-ssl-client-s-dn", b"x-other"]
)
header_values = st.binary(max_size=60).filter(lambda value: b"\r" not in value and b"\n" not in value)


@pytest.fixture
def raw_harness(settings: Settings) -> Iterator[tuple[asyncio.Runner, Starlette, aioredis.Redis]]:
    runner = asyncio.Runner()
    client = valkey.connect(settings.valkey)
    application = create_app(configure(settings, rate_limit_per_min=0, rejections_per_min=0), client)
    yield runner, application, client
    runner.run(client.aclose())
    runner.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    headers=st.lists(st.tuples(header_names, header_values), max_size=6),
    chunks=st.lists(st.binary(max_size=1500), max_size=4),
    client=st.none() | st.tuples(st.sampled_from(["52.89.214.238", "::1", "not-an-ip", ""]), st.integers(0, 65535)),
    path=st.sampled_from(["/webhook", f"/webhook/{SECRET}", "/webhook/x"]),
)
def test_raw_headers_and_chunks_never_cause_a_5xx_or_an_append(
    raw_harness: tuple[asyncio.Runner, Starlette, aioredis.Redis],
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    client: tuple[str, int] | None,
    path: str,
) -> None:
    runner, application, valkey_client = raw_harness
    before = runner.run(appended_count(valkey_client))
    status, answer = runner.run(call(application, headers, chunks, client, path))
    assert status < 500, answer
    assert status != 200  # random bytes are never a complete, authentic alert
    assert runner.run(appended_count(valkey_client)) == before
