"""A service missing its heartbeat, and back: derived from the heartbeat keys every service keeps.

Each service refreshes ``yq:hb:<service>:<instance>`` every 5 s with a 15 s TTL and deletes it on a
clean stop (yquant.runtime.heartbeat_loop). A heartbeat's age is read from the server's own TTL
(``HEARTBEAT_TTL_S`` minus PTTL), so no two hosts' clocks are compared. A key that is still there
but older than ``missing_after_s``, or that vanished when it would have been that old, is an
outage (a crash leaves the key to expire at 15 s); one that vanished younger was deleted (a clean
stop, as ``yquant up`` stops its services) and is forgotten.

A service is reported missing when one of its instances is out and none of its instances beats,
once per outage: the report is a field of ``keys.NOTIFY_DOWN``, and the service is reported back
when one of its instances beats again (the field deleted), even across a notifier restart. The
field and its notice are written in one transaction (WATCH the hash, read the field, then MULTI:
HSET or HDEL + XADD): a notifier that dies before the EXEC leaves neither and its next poll tells
it; after it, both are there and nothing tells it again.

A restart the watcher did not see end is reported too: each heartbeat names its process's life
(``yquant.runtime.LIFE``), remembered per instance in ``keys.NOTIFY_LIVES``. A container that
crashes and is restarted within the heartbeat's 15 s TTL rewrites the same key with a new life and
never looks missing; a service that stopped and started while the notifier itself was down leaves
no gap to see. Either way the new life meets an old one whose end no poll saw (a poll that sees
a key vanish forgets its life), and the watcher says the service restarted and that whether it
crashed is unknown, once: the new life is recorded in the same transaction as the notice. A
service reported missing had its end told: a new life of it is recorded without a notice, and
its return says the rest.

An instance whose life is remembered but whose heartbeat is gone when a notifier starts ended
unseen too: it crashed or stopped while no notifier watched, or the last notifier died reporting
it. It counts as a heartbeat of age 0 at the start: one that beats again within
``missing_after_s`` with a new life is a restart, told as above; one that does not is reported
missing ("ended while no notifier watched", once) and back ("out for at least" the time since the
start). So that a notifier dying as it reports an expired heartbeat leaves the next one something
to find, a life is forgotten in the same transaction as its service's missing report (alone after
a clean stop). The same process losing its heartbeat for a while (Valkey out of its reach) while
no notifier watched leaves no trace: the key comes back with the same life, and nothing is said.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError
from redis.typing import EncodableT, FieldT

from yquant import bus, keys
from yquant.runtime import HEARTBEAT_TTL_S

logger = logging.getLogger(__name__)

NOTICES_MAXLEN = 10_000

Fields = dict[FieldT, EncodableT]  # a stream entry's fields (``bus.envelope``)


@dataclass
class _Seen:
    age_s: float  # the heartbeat's age when last seen
    at: float  # the watcher's clock then


@dataclass
class Verdict:
    """One poll's conclusions, per service."""

    out: dict[str, tuple[str, float]] = field(default_factory=dict)  # service -> (instance, age) with none beating
    beating: set[str] = field(default_factory=set)  # services with an instance that beats
    vanished: set[tuple[str, str]] = field(default_factory=set)  # (service, instance) seen before, gone now
    unseen: set[str] = field(default_factory=set)  # services of ``out`` whose end only an earlier life saw coming


class HeartbeatWatch:
    """The pure part: heartbeat ages in, which services are out and which beat, out."""

    def __init__(self, missing_after_s: float, ignore: frozenset[str] = frozenset({"notifier"})) -> None:
        self.missing_after_s = missing_after_s
        self.ignore = ignore
        self.seen: dict[tuple[str, str], _Seen] = {}
        self.presumed: set[tuple[str, str]] = set()  # alive when an earlier life last looked, gone at this one's start
        self.started = False  # presume() was given what an earlier life remembered

    def presume(self, now: float, idents: list[tuple[str, str]]) -> None:
        """Instances an earlier notifier life saw alive and whose heartbeat is gone now: their end
        went unseen. Each counts as a heartbeat of age 0 at ``now``: out once ``missing_after_s``
        passed without a beat of it, unless it beats before (a restart, which its new life tells)."""
        self.started = True
        for ident in idents:
            if ident[0] not in self.ignore and ident not in self.seen:
                self.seen[ident] = _Seen(0.0, now)
                self.presumed.add(ident)

    def observe(self, now: float, ages: dict[tuple[str, str], float]) -> Verdict:
        verdict = Verdict()
        out: dict[str, tuple[str, float]] = {}
        for (service, instance), age in ages.items():
            if service in self.ignore:
                continue
            self.seen[(service, instance)] = _Seen(age, now)
            self.presumed.discard((service, instance))
            if age < self.missing_after_s:
                verdict.beating.add(service)
            else:
                out[service] = (instance, age)
        for ident in [i for i in self.seen if i not in ages]:
            last = self.seen[ident]
            age = last.age_s + (now - last.at)
            if ident in self.presumed:
                if age < self.missing_after_s:
                    continue  # it may yet start
                self.presumed.discard(ident)
                if out.setdefault(ident[0], (ident[1], age)) == (ident[1], age):
                    verdict.unseen.add(ident[0])
            elif age >= self.missing_after_s:  # expired: it stopped beating without a clean stop
                out.setdefault(ident[0], (ident[1], age))
            del self.seen[ident]
            verdict.vanished.add(ident)
        verdict.out = {service: v for service, v in out.items() if service not in verdict.beating}
        verdict.unseen &= set(verdict.out)
        return verdict


def notice_fields(kind: str, en: str, ko: str, data: dict[str, Any]) -> Fields:
    """A keys.NOTICES entry: its texts are written with it (notifier.events reads them back)."""
    return bus.envelope("Notice", orjson.dumps({"kind": kind, "en": en, "ko": ko, "data": data}))


@dataclass(frozen=True)
class Beat:
    age_s: float
    life: str  # "" when the heartbeat names none
    started_at: float | None


async def heartbeats(client: aioredis.Redis) -> dict[tuple[str, str], Beat]:
    """Every heartbeat key: its age (from the server's TTL), its process's life and start."""
    found = [keys.text(k) async for k in client.scan_iter(match=keys.HEARTBEAT_PATTERN, count=10_000)]
    if not found:
        return {}
    async with client.pipeline(transaction=False) as pipe:
        for key in found:
            pipe.pttl(key)
            pipe.hmget(key, "life", "started_at")
        replies = await pipe.execute()
    beats: dict[tuple[str, str], Beat] = {}
    for index, key in enumerate(found):
        ttl, (life, started) = replies[2 * index], replies[2 * index + 1]
        _, _, rest = key.partition(keys.PREFIX + "hb:")
        service, _, instance = rest.partition(":")
        if int(ttl) < 0:
            continue  # gone since the scan (-2), or a key without a TTL (-1) that is not a heartbeat
        try:
            started_at = float(keys.text(started)) if started else None
        except ValueError:
            started_at = None
        age = max(HEARTBEAT_TTL_S - int(ttl) / 1000, 0.0)
        beats[(service, instance)] = Beat(age, keys.text(life) if life else "", started_at)
    return beats


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


def _restart_notice(service: str, instance: str, started_at: float | None) -> Fields:
    when = (
        datetime.fromtimestamp(started_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if started_at else "an unknown time"
    )
    return notice_fields(
        "heartbeat",
        f"🔄 {service} ({instance}) restarted: a new process since {when}; its previous one ended unseen "
        "(a crash, or a stop while notifications were down)",
        f"🔄 {service} ({instance}) 재시작됨: {when}부터 새 프로세스. 이전 프로세스의 종료는 확인되지 않음 "
        "(비정상 종료, 또는 알림이 멈춘 동안의 정지)",
        {"service": service, "instance": instance, "restarted": True},
    )


async def note_lives(
    client: aioredis.Redis,
    beats: dict[tuple[str, str], Beat],
    vanished: set[tuple[str, str]],
    ignore: frozenset[str],
    down: frozenset[str] = frozenset(),
) -> None:
    """Remember each heartbeat's life; a new life whose predecessor's end no poll saw is a restart,
    told once (the new life and the notice in one transaction under WATCH). A service reported
    missing (``down``) had its end told: its new life is recorded, and its return says the rest."""
    if vanished:
        await client.hdel(keys.NOTIFY_LIVES, *(f"{s}:{i}" for s, i in vanished))
    current = {f"{s}:{i}": (s, i, beat) for (s, i), beat in beats.items() if beat.life and s not in ignore}
    if not current:
        return
    async with client.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(keys.NOTIFY_LIVES)
            known: Any = await pipe.hgetall(keys.NOTIFY_LIVES)
            remembered = {keys.text(k): keys.text(v) for k, v in known.items()}
            changed = {name: value for name, value in current.items() if remembered.get(name) != value[2].life}
            if not changed:
                return
            pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            pipe.hset(keys.NOTIFY_LIVES, mapping={name: beat.life for name, (_s, _i, beat) in changed.items()})
            for name, (service, instance, beat) in sorted(changed.items()):
                if name in remembered and service not in down:  # a life before this one, whose end nobody saw
                    fields: Any = _restart_notice(service, instance, beat.started_at)
                    pipe.xadd(keys.NOTICES, fields, maxlen=NOTICES_MAXLEN, approximate=True)
                    logger.warning("service restarted unseen", extra={"service": service, "instance": instance})
            await pipe.execute()
        except WatchError:
            return  # another notifier wrote first: the next poll looks again


def _ident(name: str) -> tuple[str, str]:
    """(service, instance) of a keys.NOTIFY_LIVES field."""
    service, _, instance = name.partition(":")
    return service, instance


async def _mark(
    client: aioredis.Redis,
    service: str,
    record: bytes | None,
    notice: Callable[[bytes], Fields],
    forget: list[str] | None = None,
) -> bool:
    """Set ``service``'s field of keys.NOTIFY_DOWN to ``record`` (missing) or clear it (None: back),
    and append ``notice`` of the field's value, in one transaction under WATCH; the lives of
    ``forget`` (keys.NOTIFY_LIVES fields) go in it too. False when the field already was so
    (reported before, or never reported)."""
    async with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.NOTIFY_DOWN)
                before: Any = await pipe.hget(keys.NOTIFY_DOWN, service)
                if (before is None) == (record is None):
                    await pipe.unwatch()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                    return False
                fields: Any = notice(record or before)
                pipe.multi()  # type: ignore[no-untyped-call]
                if record is None:
                    pipe.hdel(keys.NOTIFY_DOWN, service)
                else:
                    pipe.hset(keys.NOTIFY_DOWN, service, record)
                if forget:
                    pipe.hdel(keys.NOTIFY_LIVES, *forget)
                pipe.xadd(keys.NOTICES, fields, maxlen=NOTICES_MAXLEN, approximate=True)
                await pipe.execute()
                return True
            except WatchError:
                continue  # another service's field changed meanwhile: look again


async def check_once(client: aioredis.Redis, watch: HeartbeatWatch, now: float, wall: float) -> None:
    beats = await heartbeats(client)
    if not watch.started:
        known: Any = await client.hgetall(keys.NOTIFY_LIVES)
        remembered = [_ident(keys.text(name)) for name in known]
        watch.presume(now, [ident for ident in remembered if ident not in beats])
    verdict = watch.observe(now, {ident: beat.age_s for ident, beat in beats.items()})
    reported = {ident for ident in verdict.vanished if ident[0] in verdict.out}  # forgotten with the report
    down: Any = await client.hgetall(keys.NOTIFY_DOWN)
    told = frozenset(keys.text(service) for service in down)
    await note_lives(client, beats, verdict.vanished - reported, watch.ignore, told)
    for service, (instance, age) in sorted(verdict.out.items()):
        forget = sorted(f"{s}:{i}" for s, i in reported if s == service)
        unseen = service in verdict.unseen
        record = orjson.dumps({"instance": instance, "since": wall - age, **({"unseen": True} if unseen else {})})
        if await _mark(client, service, record, partial(_missing_notice, service, instance, age, unseen), forget):
            logger.warning("service missing its heartbeat", extra={"service": service, "instance": instance})
        elif forget:
            await client.hdel(keys.NOTIFY_LIVES, *forget)
    for service in sorted(told & verdict.beating):  # out and beating never share a service: ``told`` holds
        if await _mark(client, service, None, partial(_back_notice, service, wall)):
            logger.info("service back", extra={"service": service})


def _missing_notice(service: str, instance: str, age: float, unseen: bool, _record: bytes) -> Fields:
    data = {"service": service, "instance": instance, "ok": False}
    if unseen:
        return notice_fields(
            "heartbeat",
            f"💔 {service} ({instance}) is missing its heartbeat: its process ended while no notifier watched "
            "(a crash, or a stop) and has not started again",
            f"💔 {service} ({instance}) 하트비트 없음: 알림 서비스가 멈춘 동안 프로세스가 종료되었고 "
            "(비정상 종료 또는 정지) 다시 시작되지 않음",
            {**data, "unseen": True},
        )
    return notice_fields(
        "heartbeat",
        f"💔 {service} ({instance}) is missing its heartbeat: no sign of life for {_duration(age)}",
        f"💔 {service} ({instance}) 하트비트 없음: {_duration(age)} 동안 응답 없음",
        data,
    )


def _back_notice(service: str, wall: float, record: bytes) -> Fields:
    """The notice of ``service`` back, its outage timed from its record in keys.NOTIFY_DOWN."""
    try:
        found = orjson.loads(record)
        since, unseen = float(found.get("since", wall)), bool(found.get("unseen"))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        since, unseen = wall, False
    took = _duration(max(wall - since, 0))
    if unseen:  # it ended before this notifier looked: only the part since then is known
        return notice_fields(
            "heartbeat",
            f"💚 {service} is back (out for at least {took})",
            f"💚 {service} 복구됨 (최소 {took} 동안 중단)",
            {"service": service, "ok": True},
        )
    return notice_fields(
        "heartbeat",
        f"💚 {service} is back (out for about {took})",
        f"💚 {service} 복구됨 (약 {took} 동안 중단)",
        {"service": service, "ok": True},
    )


async def watch_heartbeats(
    client: aioredis.Redis,
    watch: HeartbeatWatch,
    stop: asyncio.Event,
    poll_s: float,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Poll the heartbeats every ``poll_s`` and once more as the notifier stops: `yquant up` stops
    the services just before it (yquant/supervisor.py), and that last look sees their clean stops
    (keys deleted while young), so the next start does not take their new lives for restarts
    whose end nobody saw."""
    while True:
        try:
            await check_once(client, watch, monotonic(), time.time())
        except (RedisError, OSError) as exc:
            logger.warning("heartbeat check failed; retrying", extra={"error": str(exc)})
        if stop.is_set():
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_s)
        except TimeoutError:
            pass
