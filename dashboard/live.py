"""Live updates: one XREAD loop per process fanned out to every browser by Server-Sent Events.

The loop reads the executions, decisions and signals streams (plain XREAD, no consumer group:
the dashboard only watches) on one Valkey connection, whatever the number of browsers.

Each SSE event's id is the browser's position in all three streams (``<exec>,<dec>,<sig>``).
A browser that reconnects sends it back as ``Last-Event-ID`` (a page passes the position it
was rendered at as ``?from=``); the server first replays what was appended since (XRANGE,
exclusive), then joins the live fan-out, skipping what the replay already sent: nothing is
missed and nothing is sent twice. A browser too far behind, or too slow to keep up, is told
to reload the page.

While the loop cannot read Valkey every browser is told so (``event: status``, ``{"valkey":
"down"}``) and told again once it reads again: a page that has stopped updating says it is
stale instead of looking current. The keepalive is the same status event, so a page that hears
nothing for a few keepalives knows its connection is dead even when no error reached it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from yquant import keys

logger = logging.getLogger(__name__)

STREAMS = (
    ("executions", keys.EXECUTIONS),
    ("progress", keys.PROGRESS),
    ("decisions", keys.DECISIONS),
    ("signals", keys.SIGNALS_WEBHOOK),
)
NAMES = tuple(name for name, _ in STREAMS)
ID_PATTERN = re.compile(r"^\d{1,20}-\d{1,20}$")
QUEUE_SIZE = 512
REPLAY_LIMIT = 500
KEEPALIVE_S = 15.0
BLOCK_MS = 1000
SUMMARY_FIELDS = (
    "client_order_id",
    "account",
    "ticker",
    "market",
    "side",
    "signal_id",
    "strategy",
    "reason_code",
    "reason",
    "fill_quantity",
    "fill_price",
    "final_state",
)


def id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def parse_cursor(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    parts = text.strip().split(",")
    if len(parts) != len(NAMES) or not all(ID_PATTERN.match(p) for p in parts):
        return None
    return dict(zip(NAMES, parts, strict=True))


def cursor_text(cursor: dict[str, str]) -> str:
    return ",".join(cursor[name] for name in NAMES)


@dataclass(frozen=True)
class LiveEvent:
    stream: str
    entry_id: str
    data: bytes  # the JSON summary sent to browsers


STATUS = "status"  # the stream name of a status event: Valkey reachable or not, no entry id


def status_event(valkey_up: bool) -> LiveEvent:
    return LiveEvent(STATUS, "", orjson.dumps({"valkey": "up" if valkey_up else "down"}))


def summarise(stream: str, entry_id: str, fields: dict[Any, Any]) -> LiveEvent:
    """A small JSON of an entry: its type and the ids a page needs to decide what to refresh."""
    raw_type = fields.get(b"type", fields.get("type", b""))
    summary: dict[str, Any] = {"stream": stream, "id": entry_id, "type": keys.text(raw_type)}
    try:
        payload = orjson.loads(fields.get(b"data", fields.get("data", b"{}")))
    except orjson.JSONDecodeError:
        payload = {}
    if isinstance(payload, dict):
        signal = payload.get("signal")
        source = {**signal, **payload} if isinstance(signal, dict) else payload
        summary.update({name: source[name] for name in SUMMARY_FIELDS if name in source})
    return LiveEvent(stream, entry_id, orjson.dumps(summary))


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[LiveEvent | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False


class Broadcaster:
    def __init__(self, client: aioredis.Redis, on_count: Any = None) -> None:
        self.client = client
        self.cursor: dict[str, str] = {}
        self.subscribers: set[Subscriber] = set()
        self.on_count = on_count  # called with the number of subscribers
        self.events = 0
        self.valkey_up = True  # whether the last read of the streams succeeded
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Lock()
        self._stopping = False

    def cursor_text(self) -> str:
        return cursor_text(self.cursor) if self.cursor else ""

    async def ensure_started(self) -> None:
        if self._task is not None or self._stopping:
            return
        async with self._started:
            if self._task is not None:
                return
            self.cursor = await self.latest_ids()
            self._task = asyncio.create_task(self._run(), name="dashboard-live")

    async def latest_ids(self) -> dict[str, str]:
        async with self.client.pipeline(transaction=False) as pipe:
            for _, stream in STREAMS:
                pipe.xrevrange(stream, count=1)
            rows = await pipe.execute()
        return {name: keys.text(r[0][0]) if r else "0-0" for (name, _), r in zip(STREAMS, rows, strict=True)}

    async def _run(self) -> None:
        backoff = 0.2
        names = dict((stream, name) for name, stream in STREAMS)
        while not self._stopping:
            try:
                response: Any = await self.client.xread(
                    {stream: self.cursor[name] for name, stream in STREAMS}, count=500, block=BLOCK_MS
                )
                backoff = 0.2
            except (RedisError, OSError, KeyError, ValueError) as exc:
                logger.warning("live stream read failed; retrying", extra={"error": str(exc)})
                self._set_valkey_up(False)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._set_valkey_up(True)
            for stream, entries in response or []:
                name = names[keys.text(stream)]
                for entry_id, fields in entries:
                    event = summarise(name, keys.text(entry_id), fields)
                    self.cursor[name] = event.entry_id
                    self._fan_out(event)

    def _set_valkey_up(self, up: bool) -> None:
        if up != self.valkey_up:
            self.valkey_up = up
            self._fan_out(status_event(up))

    def _fan_out(self, event: LiveEvent) -> None:
        if event.stream != STATUS:
            self.events += 1
        for subscriber in self.subscribers:
            if subscriber.overflowed:
                continue
            try:
                subscriber.queue.put_nowait(event)
            except asyncio.QueueFull:
                subscriber.overflowed = True  # it reconnects and catches up from its last id

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber()
        self.subscribers.add(subscriber)
        self._count()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        self._count()

    def _count(self) -> None:
        if self.on_count is not None:
            self.on_count(len(self.subscribers))

    async def replay(self, since: dict[str, str]) -> list[LiveEvent] | None:
        """Entries appended after ``since`` (None when there are too many: reload instead)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for name, stream in STREAMS:
                pipe.xrange(stream, min="(" + since[name], max="+", count=REPLAY_LIMIT + 1)
            rows = await pipe.execute()
        events: list[LiveEvent] = []
        for (name, _), entries in zip(STREAMS, rows, strict=True):
            if len(entries) > REPLAY_LIMIT:
                return None
            events.extend(summarise(name, keys.text(i), f) for i, f in entries)
        events.sort(key=lambda e: id_key(e.entry_id))
        return events

    async def stop(self) -> None:
        self._stopping = True
        for subscriber in list(self.subscribers):
            try:
                subscriber.queue.put_nowait(None)
            except asyncio.QueueFull:
                subscriber.overflowed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


def frame(event: LiveEvent, cursor: dict[str, str]) -> bytes:
    return b"id: " + cursor_text(cursor).encode() + b"\ndata: " + event.data + b"\n\n"


def status_frame(event: LiveEvent) -> bytes:
    return b"event: status\ndata: " + event.data + b"\n\n"  # no id: the browser's position stays


RELOAD = b'event: reload\ndata: {"reason": "too far behind"}\n\n'


async def event_stream(broadcaster: Broadcaster, resume_from: str | None) -> AsyncGenerator[bytes, None]:
    """The SSE body for one browser."""
    try:
        await broadcaster.ensure_started()
    except (RedisError, OSError):  # the first browser since start, and Valkey is down
        yield b"retry: 2000\n" + status_frame(status_event(False))
        return
    subscriber = broadcaster.subscribe()
    try:
        cursor = parse_cursor(resume_from) or dict(broadcaster.cursor)
        yield b"retry: 2000\n: connected\n\n"
        try:
            backlog = await broadcaster.replay(cursor)
        except (RedisError, OSError):
            # Without the replay the browser would miss entries: it hears why, then reconnects.
            yield status_frame(status_event(False))
            return
        if backlog is None:
            yield RELOAD
            return
        yield status_frame(status_event(broadcaster.valkey_up))
        for event in backlog:
            cursor[event.stream] = event.entry_id
            yield frame(event, cursor)
        while True:
            try:
                item = await asyncio.wait_for(subscriber.queue.get(), timeout=KEEPALIVE_S)
            except TimeoutError:
                yield status_frame(status_event(broadcaster.valkey_up))  # the keepalive
                continue
            if item is None:
                return
            if item.stream == STATUS:
                yield status_frame(item)
                continue
            if id_key(item.entry_id) > id_key(cursor[item.stream]):  # else the replay sent it
                cursor[item.stream] = item.entry_id
                yield frame(item, cursor)
            if subscriber.overflowed and subscriber.queue.empty():
                return  # the browser reconnects with its last id and replays what it missed
    finally:
        broadcaster.unsubscribe(subscriber)
