"""A service missing its heartbeat, and back: derived from the heartbeat keys every service keeps.

Each service refreshes ``yq:hb:<service>:<instance>`` every 5 s with a 15 s TTL and deletes it on a
clean stop (yquant.runtime.heartbeat_loop). A heartbeat's age is read from the server's own TTL
(``HEARTBEAT_TTL_S`` minus PTTL), so no two hosts' clocks are compared. A key that is still there
but older than ``missing_after_s``, or that vanished when it would have been that old, is an
outage (a crash leaves the key to expire at 15 s); one that vanished younger was deleted (a clean
stop, as ``yquant up`` stops its services) and is forgotten.

A service is reported missing when one of its instances is out and none of its instances beats,
once per outage: the report is a field of ``keys.NOTIFY_DOWN`` set with HSETNX, and the service
is reported back when one of its instances beats again (HDEL), even across a notifier restart. The
notice follows the HSETNX or HDEL that won: a crash between the two loses that one notice, it never
repeats it. A service that died while the notifier itself was down, and whose heartbeat expired
before it came back, is not seen (nothing is left to see); ``yquant status`` still shows it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from yquant import keys
from yquant.runtime import HEARTBEAT_TTL_S

logger = logging.getLogger(__name__)

NOTICES_MAXLEN = 10_000


@dataclass
class _Seen:
    age_s: float  # the heartbeat's age when last seen
    at: float  # the watcher's clock then


@dataclass
class Verdict:
    """One poll's conclusions, per service."""

    out: dict[str, tuple[str, float]] = field(default_factory=dict)  # service -> (instance, age) with none beating
    beating: set[str] = field(default_factory=set)  # services with an instance that beats


class HeartbeatWatch:
    """The pure part: heartbeat ages in, which services are out and which beat, out."""

    def __init__(self, missing_after_s: float, ignore: frozenset[str] = frozenset({"notifier"})) -> None:
        self.missing_after_s = missing_after_s
        self.ignore = ignore
        self.seen: dict[tuple[str, str], _Seen] = {}

    def observe(self, now: float, ages: dict[tuple[str, str], float]) -> Verdict:
        verdict = Verdict()
        out: dict[str, tuple[str, float]] = {}
        for (service, instance), age in ages.items():
            if service in self.ignore:
                continue
            self.seen[(service, instance)] = _Seen(age, now)
            if age < self.missing_after_s:
                verdict.beating.add(service)
            else:
                out[service] = (instance, age)
        for ident in [i for i in self.seen if i not in ages]:
            last = self.seen.pop(ident)
            age = last.age_s + (now - last.at)
            if age >= self.missing_after_s:  # expired: it stopped beating without a clean stop
                out.setdefault(ident[0], (ident[1], age))
        verdict.out = {service: v for service, v in out.items() if service not in verdict.beating}
        return verdict


def notice_fields(kind: str, en: str, ko: str, data: dict[str, Any]) -> dict[str, bytes]:
    """A keys.NOTICES entry: its texts are written with it (notifier.events reads them back)."""
    return {"type": b"Notice", "data": orjson.dumps({"kind": kind, "en": en, "ko": ko, "data": data})}


async def add_notice(client: aioredis.Redis, kind: str, en: str, ko: str, data: dict[str, Any]) -> None:
    fields: Any = notice_fields(kind, en, ko, data)
    await client.xadd(keys.NOTICES, fields, maxlen=NOTICES_MAXLEN, approximate=True)


async def heartbeat_ages(client: aioredis.Redis) -> dict[tuple[str, str], float]:
    found = [keys.text(k) async for k in client.scan_iter(match=keys.HEARTBEAT_PATTERN, count=10_000)]
    if not found:
        return {}
    async with client.pipeline(transaction=False) as pipe:
        for key in found:
            pipe.pttl(key)
        ttls = await pipe.execute()
    ages: dict[tuple[str, str], float] = {}
    for key, ttl in zip(found, ttls, strict=True):
        _, _, rest = key.partition(keys.PREFIX + "hb:")
        service, _, instance = rest.partition(":")
        if int(ttl) < 0:
            continue  # gone since the scan (-2), or a key without a TTL (-1) that is not a heartbeat
        ages[(service, instance)] = max(HEARTBEAT_TTL_S - int(ttl) / 1000, 0.0)
    return ages


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


async def check_once(client: aioredis.Redis, watch: HeartbeatWatch, now: float, wall: float) -> None:
    verdict = watch.observe(now, await heartbeat_ages(client))
    for service, (instance, age) in sorted(verdict.out.items()):
        since = wall - age
        record = orjson.dumps({"instance": instance, "since": since})
        if await client.hsetnx(keys.NOTIFY_DOWN, service, record):
            await add_notice(
                client,
                "heartbeat",
                f"💔 {service} ({instance}) is missing its heartbeat: no sign of life for {_duration(age)}",
                f"💔 {service} ({instance}) 하트비트 없음: {_duration(age)} 동안 응답 없음",
                {"service": service, "instance": instance, "ok": False},
            )
            logger.warning("service missing its heartbeat", extra={"service": service, "instance": instance})
    if not verdict.beating:
        return
    down: Any = await client.hgetall(keys.NOTIFY_DOWN)
    for raw_service, raw in down.items():
        service = keys.text(raw_service)
        if service not in verdict.beating:
            continue
        if await client.hdel(keys.NOTIFY_DOWN, service):
            try:
                since = float(orjson.loads(raw).get("since", wall))
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                since = wall
            took = _duration(max(wall - since, 0))
            await add_notice(
                client,
                "heartbeat",
                f"💚 {service} is back (out for about {took})",
                f"💚 {service} 복구됨 (약 {took} 동안 중단)",
                {"service": service, "ok": True},
            )
            logger.info("service back", extra={"service": service})


async def watch_heartbeats(
    client: aioredis.Redis,
    watch: HeartbeatWatch,
    stop: asyncio.Event,
    poll_s: float,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    while not stop.is_set():
        try:
            await check_once(client, watch, monotonic(), time.time())
        except (RedisError, OSError) as exc:
            logger.warning("heartbeat check failed; retrying", extra={"error": str(exc)})
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_s)
        except TimeoutError:
            pass
