"""Schedules in Valkey.

* ``keys.schedule(id)``: a hash with ``spec`` (JSON, edited by the user) and the fields the
  scheduler maintains (``next_run_at``, ``last_run_at``, ``last_result``), so an edit and
  a run never overwrite each other.
* ``keys.SCHEDULES``: sorted set of enabled schedules by next due time (epoch seconds).
* ``keys.SCHEDULES_INDEX``: every schedule id, for listing.

The dashboard writes its own form (``data`` = its Schedule's JSON, ``next_run``); those
are read through ``schedules.spec_from_dashboard`` and never rewritten here except for
the run fields, and ``next_run`` is kept current so its page shows the real next run.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError

from yquant import keys
from yquant.schedules import Schedule, ScheduleSpec, spec_from_dashboard

logger = logging.getLogger(__name__)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _parse(value: bytes | str | None) -> datetime | None:
    text = keys.text(value) if value is not None else ""
    try:
        parsed = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed is not None and parsed.tzinfo is None else parsed


def new_schedule_id() -> str:
    return "sch-" + uuid.uuid4().hex[:12]


async def save(client: aioredis.Redis, schedule: Schedule) -> None:
    """Store the whole schedule and (re)index its next run."""
    key = keys.schedule(schedule.schedule_id)
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(
            key,
            mapping={
                "spec": schedule.spec.model_dump_json(),
                "created_at": _iso(schedule.created_at),
                "updated_at": _iso(schedule.updated_at),
                "next_run_at": _iso(schedule.next_run_at),
                "next_run": _iso(schedule.next_run_at),
                "last_run_at": _iso(schedule.last_run_at),
                "last_result": schedule.last_result,
            },
        )
        pipe.sadd(keys.SCHEDULES_INDEX, schedule.schedule_id)
        if schedule.next_run_at is not None and schedule.spec.enabled:
            pipe.zadd(keys.SCHEDULES, {schedule.schedule_id: schedule.next_run_at.timestamp()})
        else:
            pipe.zrem(keys.SCHEDULES, schedule.schedule_id)
        await pipe.execute()


async def load(client: aioredis.Redis, schedule_id: str) -> Schedule | None:
    raw = await client.hgetall(keys.schedule(schedule_id))
    data = {keys.text(k): keys.text(v) for k, v in raw.items()}
    try:
        if "spec" in data:
            spec = ScheduleSpec.model_validate_json(data["spec"])
        elif "data" in data:  # saved by the dashboard
            form = orjson.loads(data["data"])
            spec = spec_from_dashboard(form)
            data.setdefault("created_at", str(form.get("created_at") or ""))
            data.setdefault("updated_at", str(form.get("updated_at") or ""))
        else:
            return None
    except (ValidationError, ValueError, KeyError, orjson.JSONDecodeError) as exc:
        logger.error("unreadable schedule skipped", extra={"schedule_id": schedule_id, "error": str(exc)})
        return None
    return Schedule(
        schedule_id=schedule_id,
        spec=spec,
        created_at=_parse(data.get("created_at")) or datetime.now(UTC),
        updated_at=_parse(data.get("updated_at")) or datetime.now(UTC),
        next_run_at=_parse(data.get("next_run_at") or data.get("next_run")),
        last_run_at=_parse(data.get("last_run_at")),
        last_result=data.get("last_result", ""),
    )


async def list_all(client: aioredis.Redis) -> list[Schedule]:
    ids = sorted(keys.text(i) for i in await client.smembers(keys.SCHEDULES_INDEX))
    found = [s for s in [await load(client, i) for i in ids] if s is not None]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(found, key=lambda s: (s.next_run_at or far, s.schedule_id))


async def delete(client: aioredis.Redis, schedule_id: str) -> bool:
    async with client.pipeline(transaction=True) as pipe:
        pipe.zrem(keys.SCHEDULES, schedule_id)
        pipe.srem(keys.SCHEDULES_INDEX, schedule_id)
        pipe.delete(keys.schedule(schedule_id))
        results = await pipe.execute()
    return bool(results[2])


async def record_run(
    client: aioredis.Redis,
    schedule_id: str,
    *,
    next_run_at: datetime | None,
    ran_at: datetime | None,
    result: str | None,
) -> None:
    """After an occurrence: the next run (indexed only if the schedule still exists) and the outcome."""
    key = keys.schedule(schedule_id)
    fields: dict[str | bytes, str | bytes] = {"next_run_at": _iso(next_run_at), "next_run": _iso(next_run_at)}
    if ran_at is not None:
        fields["last_run_at"] = _iso(ran_at)
    if result is not None:
        fields["last_result"] = result
    if not await client.exists(key):
        await client.zrem(keys.SCHEDULES, schedule_id)
        return
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        if next_run_at is not None:
            pipe.zadd(keys.SCHEDULES, {schedule_id: next_run_at.timestamp()}, xx=True)
        else:
            pipe.zrem(keys.SCHEDULES, schedule_id)
        await pipe.execute()
