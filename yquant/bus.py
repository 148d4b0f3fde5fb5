"""The message bus on Valkey Streams with consumer groups.

* ``publish`` appends with a length cap (``MAXLEN ~``) far above any backlog we accept.
* ``Consumer`` reads with XREADGROUP, acks after the handler succeeded, drains its own
  pending entries first after a restart, takes over a crashed consumer's entries with
  XAUTOCLAIM after an idle time, and moves an entry that failed ``max_deliveries``
  times to the dead-letter stream, and at once one the handler refuses (``MessageRefused``: a
  type its stream may not carry).
* Entries that share a partition key (for signals: account-independent strategy and
  ticker) are handled in arrival order; different keys run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT

from yquant import keys, runtime
from yquant.errors import MessageDecodeError, MessageRefused
from yquant.logs import correlation
from yquant.messages import AnyMessage, Message, decode, encode
from yquant.settings import BusSettings

logger = logging.getLogger(__name__)

STREAM_LAG = Gauge("yquant_stream_lag", "Entries not yet delivered to the group", ["stream", "group"])
STREAM_PENDING = Gauge("yquant_stream_pending", "Entries delivered but not acknowledged", ["stream", "group"])
HANDLED = Counter("yquant_bus_handled", "Entries handled", ["stream", "group", "type"])
FAILED = Counter("yquant_bus_handler_failures", "Handler failures (the entry is retried)", ["stream", "group"])
RECLAIMED = Counter("yquant_bus_reclaimed", "Idle entries taken over from a consumer", ["stream", "group"])
REFUSED = Counter("yquant_bus_refused", "Entries a handler refused (dead-lettered)", ["stream", "group", "type"])
DEAD_LETTERED = Counter("yquant_bus_dead_lettered", "Entries moved to the dead-letter stream", ["stream"])
LAG_REFRESH_S = 5.0

Handler = Callable[[AnyMessage], Awaitable[None]]
PartitionKey = Callable[[AnyMessage], str]

EntryId = bytes | str


def fields_of(message: Message) -> dict[FieldT, EncodableT]:
    """The stream entry of a message: ``type`` (its class name, what ``decode`` dispatches on) and
    ``data`` (its JSON), typed as ``XADD`` takes its fields."""
    return envelope(message.__class__.__name__, encode(message))


def envelope(kind: str, data: bytes) -> dict[FieldT, EncodableT]:
    """A stream entry in the one layout every stream of ours uses (``fields_of``), for entries that
    are not messages of ``yquant.messages``: dead letters, audit entries, notices."""
    return {"type": kind, "data": data}


async def publish(client: aioredis.Redis, stream: str, message: Message, maxlen: int = 100_000) -> str:
    entry_id = await client.xadd(stream, fields_of(message), maxlen=maxlen, approximate=True)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def ensure_group(client: aioredis.Redis, stream: str, group: str, start_id: str = "0") -> None:
    try:
        await client.xgroup_create(stream, group, id=start_id, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class Consumer:
    """One member of a consumer group, handling entries until ``stop`` is set."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        stream: str,
        group: str,
        name: str,
        handler: Handler,
        settings: BusSettings,
        partition_key: PartitionKey | None = None,
        dead_letter_stream: str = keys.DEAD_LETTERS,
        accept_types: frozenset[str] | None = None,
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.name = name
        self.handler = handler
        self.settings = settings
        self.partition_key = partition_key
        self.dead_letter_stream = dead_letter_stream
        # Entries of other types are acknowledged unread (a stream carries several kinds).
        self.accept_types = {t.encode() for t in accept_types} if accept_types else None
        self._last_claim = 0.0
        self._last_lag = 0.0
        # Handled entries whose XACK rides with the next XREADGROUP (one round trip, not two).
        self._unacked: list[EntryId] = []

    async def run(self, stop: asyncio.Event) -> None:
        await ensure_group(self.client, self.stream, self.group)
        await self._drain_own_pending(stop)
        backoff = 0.1
        while not stop.is_set():
            try:
                await self._maybe_reclaim()
                await self._maybe_export_lag()
                response = await self._ack_and_read()
                backoff = 0.1
                for _stream, entries in response or []:
                    await self._handle_batch(entries, defer_ack=True)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                logger.warning("valkey unavailable, retrying", extra={"error": str(exc), "stream": self.stream})
                await runtime.sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    logger.warning("consumer group missing, recreating", extra={"stream": self.stream})
                    await ensure_group(self.client, self.stream, self.group)
                else:
                    logger.exception("stream read failed", extra={"stream": self.stream})
                    await runtime.sleep_or_stop(stop, 1.0)
        await self._flush_acks()

    async def _ack_and_read(self) -> Any:
        """XACK what was handled and XREADGROUP the next batch, in one round trip."""
        if not self._unacked:
            return await self.client.xreadgroup(
                self.group, self.name, {self.stream: ">"}, count=self.settings.batch, block=self.settings.block_ms
            )
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xack(self.stream, self.group, *self._unacked)
            pipe.xreadgroup(
                self.group, self.name, {self.stream: ">"}, count=self.settings.batch, block=self.settings.block_ms
            )
            replies = await pipe.execute()
        self._unacked = []
        return replies[1]

    async def _flush_acks(self) -> None:
        if not self._unacked:
            return
        try:
            await self.client.xack(self.stream, self.group, *self._unacked)
            self._unacked = []
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # Not lost: the entries stay pending and are handled again (idempotently) later.
            logger.warning("could not acknowledge handled entries", extra={"error": str(exc)})

    async def _drain_own_pending(self, stop: asyncio.Event) -> None:
        """After a restart, handle what this consumer read but never acknowledged."""
        last_id: EntryId = "0"
        while not stop.is_set():
            response: Any = await self.client.xreadgroup(
                self.group, self.name, {self.stream: last_id}, count=self.settings.batch
            )
            entries = response[0][1] if response else []
            if not entries:
                return
            logger.info("handling own pending entries", extra={"count": len(entries), "stream": self.stream})
            await self._handle_batch(entries, check_deliveries=True)
            last_id = entries[-1][0]

    async def _maybe_reclaim(self) -> None:
        now = time.monotonic()
        interval = max(self.settings.claim_idle_ms / 1000 / 2, 0.05)
        if now - self._last_claim < interval:
            return
        self._last_claim = now
        start: EntryId = "0-0"
        while True:
            result: Any = await self.client.xautoclaim(
                self.stream,
                self.group,
                self.name,
                min_idle_time=self.settings.claim_idle_ms,
                start_id=start,
                count=self.settings.batch,
            )
            next_start, entries = result[0], result[1]
            entries = [e for e in entries if e[1] is not None]
            if entries:
                RECLAIMED.labels(self.stream, self.group).inc(len(entries))
                logger.warning("reclaimed idle entries", extra={"count": len(entries), "stream": self.stream})
                await self._handle_batch(entries, check_deliveries=True)
            if next_start in (b"0-0", "0-0"):
                return
            start = next_start

    async def _maybe_export_lag(self) -> None:
        now = time.monotonic()
        if now - self._last_lag < LAG_REFRESH_S:
            return
        self._last_lag = now
        try:
            groups: Any = await self.client.xinfo_groups(self.stream)
        except ResponseError:
            return
        for group in groups:
            name = keys.text(group.get("name", b""))
            if name != self.group:
                continue
            STREAM_PENDING.labels(self.stream, self.group).set(int(group.get("pending") or 0))
            lag = group.get("lag")
            if lag is not None:
                STREAM_LAG.labels(self.stream, self.group).set(int(lag))

    async def _delivery_counts(self, entry_ids: Sequence[EntryId]) -> dict[bytes, int]:
        counts: dict[bytes, int] = {}
        for entry_id in entry_ids:
            rows = await self.client.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
            for row in rows:
                message_id = row["message_id"]
                counts[message_id if isinstance(message_id, bytes) else str(message_id).encode()] = int(
                    row["times_delivered"]
                )
        return counts

    async def _handle_batch(
        self,
        entries: list[tuple[EntryId, dict[bytes, bytes]]],
        check_deliveries: bool = False,
        defer_ack: bool = False,
    ) -> None:
        counts: dict[bytes, int] = {}
        if check_deliveries:
            counts = await self._delivery_counts([e[0] for e in entries])
        groups: dict[str, list[tuple[EntryId, dict[bytes, bytes], AnyMessage]]] = defaultdict(list)
        to_ack: list[EntryId] = []
        for entry_id, fields in entries:
            raw_id = entry_id if isinstance(entry_id, bytes) else entry_id.encode()
            if counts.get(raw_id, 0) > self.settings.max_deliveries:
                await self._dead_letter(entry_id, fields, f"delivered {counts[raw_id]} times")
                to_ack.append(entry_id)
                continue
            if self.accept_types is not None and fields.get(b"type") not in self.accept_types:
                to_ack.append(entry_id)
                continue
            try:
                message = decode(fields[b"data"])
            except (MessageDecodeError, KeyError) as exc:
                await self._dead_letter(entry_id, fields, f"undecodable: {exc}")
                to_ack.append(entry_id)
                continue
            key = self.partition_key(message) if self.partition_key else str(entry_id)
            groups[key].append((entry_id, fields, message))

        results = await asyncio.gather(*(self._handle_in_order(items) for items in groups.values()))
        for acked in results:
            to_ack.extend(acked)
        if defer_ack:
            self._unacked.extend(to_ack)
        elif to_ack:
            await self.client.xack(self.stream, self.group, *to_ack)

    async def _handle_in_order(self, items: list[tuple[EntryId, dict[bytes, bytes], AnyMessage]]) -> list[EntryId]:
        acked: list[EntryId] = []
        for index, (entry_id, fields, message) in enumerate(items):
            with correlation(message.correlation_id):
                try:
                    await self.handler(message)
                except MessageRefused as exc:
                    # Never acted on, and never will be: visible in the dead letters, not retried.
                    REFUSED.labels(self.stream, self.group, message.type).inc()
                    await self._dead_letter(entry_id, fields, f"refused: {exc}")
                    acked.append(entry_id)
                    continue
                except Exception:
                    FAILED.labels(self.stream, self.group).inc()
                    logger.exception(
                        "handler failed; entry stays pending for a retry",
                        extra={"entry_id": _text(entry_id), "type": message.type},
                    )
                    # Keep order within the partition: later entries wait for the retry.
                    remaining = len(items) - index - 1
                    if remaining:
                        logger.warning("holding back later entries of the same key", extra={"count": remaining})
                    return acked
            HANDLED.labels(self.stream, self.group, message.type).inc()
            acked.append(entry_id)
        return acked

    async def _dead_letter(self, entry_id: EntryId, fields: dict[bytes, bytes], reason: str) -> None:
        DEAD_LETTERED.labels(self.stream).inc()
        logger.error("dead-lettering entry", extra={"entry_id": _text(entry_id), "reason": reason})
        payload = {
            "stream": self.stream,
            "group": self.group,
            "entry_id": _text(entry_id),
            "reason": reason,
            "fields": {_text(k): _text(v) for k, v in fields.items()},
        }
        await self.client.xadd(
            self.dead_letter_stream,
            envelope("DeadLetter", orjson.dumps(payload)),
            maxlen=self.settings.stream_maxlen,
            approximate=True,
        )


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
