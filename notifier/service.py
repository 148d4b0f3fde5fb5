"""The notifier's loop: per destination, read its streams with its own consumer group, deliver,
then acknowledge.

Each destination has a consumer group of its own (``keys.notifier_group``) and a task of its own:
one that keeps failing (a Discord answering 5xx for hours) holds back its own entries, pending in
its group, and delays no other destination.

Exactly once across restarts: a destination's entry is acknowledged only after it took the message
that carries it, and after each delivered message the destination's progress (the last entry id per
stream it received) is written to Valkey. After a crash the unacknowledged entries are read again
and skipped up to that progress. What remains is the instant between a 200 and the progress write;
a crash there repeats at most that one message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from notifier import channels
from notifier.events import SOURCE_PREFIXES, Event, from_entry, render, wanted
from notifier.health import NOTICES_MAXLEN, HeartbeatWatch, notice_fields, watch_heartbeats
from notifier.summary import watch_closes
from yquant import keys
from yquant.messages import Signal, utcnow
from yquant.settings import NotifierSettings, NotifyDestination

logger = logging.getLogger(__name__)

STREAMS = keys.NOTIFIER_STREAMS
CONSUMER = "notifier"  # one instance: its pending entries are its own after a restart
ORDER_KINDS = {"OrderFilled", "OrderRejected", "OrderFailed", "OrderCancelled"}
ORDER_FIELDS = ("strategy", "market", "ticker", "side", "quantity")
PLACED_FIELDS = ("account", "market", "ticker", "side", "quantity")


def entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Notifier:
    def __init__(
        self,
        client: aioredis.Redis,
        settings: NotifierSettings,
        http: httpx.AsyncClient,
        batch: int = 128,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.clock = clock  # the wall clock the daily summaries fall due by
        self.settings = settings
        self.http = http
        self.batch = batch
        self.block_ms = 1000
        self.heartbeats = HeartbeatWatch(settings.heartbeat_missing_after_s)

    async def run(self, stop: asyncio.Event) -> None:
        for name in self.settings.destinations:
            await ensure_destination_groups(self.client, name)
        loops = [
            self._run_destination(name, destination, stop) for name, destination in self.settings.destinations.items()
        ]
        if loops:  # with no destination, nobody would read what the watch writes
            loops.append(watch_heartbeats(self.client, self.heartbeats, stop, self.settings.heartbeat_poll_s))
        if any("summary" in d.events for d in self.settings.destinations.values()):
            loops.append(watch_closes(self.client, self.settings, stop, self.clock))
        await asyncio.gather(*loops)

    async def _run_destination(self, name: str, destination: NotifyDestination, stop: asyncio.Event) -> None:
        group = keys.notifier_group(name)
        await self._drain_pending(name, destination, stop)
        while not stop.is_set():
            try:
                await self._count_trimmed(name)
                reply: Any = await self.client.xreadgroup(
                    group, CONSUMER, dict.fromkeys(STREAMS, ">"), count=self.batch, block=self.block_ms
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await ensure_destination_groups(self.client, name)
                continue
            if reply:
                await self.handle(name, destination, _flatten(reply), stop)

    async def _count_trimmed(self, name: str) -> None:
        """Entries trimmed off a stream before this destination's group read them, reported once.

        Just before a read, a group whose last delivered entry is older than the stream's first is
        about to step over what trimming removed. The group's read counter (entries-read: Valkey
        knows it from the group's first read at the stream's end, counts each entry it delivers,
        and counts again when a read steps over a gap) then says how many it never got: entries
        added, less entries read, less the entries still there. The notice, the total in the
        destination's status (the dashboard's system page) and the last delivered id it was told at
        (``keys.notify_trimmed``: a crash before the read that steps over does not tell it twice)
        are written in one transaction. A group whose counter is unknown (never at the stream's end
        yet) is not counted.
        """
        group = keys.notifier_group(name)
        async with self.client.pipeline(transaction=False) as pipe:
            for stream in STREAMS:
                pipe.xinfo_stream(stream)
                pipe.xinfo_groups(stream)
            pipe.hgetall(keys.notify_trimmed(name))
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        told = {keys.text(k): keys.text(v) for k, v in replies[-1].items()} if isinstance(replies[-1], dict) else {}
        found: dict[str, tuple[str, int]] = {}
        for i, stream in enumerate(STREAMS):
            info, groups = replies[2 * i], replies[2 * i + 1]
            if not isinstance(info, dict) or not isinstance(groups, list) or not info.get("first-entry"):
                continue
            ours = next((g for g in groups if keys.text(g.get("name", b"")) == group), None)
            if ours is None or ours.get("entries-read") is None:
                continue
            first, last = keys.text(info["first-entry"][0]), keys.text(ours["last-delivered-id"])
            if entry_key(last) >= entry_key(first) or told.get(stream) == last:
                continue
            lost = int(info["entries-added"]) - int(ours["entries-read"]) - int(info["length"])
            if lost > 0:
                found[stream] = (last, lost)
        for stream, (last, new) in found.items():
            fields: Any = notice_fields(
                "trimmed",
                f"⚠️ {new} entries of {stream} were trimmed before {name} read them: their notifications are lost",
                f"⚠️ {name}: {stream} 항목 {new}건이 읽기 전에 정리되어 알림이 유실되었습니다",
                {"destination": name, "stream": stream, "lost": new},
            )
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(keys.notify_trimmed(name), stream, last)
                pipe.hincrby(keys.notify_status(name), "trimmed", new)
                pipe.xadd(keys.NOTICES, fields, maxlen=NOTICES_MAXLEN, approximate=True)
                await pipe.execute()
            logger.error("entries trimmed before delivery", extra={"destination": name, "stream": stream, "lost": new})

    async def _drain_pending(self, name: str, destination: NotifyDestination, stop: asyncio.Event) -> None:
        """After a restart: what was read but not acknowledged, in order."""
        while not stop.is_set():
            reply: Any = await self.client.xreadgroup(
                keys.notifier_group(name), CONSUMER, dict.fromkeys(STREAMS, "0"), count=self.batch
            )
            entries = _flatten(reply)
            if not entries:
                return
            logger.info("delivering entries read before a restart", extra={"destination": name, "count": len(entries)})
            if not await self.handle(name, destination, entries, stop):
                return

    async def handle(
        self,
        name: str,
        destination: NotifyDestination,
        entries: list[tuple[str, str, dict[Any, Any]]],
        stop: asyncio.Event,
    ) -> bool:
        """Deliver the events of ``entries`` to one destination, then acknowledge them there; False if
        stopped first."""
        events: list[Event] = []
        for stream, entry_id, fields in entries:
            order = await self._order(fields)
            signal = await self._signal(fields)
            placed = await self._placed(fields) if signal is not None else []
            event = from_entry(stream, entry_id, fields, order.get("strategy", ""), order, signal, placed)
            if event is not None:
                events.append(event)
        if not await self._deliver_all(name, destination, events, stop):
            return False
        by_stream: dict[str, list[str]] = defaultdict(list)
        for stream, entry_id, _ in entries:
            by_stream[stream].append(entry_id)
        async with self.client.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, keys.notifier_group(name), *ids)
            await pipe.execute()
        return True

    async def _order(self, fields: dict[Any, Any]) -> dict[str, str]:
        """What the order record says of an order event's order (strategy, market, ticker, side,
        quantity): a refusal names only the order id, the trader wants to know what was refused."""
        if keys.text(fields.get(b"type", b"")) not in ORDER_KINDS:
            return {}
        try:
            cid = orjson.loads(fields.get(b"data", b"{}")).get("client_order_id")
        except (orjson.JSONDecodeError, AttributeError):
            return {}
        if not cid:
            return {}
        values: Any = await self.client.hmget(keys.order(str(cid)), ORDER_FIELDS)
        return {name: keys.text(v) for name, v in zip(ORDER_FIELDS, values, strict=True) if v}

    async def _signal(self, fields: dict[Any, Any]) -> Signal | None:
        """The signal of an accepted decision whose id says an exit or a schedule placed it (its
        record's source decides); None for the others, which cost no look-up."""
        if keys.text(fields.get(b"type", b"")) != "SignalAccepted":
            return None
        try:
            signal_id = str(orjson.loads(fields.get(b"data", b"{}")).get("signal_id") or "")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        if not signal_id.startswith(tuple(SOURCE_PREFIXES)):
            return None
        raw = await self.client.hget(keys.signal_record(signal_id), "signal")
        if not raw:
            return None
        try:
            return Signal.model_validate_json(raw)
        except ValidationError:
            return None

    async def _placed(self, fields: dict[Any, Any]) -> list[dict[str, str]]:
        """The records of the orders an accepted exit or schedule placed (side, quantity, account)."""
        try:
            ids = orjson.loads(fields.get(b"data", b"{}")).get("client_order_ids") or []
        except (orjson.JSONDecodeError, AttributeError):
            return []
        records: list[dict[str, str]] = []
        for cid in ids:
            values: Any = await self.client.hmget(keys.order(str(cid)), PLACED_FIELDS)
            record = {name: keys.text(v) for name, v in zip(PLACED_FIELDS, values, strict=True) if v}
            records.append({**record, "client_order_id": str(cid)})
        return records

    def _chunks(self, destination: NotifyDestination, events: list[Event]) -> list[list[Event]]:
        limit = channels.max_chars(destination) - 100
        chunks: list[list[Event]] = []
        current: list[Event] = []
        size = 0
        for event in events:
            length = len(event.text.get(self.settings.language) or event.text["en"]) + 1
            if current and (len(current) >= self.settings.max_events_per_message or size + length > limit):
                chunks.append(current)
                current, size = [], 0
            current.append(event)
            size += length
        if current:
            chunks.append(current)
        return chunks

    async def _deliver_all(
        self, name: str, destination: NotifyDestination, events: list[Event], stop: asyncio.Event
    ) -> bool:
        progress_raw: Any = await self.client.hgetall(keys.notify_progress(name))
        progress = {keys.text(k): entry_key(keys.text(v)) for k, v in progress_raw.items()}
        todo = [
            e
            for e in events
            if wanted(e, destination.events, destination.deny_reasons)
            and (e.stream not in progress or entry_key(e.entry_id) > progress[e.stream])
        ]
        for chunk in self._chunks(destination, todo):
            text = render(chunk, self.settings.language)
            payload: list[dict[str, object]] = [
                {"kind": e.kind, "stream": e.stream, "entry_id": e.entry_id, "text": e.text["en"], **e.data}
                for e in chunk
            ]
            delivered = await self._deliver(name, destination, text, payload, stop)
            if delivered is None:
                return False  # stopping: the entries stay pending and are delivered after the restart
            last: dict[FieldT, EncodableT] = {}
            for event in chunk:
                last[event.stream] = event.entry_id
            await self.client.hset(keys.notify_progress(name), mapping=last)
        return True

    async def _deliver(
        self,
        name: str,
        destination: NotifyDestination,
        text: str,
        payload: list[dict[str, object]],
        stop: asyncio.Event,
    ) -> bool | None:
        """True delivered, False given up (a permanent refusal), None stopped while retrying."""
        delay = 1.0
        attempt = 0
        while True:
            attempt += 1
            outcome = await channels.send(self.http, destination, text, payload)
            await self._record(name, outcome)
            if outcome.ok:
                return True
            if not outcome.retry or (self.settings.max_attempts and attempt >= self.settings.max_attempts):
                logger.error(
                    "notification not delivered; giving up",
                    extra={"destination": name, "error": outcome.error, "attempts": attempt},
                )
                return False
            wait = outcome.retry_after_s if outcome.retry_after_s is not None else delay
            wait = min(max(wait, 0.0), self.settings.retry_max_s)
            logger.warning(
                "notification delivery failed; retrying",
                extra={"destination": name, "error": outcome.error, "retry_in_s": wait},
            )
            delay = min(delay * 2, self.settings.retry_max_s)
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
                return None
            except TimeoutError:
                pass

    async def _record(self, name: str, outcome: channels.Outcome) -> None:
        """The destination's last attempt, for the dashboard's system page (keys.notify_status)."""
        now = str(time.time())
        fields: dict[FieldT, EncodableT] = {"ok": "1" if outcome.ok else "0", "at": now, "error": outcome.error}
        if outcome.ok:
            fields["last_ok_at"] = now
            fields["consecutive_failures"] = "0"
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(keys.notify_status(name), mapping=fields)
            pipe.hincrby(keys.notify_status(name), "delivered" if outcome.ok else "failures", 1)
            if not outcome.ok:
                pipe.hincrby(keys.notify_status(name), "consecutive_failures", 1)
            await pipe.execute()


def _flatten(reply: Any) -> list[tuple[str, str, dict[Any, Any]]]:
    entries: list[tuple[str, str, dict[Any, Any]]] = []
    for stream, rows in reply or []:
        for entry_id, fields in rows:
            if fields is not None:
                entries.append((keys.text(stream), keys.text(entry_id), fields))
    entries.sort(key=lambda e: entry_key(e[1]))
    return entries


async def ensure_destination_groups(client: aioredis.Redis, name: str) -> None:
    """A destination's groups, at the streams' end on a first start (``yquant up`` makes them before
    any service starts, yquant.supervisor). Where the single group of earlier versions exists, a new
    destination group starts where that one stood, pending entries included, so an upgrade loses no
    message (the destination's progress skips what it already had)."""
    for stream in STREAMS:
        try:
            await client.xgroup_create(
                stream, keys.notifier_group(name), id=await _legacy_start(client, stream), mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def _legacy_start(client: aioredis.Redis, stream: str) -> str:
    try:
        groups: Any = await client.xinfo_groups(stream)
    except ResponseError:
        return "$"  # no stream yet
    legacy = next((g for g in groups if keys.text(g["name"]) == keys.GROUP_NOTIFIER), None)
    if legacy is None:
        return "$"
    first: Any = await client.xpending_range(stream, keys.GROUP_NOTIFIER, min="-", max="+", count=1)
    if not first:
        return keys.text(legacy["last-delivered-id"])
    return _before(keys.text(first[0]["message_id"]))


def _before(entry_id: str) -> str:
    """The id just before ``entry_id``: a group created there delivers ``entry_id`` next."""
    ms, seq = entry_key(entry_id)
    return f"{ms}-{seq - 1}" if seq else f"{ms - 1}-18446744073709551615"
