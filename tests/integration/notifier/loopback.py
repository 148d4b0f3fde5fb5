"""Loopback HTTP stand-ins for the chat services, and a thread that serves them to sync tests.

``FakeTelegram`` answers ``POST /bot<token>/sendMessage`` from its script, then 200, and records
each body it took.

``FakeDiscord`` answers like a Discord channel webhook: ``POST /api[/v<N>]/webhooks/<id>/<token>``
with ``{"content": ...}`` gets 204 and no body; a wrong id or token 404, an empty or too long
content 400. A scripted 429 carries ``retry_after`` in the JSON body and a ``Retry-After``
header, in the units of the API version the URL asks for: seconds from v8 on, milliseconds for
v6, which is what a URL without a version gets (the one Discord's channel settings hand out).
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

WEBHOOK_ID = "1180000000000000001"
WEBHOOK_TOKEN = "discord-webhook-secret-token"
DEFAULT_API_VERSION = 6  # what Discord serves for /api/... without /v<N>/
TOKEN = "123456:secret-bot-token"  # the bot token the Telegram stand-in is reached with


@dataclass(frozen=True)
class RateLimited:
    """A scripted 429: wait ``retry_after_s`` (the fake writes it in the version's units)."""

    retry_after_s: float
    in_body: bool = True
    in_header: bool = True


@dataclass(frozen=True)
class Answer:
    """A scripted answer as is: status, body and headers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    path: str
    at: float  # time.monotonic() when it arrived
    body: bytes


@dataclass
class FakeDiscord:
    """Records every request, answers from ``script`` (``RateLimited`` or ``Answer``), then as Discord does."""

    script: list[RateLimited | Answer] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)  # the bodies Discord took (204)
    port: int = 0

    def url(self, version: int | None = None) -> str:
        """The webhook's URL, as copied from Discord (no version) or pinned to one."""
        api = "api" if version is None else f"api/v{version}"
        return f"http://127.0.0.1:{self.port}/{api}/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"

    @property
    def contents(self) -> list[str]:
        return [str(body.get("content", "")) for body in self.received]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                path = lines[0].split(" ")[1]
                self.requests.append(Request(path, time.monotonic(), body))
                status, answer, extra = self._answer(path, body)
                out = [f"HTTP/1.1 {status} X"]
                if status != 204:  # a 204 has neither body nor length, as Discord sends it
                    out += ["content-type: application/json", f"content-length: {len(answer)}"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        finally:
            writer.close()

    def _answer(self, path: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        match = re.fullmatch(r"/api(?:/v(\d+))?/webhooks/([^/?]+)/([^/?]+)(\?.*)?", path)
        if match is None or (match[2], match[3]) != (WEBHOOK_ID, WEBHOOK_TOKEN):
            return 404, b'{"message": "Unknown Webhook", "code": 10015}', {}
        version = int(match[1]) if match[1] else DEFAULT_API_VERSION
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Answer):
                return step.status, step.body, step.headers
            return self._rate_limited(step, version)
        try:
            sent = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 400, b'{"message": "Cannot send an empty message", "code": 50006}', {}
        content = sent.get("content") if isinstance(sent, dict) else None
        if not isinstance(content, str) or not content.strip():
            return 400, b'{"message": "Cannot send an empty message", "code": 50006}', {}
        if len(content) > 2000:
            return 400, b'{"content": ["Must be 2000 or fewer in length."]}', {}
        self.received.append(sent)
        return 204, b"", {}

    @staticmethod
    def _rate_limited(step: RateLimited, version: int) -> tuple[int, bytes, dict[str, str]]:
        seconds = version >= 8
        value: float = step.retry_after_s if seconds else math.ceil(step.retry_after_s * 1000)
        body: dict[str, object] = {"message": "You are being rate limited.", "global": False}
        if step.in_body:
            body["retry_after"] = value
        headers = {"x-ratelimit-scope": "user"}
        if step.in_header:  # a whole number: seconds rounded up (milliseconds before v8)
            headers["retry-after"] = str(math.ceil(step.retry_after_s) if seconds else value)
        return 429, orjson.dumps(body), headers


_Stand = TypeVar("_Stand", "FakeDiscord", "FakeTelegram")


async def _serve(fake: _Stand) -> AsyncIterator[_Stand]:
    """A stand-in on a free loopback port, for as long as the caller iterates."""
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    yield fake
    server.close()
    await server.wait_closed()


def start_discord() -> AsyncIterator[FakeDiscord]:
    """The Discord stand-in (the ``discord`` fixture)."""
    return _serve(FakeDiscord())


@dataclass
class FakeTelegram:
    """Loopback HTTP server: records each POST body, answers from ``script`` then 200."""

    script: list[tuple[int, bytes]] = field(default_factory=list)
    received: list[dict[str, object]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                length = next(
                    (
                        int(v)
                        for k, _, v in (line.partition(":") for line in lines[1:])
                        if k.lower() == "content-length"
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                self.paths.append(lines[0].split(" ")[1])
                status, answer = self.script.pop(0) if self.script else (200, b'{"ok": true}')
                if status == 200:
                    self.received.append(orjson.loads(body))
                head_out = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(answer)}"
                writer.write(head_out.encode() + b"\r\n\r\n" + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        finally:
            writer.close()


def start_telegram() -> AsyncIterator[FakeTelegram]:
    """The Telegram stand-in (the ``telegram`` fixture)."""
    return _serve(FakeTelegram())


class ChatServices:
    """Both stand-ins served from a thread of their own, for tests that are not async (end to end).

    The lists they record are only appended to, so the test's thread may read them while they grow.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chat-services", daemon=True)
        self._gens: list[AsyncIterator[Any]] = []
        self.telegram: FakeTelegram
        self.discord: FakeDiscord

    def _next(self, gen: AsyncIterator[Any]) -> Any:
        async def step() -> Any:
            try:
                return await anext(gen)
            except StopAsyncIteration:
                return None

        return asyncio.run_coroutine_threadsafe(step(), self.loop).result(timeout=10)

    def __enter__(self) -> ChatServices:
        self.thread.start()
        self._gens = [start_telegram(), start_discord()]
        self.telegram, self.discord = (self._next(gen) for gen in self._gens)
        return self

    def __exit__(self, *exc: object) -> None:
        for gen in self._gens:
            self._next(gen)  # past the yield: the server closes
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
