"""Scheduled orders on a real Valkey, with an injected clock (independent of today's date)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest
import redis.asyncio as aioredis

from ordermanager.schedule_runner import Scheduler
from ordermanager.service import OrderManager
from tests.harness.clock import ManualClock
from tests.integration.ordermanager.factories import all_orders, decision_of, put_quote, seed_account, stream
from yquant import controls, keys, valkey
from yquant.messages import Market, QuantityType, SignalReceived
from yquant.schedules import ScheduleKind, ScheduleSpec
from yquant.settings import Settings, ValkeySettings

KST = ZoneInfo("Asia/Seoul")


def weekday_spec(**fields: object) -> ScheduleSpec:
    values: dict[str, object] = {
        "name": "morning buy",
        "account": "main",
        "market": Market.KRX,
        "ticker": "005930",
        "quantity": 1,
        "weekdays": [0, 1, 2, 3, 4],
        "at_time": time(9, 0),
    }
    values.update(fields)
    return ScheduleSpec.model_validate(values)


def scheduler(client: aioredis.Redis, clock: ManualClock) -> Scheduler:
    return Scheduler(client, clock=clock, misfire_grace_s=300, maxlen=10_000)


async def schedule_signals(client: aioredis.Redis) -> list[SignalReceived]:
    return [m for m in await stream(client, keys.SIGNALS_INTERNAL) if isinstance(m, SignalReceived)]


async def test_nine_oclock_schedule_on_a_krx_holiday_does_not_fire_and_shows_its_next_run(
    redis_client: aioredis.Redis, om_settings: Settings
) -> None:
    clock = ManualClock(datetime(2025, 10, 2, 10, 0, tzinfo=KST))  # Thursday; Friday Oct 3 is a holiday
    created = await controls.create_schedule(redis_client, om_settings, weekday_spec(), now=clock.now())
    assert created.next_run_at == datetime(2025, 10, 10, 9, 0, tzinfo=KST)  # after Chuseok and Hangul Day

    clock.set(datetime(2025, 10, 3, 9, 0, 30, tzinfo=KST))
    assert await scheduler(redis_client, clock).tick() == []
    assert await schedule_signals(redis_client) == []
    [listed] = await controls.list_schedules(redis_client)
    assert listed.next_run_at == datetime(2025, 10, 10, 9, 0, tzinfo=KST)

    clock.set(datetime(2025, 10, 10, 9, 0, 1, tzinfo=KST))
    [fired] = await scheduler(redis_client, clock).tick()
    assert fired.startswith(f"sched-{created.schedule_id}-20251010T000000Z")
    [after] = await controls.list_schedules(redis_client)
    assert after.next_run_at == datetime(2025, 10, 13, 9, 0, tzinfo=KST)
    assert after.last_result.startswith("fired 2025-10-10 09:00 KST")


async def test_a_one_time_schedule_on_a_holiday_is_refused_with_the_reason(
    redis_client: aioredis.Redis, om_settings: Settings
) -> None:
    spec = weekday_spec(kind=ScheduleKind.ONCE, run_on=date(2025, 10, 3), weekdays=[])
    with pytest.raises(ValueError, match="holiday"):
        await controls.create_schedule(redis_client, om_settings, spec, now=datetime(2025, 9, 1, tzinfo=KST))


async def test_a_one_time_weekend_schedule_runs_when_the_simulator_keeps_markets_open(
    redis_client: aioredis.Redis, om_settings: Settings
) -> None:
    saturday = date(2025, 6, 14)
    spec = weekday_spec(kind=ScheduleKind.ONCE, run_on=saturday, weekdays=[])
    now = datetime(2025, 6, 13, 18, 0, tzinfo=KST)
    with pytest.raises(ValueError, match="weekend"):  # a real broker is closed on Saturday
        await controls.create_schedule(redis_client, om_settings, spec, now=now)
    simulated = om_settings.model_copy(
        update={
            "kis": om_settings.kis.model_copy(update={"rest_url": "http://127.0.0.1:1"}),
            "ordermanager": om_settings.ordermanager.model_copy(update={"always_open": True}),
        }
    )
    assert simulated.markets_always_open
    created = await controls.create_schedule(redis_client, simulated, spec, now=now)
    assert created.next_run_at == datetime(2025, 6, 14, 9, 0, tzinfo=KST)
    clock = ManualClock(datetime(2025, 6, 14, 9, 0, 5, tzinfo=KST))
    runner = Scheduler(redis_client, clock=clock, misfire_grace_s=300, maxlen=10_000, always_open=True)
    [fired] = await runner.tick()
    [message] = await schedule_signals(redis_client)
    assert message.signal.signal_id == fired
    [after] = await controls.list_schedules(redis_client)
    assert after.next_run_at is None  # a one-time schedule is done


async def test_two_order_managers_fire_each_occurrence_once(
    redis_client: aioredis.Redis, om_settings: Settings, valkey_url: str
) -> None:
    clock = ManualClock(datetime(2025, 6, 9, 8, 0, tzinfo=KST))  # Monday
    await controls.create_schedule(redis_client, om_settings, weekday_spec(), now=clock.now())
    await controls.create_schedule(
        redis_client, om_settings, weekday_spec(ticker="000660", at_time=None, open_offset_minutes=30), now=clock.now()
    )
    other_client = valkey.connect(ValkeySettings(url=valkey_url))
    try:
        first, second = scheduler(redis_client, clock), scheduler(other_client, clock)
        for step in range(5 * 24 * 4):  # five days in 15-minute steps, both instances every step
            clock.set(datetime(2025, 6, 9, 8, 0, tzinfo=KST) + timedelta(minutes=15 * step))
            await asyncio.gather(first.tick(), second.tick(), first.tick())
    finally:
        await other_client.aclose()
    signals = await schedule_signals(redis_client)
    ids = [s.signal.signal_id for s in signals]
    assert len(ids) == len(set(ids))
    # Mon 9 .. Fri 13 June 2025, 5 trading days x 2 schedules (no KRX holiday that week).
    assert len(ids) == 10
    assert {s.signal.source for s in signals} == {"schedule"}


async def test_a_missed_occurrence_after_downtime_is_skipped_and_logged(
    redis_client: aioredis.Redis, om_settings: Settings
) -> None:
    clock = ManualClock(datetime(2025, 6, 9, 8, 0, tzinfo=KST))
    created = await controls.create_schedule(redis_client, om_settings, weekday_spec(), now=clock.now())
    clock.set(datetime(2025, 6, 9, 9, 40, tzinfo=KST))  # the order manager was down at 09:00
    assert await scheduler(redis_client, clock).tick() == []
    assert await schedule_signals(redis_client) == []
    missed = await decision_of(redis_client, f"sched-{created.schedule_id}-20250609T000000Z")
    assert missed["reason_code"] == "SCHEDULE_MISSED"
    assert "missed the 2025-06-09 09:00 KST run by 40 min" in missed["reason"]
    [listed] = await controls.list_schedules(redis_client)
    assert listed.next_run_at == datetime(2025, 6, 10, 9, 0, tzinfo=KST)


async def test_amount_schedule_becomes_a_quantity_from_the_latest_quote(
    manager: OrderManager, redis_client: aioredis.Redis, om_settings: Settings, clock: ManualClock
) -> None:
    clock.set(datetime(2025, 6, 10, 8, 59, tzinfo=KST))
    await controls.create_schedule(
        redis_client, om_settings, weekday_spec(quantity=None, amount=Decimal(500_000)), now=clock.now()
    )
    await seed_account(redis_client)
    clock.set(datetime(2025, 6, 10, 9, 0, 2, tzinfo=KST))
    await put_quote(redis_client, clock, "005930", 71_000)
    await scheduler(redis_client, clock).tick()
    [message] = await schedule_signals(redis_client)
    assert message.signal.quantity_type is QuantityType.AMOUNT
    await manager.handle_signal(message.signal, message.correlation_id)
    [order] = await all_orders(redis_client)
    assert (order.quantity, order.origin) == (7, "schedule")  # 500,000 / 71,000
    assert (await decision_of(redis_client, message.signal.signal_id))["status"] == "accepted"


async def test_a_schedule_saved_by_the_dashboard_fires_and_its_next_run_is_kept(
    redis_client: aioredis.Redis,
) -> None:
    clock = ManualClock(datetime(2025, 6, 9, 9, 0, 5, tzinfo=KST))
    schedule_id = "sch-0123456789abcdef"
    form = {
        "schedule_id": schedule_id,
        "account": "main",
        "market": "KRX",
        "ticker": "005930",
        "side": "buy",
        "quantity_type": "fixed",
        "quantity": "2",
        "time_of_day": "09:00",
        "days": ["mon", "wed"],
        "timezone": "Asia/Seoul",
    }
    key = keys.schedule(schedule_id)
    await redis_client.hset(key, mapping={"data": orjson.dumps(form), "next_run": "2025-06-09T00:00:00+00:00"})
    await redis_client.sadd(keys.SCHEDULES_INDEX, schedule_id)
    await redis_client.zadd(keys.SCHEDULES, {schedule_id: datetime(2025, 6, 9, 9, 0, tzinfo=KST).timestamp()})
    [fired] = await scheduler(redis_client, clock).tick()
    [message] = await schedule_signals(redis_client)
    assert (message.signal.signal_id, message.signal.quantity) == (fired, Decimal(2))
    assert keys.text(await redis_client.hget(key, "next_run")) == "2025-06-11T00:00:00+00:00"


async def test_schedules_can_be_disabled_updated_and_deleted(
    redis_client: aioredis.Redis, om_settings: Settings
) -> None:
    now = datetime(2025, 6, 9, 8, 0, tzinfo=KST)
    created = await controls.create_schedule(redis_client, om_settings, weekday_spec(), now=now)
    assert await redis_client.zscore(keys.SCHEDULES, created.schedule_id) is not None
    disabled = await controls.update_schedule(
        redis_client, om_settings, created.schedule_id, {"enabled": False}, now=now
    )
    assert disabled.next_run_at is None
    assert await redis_client.zscore(keys.SCHEDULES, created.schedule_id) is None
    moved = await controls.update_schedule(
        redis_client, om_settings, created.schedule_id, {"enabled": True, "at_time": time(10, 30)}, now=now
    )
    assert moved.next_run_at == datetime(2025, 6, 9, 10, 30, tzinfo=KST)
    with pytest.raises(ValueError, match="not configured"):
        await controls.update_schedule(redis_client, om_settings, created.schedule_id, {"account": "nope"}, now=now)
    assert await controls.delete_schedule(redis_client, created.schedule_id)
    assert await controls.list_schedules(redis_client) == []
