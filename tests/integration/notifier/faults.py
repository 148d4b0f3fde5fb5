"""A notifier life that dies at a chosen point of its conversation with Valkey.

``Fault`` names the point: the first packet the notifier sends to Valkey whose commands match,
and whether it dies before sending it (``before``), after sending it with no reply read
(``unanswered``: Valkey ran it, the notifier never learnt so), or once every reply of it was read
(``answered``). A transaction is one packet (MULTI, its commands and EXEC are sent together), so
``before`` is a death before EXEC and ``answered`` one right after it.

From the moment that packet is reached nothing else leaves the dying life: every later command to
Valkey (on any of its connections) and every HTTP request it starts to a chat service waits
forever, as if the process were gone (for ``answered``, the packet's own replies are still read).
``DyingNotifier`` then ends it for good: its tasks cancelled, its connections closed, and it waits
until Valkey no longer lists any of them (a dead process's blocked read takes no entry meant for
the next one). The fault lives in the test's own connection and transport classes; the notifier
runs unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import httpx
import redis.asyncio as aioredis
from redis.typing import EncodableT

from notifier.service import Notifier
from tests.integration.notifier.test_notifier import QUIET, groups_exist, until
from yquant.settings import NotifierSettings

Command = tuple[str, ...]
Point = Literal["before", "unanswered", "answered"]


def command_text(args: tuple[EncodableT, ...]) -> Command:
    return tuple(a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in args)


@dataclass
class Fault:
    """Where the notifier dies: at the first packet to Valkey for which ``matches`` holds."""

    matches: Callable[[list[Command]], bool]
    point: Point
    tripped: asyncio.Event = field(default_factory=asyncio.Event)  # the packet was reached
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # ...and, for "answered", its replies read
    dead: bool = False

    async def hold(self) -> None:
        """What a dead process does: nothing, until it is ended."""
        await asyncio.Event().wait()

    async def ended(self) -> None:
        """The dying life reached its point (and read the replies, if it dies after them)."""
        await until(self.tripped.is_set)
        if self.point == "answered":
            await until(self.answered.is_set)


def sends(names: set[str], key: str) -> Callable[[list[Command]], bool]:
    """A packet that carries one of the commands ``names`` on ``key`` (e.g. the SET of a claim inside
    a MULTI)."""
    return lambda commands: any(len(c) > 1 and c[0].upper() in names and c[1] == key for c in commands)


def _connection_class(fault: Fault) -> type[aioredis.Connection]:
    class DyingConnection(aioredis.Connection):
        """A connection that sees each packet's commands before they leave and stops at the fault."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.queued: list[Command] = []
            self.replies_left = 0  # replies of the fatal packet still to read ("answered")
            self.mute = False  # the fatal packet's replies are never read ("unanswered")

        def pack_command(self, *args: EncodableT) -> list[bytes]:
            self.queued.append(command_text(args))  # pack_commands packs a pipeline through here too
            return super().pack_command(*args)

        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            commands, self.queued = self.queued, []
            if fault.dead:
                await self._die()
            if not fault.matches(commands):
                await super().send_packed_command(command, check_health)
                return
            fault.dead = True
            fault.tripped.set()
            if fault.point == "before":
                await self._die()
            await super().send_packed_command(command, check_health=False)
            if fault.point == "unanswered":
                self.mute = True
            else:
                self.replies_left = len(commands)

        async def read_response(self, *args: Any, **kwargs: Any) -> Any:
            if self.mute:
                await self._die()
            reply = await super().read_response(*args, **kwargs)
            if self.replies_left:
                self.replies_left -= 1
                if not self.replies_left:
                    fault.answered.set()
            return reply

        async def _die(self) -> None:
            try:
                await fault.hold()
            finally:
                await self.disconnect(nowait=True)

    return DyingConnection


class HeldTransport(httpx.AsyncBaseTransport):
    """The chat services' HTTP as usual, until the fault: from then on no request leaves."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.fault.dead:
            await self.fault.hold()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def dying_client(url: str, fault: Fault, name: str) -> aioredis.Redis:
    """A Valkey client whose connections (each named ``name``) stop at ``fault``."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        connection_class=_connection_class(fault),
        max_connections=16,
        timeout=10,
        client_name=name,
        health_check_interval=0,  # a PING of its own would be a packet too
    )
    return aioredis.Redis.from_pool(pool)


async def end(admin: aioredis.Redis, client: aioredis.Redis, name: str, *tasks: asyncio.Task[Any]) -> None:
    """End a dead life for good: its tasks cancelled, its connections closed, and Valkey no longer
    listing any connection named ``name`` (so no blocked read of it takes an entry)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()

    async def gone() -> bool:
        clients: Any = await admin.client_list()
        return not any(c.get("name") == name for c in clients)

    await until(gone)


class DyingNotifier:
    """One notifier life on its own Valkey connections (named ``name``) that dies at ``fault``.

    ``admin`` is the test's own client: it waits for the groups on entry and, on exit, until
    Valkey has closed every connection of this life.
    """

    def __init__(
        self,
        url: str,
        admin: aioredis.Redis,
        settings: NotifierSettings,
        fault: Fault,
        clock: Callable[[], datetime] = lambda: QUIET,
        name: str = "dying-notifier",
    ) -> None:
        self.admin, self.fault, self.name = admin, fault, name
        self.client = dying_client(url, fault, name)
        self.http = httpx.AsyncClient(timeout=5, transport=HeldTransport(fault))
        self.notifier = Notifier(self.client, settings, self.http, clock=clock)
        self.notifier.block_ms = 50
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DyingNotifier:
        self.task = asyncio.create_task(self.notifier.run(asyncio.Event()))
        await until(lambda: groups_exist(self.admin))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if exc[0] is None:
            await self.fault.ended()
        await end(self.admin, self.client, self.name, self.task)
        await self.http.aclose()
